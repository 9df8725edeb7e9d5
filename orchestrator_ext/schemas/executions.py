"""Executions: a request to run one workflow version, its record, its events."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict

from ..db.models import ExecutionStatus, ExecutionTrigger
from .common import WHOLE_NUMBER, PageQuery, RequestModel, ResponseModel, Timestamp
from .workflows import MAX_VERSION, JsonObject, storable

MAX_TIMEOUT = 7 * 24 * 3600


class ExecuteWorkflow(RequestModel):
    inputs: JsonObject = Field(
        default_factory=dict, description="Named inputs; for notebook workflows, the notebook's parameters."
    )
    version: Annotated[int, Strict(), Field(ge=1, le=MAX_VERSION), WHOLE_NUMBER] | None = Field(
        default=None, description="The version to run; the current one when absent."
    )
    timeout_seconds: Annotated[int, Strict(), Field(ge=1, le=MAX_TIMEOUT), WHOLE_NUMBER] | None = Field(
        default=None, description="Stop the run after this many seconds (ends timed_out); default: the workflow's."
    )
    max_attempts: Annotated[int, Strict(), Field(ge=1, le=10), WHOLE_NUMBER] | None = Field(
        default=None, description="Attempts for failures worth retrying; default: the workflow's (1)."
    )


class ResumeExecution(RequestModel):
    answer: Annotated[Any, AfterValidator(storable)] = Field(
        description='The human\'s answer to what the waiting run asks (any JSON value, e.g. {"approved": true}).'
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
    max_attempts: int
    timeout_seconds: int | None
    schedule_id: uuid.UUID | None = Field(default=None, description="The schedule that started it, if any.")
    scheduled_for: Timestamp | None = Field(default=None, description="The schedule's firing time it stands for.")
    cancel_requested_at: Timestamp | None = None
    waiting_for: dict[str, Any] | None = Field(
        default=None, description="What a waiting run asks (its node and question); answer with POST .../resume."
    )
    correlation_id: str | None = Field(
        default=None, description="The X-Request-ID of the request that started it; the run logs under it."
    )
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class ExecutionEventOut(ResponseModel):
    """One event of a run: a status change, a log line or a step (a cell started or finished)."""

    id: int
    kind: str = Field(description="status, log or step")
    attempt: int
    data: dict[str, Any]
    created_at: Timestamp


class StatusEventOut(ExecutionEventOut):
    """A status change of one of an organization's runs (its organization-wide stream)."""

    execution_id: uuid.UUID


class ListExecutionEventsResponse(ResponseModel):
    items: list[ExecutionEventOut]


class ListExecutionsQuery(PageQuery):
    org_id: uuid.UUID | None = Field(default=None, description="Default: every organization you can read.")
    workflow_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    status: ExecutionStatus | None = None


class ListExecutionsResponse(ResponseModel):
    """Executions, newest first."""

    items: list[DescribeExecution]
    next_cursor: str | None
