"""Executions: a request to run one workflow version, and its record.

Executions are queued here; running them is the execution engine's work.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import Field

from ..db.models import ExecutionStatus, ExecutionTrigger
from .common import PageQuery, RequestModel, ResponseModel, Timestamp
from .workflows import MAX_VERSION, JsonObject


class ExecuteWorkflow(RequestModel):
    inputs: JsonObject = Field(
        default_factory=dict, description="Named inputs; for notebook workflows, the notebook's parameters."
    )
    version: Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)] | None = Field(
        default=None, description="The version to run; the current one when absent."
    )


class DescribeExecution(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    agent_id: uuid.UUID
    workflow_id: uuid.UUID
    version: int
    status: ExecutionStatus
    trigger: ExecutionTrigger
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: dict[str, Any] | None
    attempt: int
    correlation_id: str | None = Field(
        default=None, description="The X-Request-ID of the request that started it; the run logs under it."
    )
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class ListExecutionsQuery(PageQuery):
    org_id: uuid.UUID | None = Field(default=None, description="Default: every organization you can read.")
    workflow_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    status: ExecutionStatus | None = None


class ListExecutionsResponse(ResponseModel):
    """Executions, newest first."""

    items: list[DescribeExecution]
    next_cursor: str | None
