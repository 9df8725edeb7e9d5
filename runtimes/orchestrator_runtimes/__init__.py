"""Orchestrator runtimes: the workflow spec and the framework runtimes that read it.

This package stands alone: it imports nothing from ``orchestrator_ext`` (the
server depends on it, never the reverse). Runtimes are found through the
``orchestrator.runtimes`` entry points; each has a ``name`` and validates specs.
"""

from __future__ import annotations

from .notebook import NotebookParameter, NotebookRuntime, ParametersCellError, notebook_problems, parse_parameters
from .record import RECORD_MIME_TYPE, integration, record
from .runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, Runtime, load_runtime
from .spec import (
    GRAPH_FRAMEWORKS,
    NOTEBOOK_FRAMEWORK,
    SPEC_SCHEMA_ID,
    Edge,
    Node,
    NodeType,
    NotebookSource,
    SpecError,
    WorkflowSpec,
    validate_spec,
    workflow_spec_json_schema,
)

__all__ = [
    "GRAPH_FRAMEWORKS",
    "NOTEBOOK_FRAMEWORK",
    "RECORD_MIME_TYPE",
    "SPEC_SCHEMA_ID",
    "Edge",
    "ErrorKind",
    "Node",
    "NodeType",
    "NotebookParameter",
    "NotebookRuntime",
    "NotebookSource",
    "ParametersCellError",
    "RunContext",
    "RunError",
    "RunEvent",
    "RunResult",
    "Runtime",
    "SpecError",
    "WorkflowSpec",
    "load_runtime",
    "notebook_problems",
    "parse_parameters",
    "record",
    "validate_spec",
    "workflow_spec_json_schema",
]
