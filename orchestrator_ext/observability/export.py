"""Cheaper span export: the OTLP encoder's two repeated costs per span, removed (same bytes sent).

py-spy on a traced server under load put the BatchSpanProcessor's export thread at ~6 % of
the server's CPU, nearly all of it ``encode_spans`` (the thread holds the GIL the requests
need). Two parts of it repeat work per span for the same result:

- the spans are grouped by resource, a dict keyed by :class:`Resource`, whose ``__hash__``
  serializes its attributes to JSON, for every span: :class:`KeptHashResource` computes it once
  (a resource's attributes do not change);
- each attribute becomes a ``KeyValue`` message built by two Python calls and two message
  constructions, though most keys and values repeat from span to span (a statement's text,
  ``db.system``, a route): :func:`_encode_attributes` keeps the encoded pairs that are
  hashable and builds the others as the encoder does. The cache is bounded; when full it
  starts again, so values seen once (ids in a URL) cannot grow it.

Imported only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.common import _internal as common
from opentelemetry.exporter.otlp.proto.common._internal import trace_encoder
from opentelemetry.sdk.resources import Resource
from opentelemetry.util.types import Attributes

#: the encoder's own function, which :func:`uncache` puts back
_ENCODE_ATTRIBUTES: Callable[[Attributes], list[Any]] = vars(trace_encoder)["_encode_attributes"]
_ENCODE_KEY_VALUE: Callable[[str, Any], Any] = vars(common)["_encode_key_value"]
_KEPT_PAIRS = 4096
_pairs: dict[tuple[str, type, Any], Any] = {}


class KeptHashResource(Resource):
    """A resource whose hash is computed once: the exporter hashes it for every span it sends."""

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or super().__eq__(other)


def kept_hash(resource: Resource) -> KeptHashResource:
    return KeptHashResource(resource.attributes, resource.schema_url)


def _encode_attributes(attributes: Attributes) -> list[Any]:
    """The encoder's list of ``KeyValue`` messages, each pair encoded once while it is kept."""
    if not attributes:
        return []
    encoded = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float:
            pair_key = (key, kind, value)  # the type too: True == 1, but they encode differently
            pair = _pairs.get(pair_key)
            if pair is None:
                pair = _ENCODE_KEY_VALUE(key, value)
                if len(_pairs) >= _KEPT_PAIRS:
                    _pairs.clear()
                _pairs[pair_key] = pair
            encoded.append(pair)
        else:
            encoded.extend(_ENCODE_ATTRIBUTES({key: value}))  # sequences, None: as the encoder does
    return encoded


def cache() -> None:
    """Make the span encoder use :func:`_encode_attributes` (it calls it by its module's global name)."""
    vars(trace_encoder)["_encode_attributes"] = _encode_attributes


def uncache() -> None:
    vars(trace_encoder)["_encode_attributes"] = _ENCODE_ATTRIBUTES
    _pairs.clear()
