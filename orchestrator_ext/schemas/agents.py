"""Agents: a named thing that runs on one framework."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from ..db.models import Framework
from .common import Name, PageQuery, RequestModel, ResponseModel, Timestamp, as_sent

Description = Annotated[str, as_sent(5000), StringConstraints(max_length=5000)]
Tag = Annotated[str, as_sent(64), StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class CreateAgent(RequestModel):
    name: Name
    framework: Framework
    description: Description = ""
    tags: Annotated[list[Tag], Field(max_length=32)] = Field(default_factory=list)
    org_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller's personal organization.")


class UpdateAgent(RequestModel):
    """Change the fields given (a field left out, or null, keeps its value); the framework never changes."""

    name: Name | None = None
    description: Description | None = None
    tags: Annotated[list[Tag], Field(max_length=32)] | None = None


class DescribeAgent(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    framework: Framework
    description: str
    tags: list[str]
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None = None


class ListAgentsQuery(PageQuery):
    org_id: uuid.UUID | None = None
    framework: Framework | None = None
    q: Annotated[str, as_sent(200), StringConstraints(max_length=200)] | None = Field(
        default=None, description="Case-insensitive substring of the name."
    )


class ListAgentsResponse(ResponseModel):
    items: list[DescribeAgent]
    next_cursor: str | None
