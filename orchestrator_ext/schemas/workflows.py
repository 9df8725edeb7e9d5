"""Workflows and their immutable versions: request and response shapes.

A spec travels as a JSON object; the service validates it against the
workflow spec (``GET /schemas/workflow-spec.json``) and the agent's framework,
so its errors name the node or edge at fault (``spec.edges.1.target``).
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field, RootModel, StringConstraints

from .common import (
    VERSION_CURSOR_PATTERN,
    Name,
    PageQuery,
    QueryModel,
    RequestModel,
    ResponseModel,
    Timestamp,
    as_sent,
)

#: the largest version number (a PostgreSQL integer)
MAX_VERSION = 2**31 - 1


def storable(value: Any) -> Any:
    """Refuse what JSON allows Python but PostgreSQL refuses: NaN, infinities, NUL characters."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
        if isinstance(item, str) and "\x00" in item:
            raise ValueError("text must not contain NUL characters")
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(storable)]
StoredName = Annotated[Name, AfterValidator(storable)]
Comment = Annotated[str, as_sent(2000), StringConstraints(max_length=2000), AfterValidator(storable)]
SpecDocument = Annotated[
    JsonObject,
    Field(description="A workflow spec (see GET /schemas/workflow-spec.json); checked against the agent's framework."),
]


class CreateWorkflow(RequestModel):
    name: StoredName
    spec: SpecDocument
    comment: Comment = Field(default="", description="What version 1 is about.")


class UpdateWorkflow(RequestModel):
    """Save a new version (n+1): versions are never changed. Send If-Match: "<n>" to refuse lost updates."""

    spec: SpecDocument
    name: StoredName | None = Field(default=None, description="Rename the workflow with this version.")
    comment: Comment = Field(default="", description="What changed in this version.")


class DescribeParameter(ResponseModel):
    """A notebook parameter: an assignment of the cell tagged 'parameters'."""

    name: str
    default: Any = Field(default=None, description="The literal default; null when it is not a literal.")
    type: str = Field(description="The annotation, or the literal's type ('int', 'str', ...), else 'any'.")


class DescribeWorkflow(ResponseModel):
    id: uuid.UUID
    agent_id: uuid.UUID
    org_id: uuid.UUID
    name: str
    version: int = Field(description="The current version (also the ETag).")
    spec: dict[str, Any]
    parameters: list[DescribeParameter] = Field(description="Notebook workflows: the notebook's parameters.")
    created_at: Timestamp
    updated_at: Timestamp


class DescribeWorkflowVersion(ResponseModel):
    workflow_id: uuid.UUID
    version: int
    spec: dict[str, Any]
    parameters: list[DescribeParameter]
    comment: str
    created_by: uuid.UUID | None
    created_at: Timestamp


class ListWorkflowsQuery(PageQuery):
    pass


class ListWorkflowsResponse(ResponseModel):
    items: list[DescribeWorkflow]
    next_cursor: str | None


class ListWorkflowVersionsQuery(PageQuery):
    cursor: Annotated[str | None, Field(json_schema_extra={"pattern": VERSION_CURSOR_PATTERN})] = Field(
        default=None, description="next_cursor of the previous page (a version number)."
    )


class ListWorkflowVersionsResponse(ResponseModel):
    """Versions, newest first."""

    items: list[DescribeWorkflowVersion]
    next_cursor: str | None


class DescribeJsonSchema(RootModel[dict[str, Any]]):
    """A JSON Schema document."""


class SpecSchemaQuery(QueryModel):
    framework: str | None = Field(
        default=None,
        max_length=64,
        description="A framework (langgraph, crewai, agno...): nodes and options are that framework's.",
    )


class ValidateSpec(RequestModel):
    framework: str = Field(
        min_length=1, max_length=64, description="The agent framework the spec is for (langgraph, crewai, agno, ...)."
    )
    spec: JsonObject = Field(description="The workflow spec to check.")


class SpecProblem(ResponseModel):
    field: str = Field(description="Where: a dotted location such as spec.nodes.2.config.prompt.")
    message: str


class ValidateSpecResponse(ResponseModel):
    valid: bool
    errors: list[SpecProblem] = Field(description="Every problem found, each with the node or field at fault.")
