"""Runs: executions (also the queue's rows), the schedules that start them, their events (status,
logs, steps) and a notebook run's executed notebook.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, _created, _in, _uuid_pk


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # stopped at a human approval until resumed
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class ExecutionTrigger(StrEnum):
    MANUAL = "manual"
    API = "api"
    SCHEDULE = "schedule"


class WorkflowExecution(Base):
    __tablename__ = "workflow_executions"
    __table_args__ = (
        CheckConstraint(_in("status", ExecutionStatus), name="status_known"),
        CheckConstraint(_in("trigger", ExecutionTrigger), name="trigger_known"),
        CheckConstraint("attempt >= 0", name="attempt_non_negative"),
        Index("ix_executions_org_created", "org_id", text("created_at DESC"), text("id DESC")),
        Index("ix_executions_org_status_created", "org_id", "status", text("created_at DESC"), text("id DESC")),
        Index("ix_executions_workflow_created", "workflow_id", text("created_at DESC"), text("id DESC")),
        Index("ix_executions_agent_created", "agent_id", text("created_at DESC"), text("id DESC")),
        Index(
            "uq_executions_org_idempotency_key",
            "org_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        CheckConstraint("max_attempts >= 1", name="max_attempts_positive"),
        Index("ix_executions_queue", "run_after", "created_at", postgresql_where=text("status = 'queued'")),
        Index("ix_executions_running", "org_id", postgresql_where=text("status = 'running'")),
        Index("ix_executions_leases", "lease_expires_at", postgresql_where=text("status = 'running'")),
        Index("uq_executions_schedule_firing", "schedule_id", "scheduled_for", unique=True),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="RESTRICT"), nullable=False)
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"), nullable=False)
    workflow_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflow_versions.id", ondelete="RESTRICT"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default=ExecutionStatus.QUEUED.value)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False, server_default=ExecutionTrigger.API.value)
    #: json, not jsonb: the keys keep the request's order (papermill injects them in that order)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, server_default=text("'{}'::json"))
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    #: the X-Request-ID (or generated id) of the request that started it, for the run's logs
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    #: the W3C traceparent of that request (tracing on): the worker continues its trace
    traceparent: Mapped[str | None] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # ---- the queue (see orchestrator_ext/engine) ----
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    #: not claimed before this time (a retry's backoff)
    run_after: Mapped[datetime] = _created()
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker_id: Mapped[str | None] = mapped_column(String(200))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedules.id", ondelete="SET NULL"))
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # ---- human in the loop ----
    #: what a waiting run asks (its node and question)
    waiting_for: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: the answer a resumed run goes on with
    resume: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Schedule(Base):
    """A cron schedule that starts runs of a workflow; the scheduler keeps ``next_run_at``."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint("overlap_policy IN ('skip', 'queue', 'cancel_previous')", name="overlap_policy_known"),
        CheckConstraint("misfire_policy IN ('run_once', 'skip')", name="misfire_policy_known"),
        Index("ix_schedules_workflow", "workflow_id", "created_at"),
        Index("ix_schedules_org_id", "org_id"),
        Index("ix_schedules_due", "next_run_at", postgresql_where=text("enabled")),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    cron: Mapped[str] = mapped_column(String(200), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, server_default=text("'{}'::json"))
    #: the workflow version to run; None: the current one at each firing
    version: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    overlap_policy: Mapped[str] = mapped_column(String(16), nullable=False, server_default="skip")
    misfire_policy: Mapped[str] = mapped_column(String(16), nullable=False, server_default="run_once")
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ExecutionEvent(Base):
    """A status change, log line or step of a run; inserting one NOTIFYs ``orchestrator_events``."""

    __tablename__ = "execution_events"
    __table_args__ = (
        CheckConstraint("kind IN ('status', 'log', 'step')", name="kind_known"),
        Index("ix_execution_events_execution", "execution_id", "id"),
        Index("ix_execution_events_org_id", "org_id"),
        # an organization's stream of status changes (migration 0013): after an id, and the recent ones
        Index("ix_execution_events_org_status_id", "org_id", "id", postgresql_where=text("kind = 'status'")),
        Index(
            "ix_execution_events_org_status_created", "org_id", "created_at", postgresql_where=text("kind = 'status'")
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="CASCADE"), nullable=False
    )
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created()


class ExecutionNotebook(Base):
    """The executed notebook of a notebook run (its last attempt)."""

    __tablename__ = "execution_notebooks"
    __table_args__ = (Index("ix_execution_notebooks_org_id", "org_id"),)

    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="CASCADE"), primary_key=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    #: json, not jsonb: keys keep their order (metadata.papermill.parameters is in the inputs' order)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = _created()
