"""Compiled graphs kept by a process that serves several runs of one organization (:mod:`..reuse`).

Building and compiling a spec's graph is about 40% of a trivial run's CPU in a
warm process. A process that serves one run (the default) gains nothing from
keeping it; one that serves several runs of the same organization compiles
each spec once and binds each run's own checkpointer to a copy
(``Pregel.copy``), as LangGraph's own server shares one compiled graph between
threads. The key is everything the graph is built from: the spec with its
options, the run's integrations (a changed key or URL builds afresh) and
default model. A spec that loads code from the organization's files (a
``callable`` or a ``tool``) is never kept: the file may have changed, and the
process forgets those modules between runs.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import reuse

if TYPE_CHECKING:
    from ..runtime import RunContext
    from ..spec import WorkflowSpec

#: compiled graphs kept at most (least recently used dropped first)
SIZE = 32
_COMPILED: OrderedDict[str, Any] = OrderedDict()


def _from_files(value: Any) -> bool:
    """Some node of the spec (at any depth) loads code from the files: a ``callable`` or a ``tool`` node."""
    if isinstance(value, dict):
        if value.get("type") == "tool" or value.get("callable"):
            return True
        return any(_from_files(item) for item in value.values())
    if isinstance(value, list):
        return any(_from_files(item) for item in value)
    return False


def key_of(spec: WorkflowSpec, options: Any, context: RunContext) -> str | None:
    """What the graph is built from, hashed; None where it must be built for this run alone."""
    if not reuse.serving_many():
        return None
    dumped = spec.model_dump(mode="json")
    if _from_files(dumped):
        return None
    settings = options.model_dump(mode="json") if hasattr(options, "model_dump") else repr(options)
    made_of = [dumped, settings, context.integrations, context.default_model]
    return hashlib.sha256(json.dumps(made_of, sort_keys=True, default=str).encode()).hexdigest()


def compiled(key: str | None, build: Callable[[], Any], saver: Any) -> Any:
    """The graph of ``key`` on this run's ``saver``: compiled now by ``build`` (no checkpointer) unless kept."""
    if key is None:
        return build().compile(checkpointer=saver)
    graph = _COMPILED.get(key)
    if graph is None:
        graph = _COMPILED[key] = build().compile()
        while len(_COMPILED) > SIZE:
            _COMPILED.popitem(last=False)
    else:
        _COMPILED.move_to_end(key)
    return graph.copy(update={"checkpointer": saver})
