"""Orchestrator runtimes: the workflow spec and the framework runtimes that read it.

This package stands alone: it imports nothing from ``orchestrator_ext`` (the
server depends on it, never the reverse). Runtimes are found through the
``orchestrator.runtimes`` entry points; each has a ``name`` and validates specs.
"""

from __future__ import annotations

from .notebook import NotebookParameter, NotebookRuntime, ParametersCellError, notebook_problems, parse_parameters
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
    "SPEC_SCHEMA_ID",
    "Edge",
    "Node",
    "NodeType",
    "NotebookParameter",
    "NotebookRuntime",
    "NotebookSource",
    "ParametersCellError",
    "SpecError",
    "WorkflowSpec",
    "notebook_problems",
    "parse_parameters",
    "validate_spec",
    "workflow_spec_json_schema",
]
