"""Orchestrator runtimes: the workflow spec and the framework runtimes that read it.

This package stands alone: it imports nothing from ``orchestrator_ext`` (the
server depends on it, never the reverse). Runtimes are found through the
``orchestrator.runtimes`` entry points; each has a ``name`` and validates specs.

Names are imported on first use: ``from orchestrator_runtimes import record``
inside a run's kernel loads only :mod:`.reporting` (a few milliseconds), not the
spec's validators (nbformat and pydantic, about a second).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .notebook import (
        NotebookParameter as NotebookParameter,
    )
    from .notebook import (
        NotebookRuntime as NotebookRuntime,
    )
    from .notebook import (
        ParametersCellError as ParametersCellError,
    )
    from .notebook import (
        notebook_problems as notebook_problems,
    )
    from .notebook import (
        parse_parameters as parse_parameters,
    )
    from .reporting import RECORD_MIME_TYPE as RECORD_MIME_TYPE
    from .reporting import integration as integration
    from .reporting import record as record
    from .runtime import (
        ErrorKind as ErrorKind,
    )
    from .runtime import (
        RunContext as RunContext,
    )
    from .runtime import (
        RunError as RunError,
    )
    from .runtime import (
        RunEvent as RunEvent,
    )
    from .runtime import (
        RunResult as RunResult,
    )
    from .runtime import (
        Runtime as Runtime,
    )
    from .runtime import (
        load_runtime as load_runtime,
    )
    from .spec import (
        GRAPH_FRAMEWORKS as GRAPH_FRAMEWORKS,
    )
    from .spec import (
        NOTEBOOK_FRAMEWORK as NOTEBOOK_FRAMEWORK,
    )
    from .spec import (
        SPEC_SCHEMA_ID as SPEC_SCHEMA_ID,
    )
    from .spec import (
        Edge as Edge,
    )
    from .spec import (
        Node as Node,
    )
    from .spec import (
        NodeType as NodeType,
    )
    from .spec import (
        NotebookSource as NotebookSource,
    )
    from .spec import (
        SpecError as SpecError,
    )
    from .spec import (
        WorkflowSpec as WorkflowSpec,
    )
    from .spec import (
        validate_spec as validate_spec,
    )
    from .spec import (
        workflow_spec_json_schema as workflow_spec_json_schema,
    )


#: public name -> the submodule that defines it
_WHERE = {
    **dict.fromkeys(
        ["NotebookParameter", "NotebookRuntime", "ParametersCellError", "notebook_problems", "parse_parameters"],
        "notebook",
    ),
    **dict.fromkeys(["RECORD_MIME_TYPE", "integration", "record"], "reporting"),
    **dict.fromkeys(
        ["ErrorKind", "RunContext", "RunError", "RunEvent", "RunResult", "Runtime", "load_runtime"], "runtime"
    ),
    **dict.fromkeys(
        [
            "GRAPH_FRAMEWORKS",
            "NOTEBOOK_FRAMEWORK",
            "SPEC_SCHEMA_ID",
            "Edge",
            "Node",
            "NodeType",
            "NotebookSource",
            "SpecError",
            "WorkflowSpec",
            "validate_spec",
            "workflow_spec_json_schema",
        ],
        "spec",
    ),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator_runtimes' has no attribute {name!r}")
    loaded = importlib.import_module(f".{module}", __name__)
    for public, where in _WHERE.items():
        if where == module:
            globals()[public] = getattr(loaded, public)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
