"""Cheaper span export: the OTLP request written as protobuf bytes directly, the same bytes the SDK's encoder sends.

py-spy on a traced server under load put the BatchSpanProcessor's export thread at ~5 % of
the server's CPU (the thread holds the GIL the requests need), nearly all of it the SDK's
``encode_spans``: per span it builds a protobuf ``Span`` message from fifteen keyword
arguments, a ``KeyValue`` and an ``AnyValue`` message per attribute, a ``Status`` message,
copies them all into the request, then serializes it (~20 µs a span). Most of it repeats
from span to span: a statement's text, ``db.system``, a route, the resource, the scope.

:func:`encode_request` writes the wire format itself (protobuf's, which the OTLP
specification fixes): the ids and times as bytes, and everything that repeats (an attribute
pair, a name, a status, the resource, the scope) serialized once by the SDK's own encoder
and kept. Fields come in field-number order and empty ones are left out, as the protobuf
runtime writes them, so the bytes are the SDK's (``tests/tracing/test_export.py`` compares them).
What is rare (events, links, lists and maps as values) is encoded by the SDK as it is.
The caches are bounded; when full they start again, so values seen once (ids in a URL)
cannot grow them. Imported only when tracing is on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.common import _internal as common
from opentelemetry.exporter.otlp.proto.common._internal import trace_encoder
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PB2Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

#: the exporter's own function, which :func:`uncache` puts back
_ENCODE_SPANS: Callable[[Sequence[ReadableSpan]], Any] = vars(trace_exporter)["encode_spans"]
_KEPT = 4096
_pairs: dict[tuple[str, type, Any], bytes] = {}
_names: dict[str, bytes] = {}
_statuses: dict[tuple[Any, str | None], bytes] = {}
_wrappers: dict[tuple[Resource, InstrumentationScope | None], tuple[bytes, bytes]] = {}
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_REMOTE_FLAGS = trace_encoder._span_flags(SpanContext(1, 1, is_remote=True))
_LOCAL_FLAGS = trace_encoder._span_flags(None)
_KINDS: dict[Any, bytes] = {kind: b"0" + bytes((value,)) for kind, value in trace_encoder._SPAN_KIND_MAP.items()}


class KeptHashResource(Resource):
    """A resource whose hash is computed once (the SDK's serializes its attributes to JSON each time)."""

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or super().__eq__(other)


def kept_hash(resource: Resource) -> KeptHashResource:
    return KeptHashResource(resource.attributes, resource.schema_url)


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: its tag, the body's length, the body."""
    return tag + _varint(len(body)) + body


def _keep(cache: dict[Any, bytes], key: Any, encoded: bytes) -> bytes:
    if len(cache) >= _KEPT:
        cache.clear()
    cache[key] = encoded
    return encoded


def _attributes(attributes: Any) -> list[bytes]:
    """Field 9 of a span, once per attribute: each scalar pair is serialized once while it is kept."""
    fields = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float:  # the type too: True == 1, not the same bytes
            pair = _pairs.get((key, kind, value))
            if pair is None:
                encoded = common._encode_key_value(key, value).SerializeToString()
                pair = _keep(_pairs, (key, kind, value), _field(b"J", encoded))
            fields.append(pair)
        else:  # sequences, None: as the SDK does
            fields.extend(_field(b"J", pair.SerializeToString()) for pair in common._encode_attributes({key: value}))
    return fields


def _status(span: ReadableSpan) -> bytes:
    status = span.status
    if status is None:
        return b""
    key = (status.status_code, status.description)
    found = _statuses.get(key)
    if found is None:
        code = cast("Any", status.status_code.value)  # protobuf's stubs type an enum field as its own ValueType
        encoded = PB2Status(code=code, message=status.description or "").SerializeToString()
        found = _keep(_statuses, key, _field(b"z", encoded))
    return found


def _rare(span: ReadableSpan) -> list[bytes]:
    """Fields 10 to 14: dropped counts, events and links, as the SDK encodes them (most spans have none)."""
    fields = []
    if span.dropped_attributes:
        fields.append(b"P" + _varint(span.dropped_attributes))
    for event in trace_encoder._encode_events(span.events) or ():
        fields.append(_field(b"Z", event.SerializeToString()))
    if span.dropped_events:
        fields.append(b"`" + _varint(span.dropped_events))
    for link in trace_encoder._encode_links(span.links) or ():
        fields.append(_field(b"j", link.SerializeToString()))
    if span.dropped_links:
        fields.append(b"p" + _varint(span.dropped_links))
    return fields


def encode_span(span: ReadableSpan) -> bytes:
    """One ``Span`` message, its fields in field-number order as protobuf writes them."""
    context = cast("SpanContext", span.get_span_context())  # a finished span has one
    parent = span.parent
    fields = [b"\n\x10" + context.trace_id.to_bytes(16, "big"), b"\x12\x08" + context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        fields.append(_field(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items()).encode()))
    if parent is not None:
        fields.append(b'"\x08' + parent.span_id.to_bytes(8, "big"))
    name = span.name
    if name:
        fields.append(_names.get(name) or _keep(_names, name, _field(b"*", name.encode())))
    fields.append(_KINDS[span.kind])
    if span.start_time:
        fields.append(b"9" + _FIXED64(span.start_time))
    if span.end_time:
        fields.append(b"A" + _FIXED64(span.end_time))
    fields.extend(_attributes(span.attributes))
    if span.dropped_attributes or span.events or span.links:  # most spans have none
        fields.extend(_rare(span))
    fields.append(_status(span))
    flags = _REMOTE_FLAGS if parent is not None and parent.is_remote else _LOCAL_FLAGS
    fields.append(b"\x85\x01" + _FIXED32(flags))
    return b"".join(fields)


def _wrapper(resource: Resource, scope: InstrumentationScope | None) -> tuple[bytes, bytes]:
    """The fields of a ``ResourceSpans`` before its scopes and of a ``ScopeSpans`` before its spans, once."""
    found = _wrappers.get((resource, scope))
    if found is None:
        encoded_resource = common._encode_resource(resource).SerializeToString()
        encoded_scope = common._encode_instrumentation_scope(scope).SerializeToString()  # type: ignore[arg-type]
        found = (_field(b"\n", encoded_resource), _field(b"\n", encoded_scope))
        if len(_wrappers) >= _KEPT:
            _wrappers.clear()
        _wrappers[(resource, scope)] = found
    return found


def _schema_url(url: str | None) -> bytes:
    return _field(b"\x1a", url.encode()) if url else b""


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """An ``ExportTraceServiceRequest``: spans grouped by resource, then by scope, in the order first seen."""
    grouped: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
    for span in spans:
        grouped.setdefault(span.resource, {}).setdefault(span.instrumentation_scope or None, []).append(
            _field(b"\x12", encode_span(span))
        )
    resource_spans = []
    for resource, scopes in grouped.items():
        parts = []
        for scope, encoded in scopes.items():
            resource_field, scope_field = _wrapper(resource, scope)
            schema = _schema_url(scope.schema_url if scope else None)
            parts.append(_field(b"\x12", b"".join([scope_field, *encoded, schema])))
        resource_spans.append(_field(b"\n", b"".join([resource_field, *parts, _schema_url(resource.schema_url)])))
    return b"".join(resource_spans)


class _Encoded:
    """What the exporter expects of ``encode_spans``: a message it serializes."""

    def __init__(self, spans: Sequence[ReadableSpan]) -> None:
        self._spans = spans

    def SerializePartialToString(self) -> bytes:
        return encode_request(self._spans)


def cache() -> None:
    """Make the OTLP/HTTP exporter use :func:`encode_request` (it calls ``encode_spans`` by that global name)."""
    vars(trace_exporter)["encode_spans"] = _Encoded


def uncache() -> None:
    vars(trace_exporter)["encode_spans"] = _ENCODE_SPANS
    for kept in (_pairs, _names, _statuses, _wrappers):
        kept.clear()
