"""SQLAlchemy 2 typed models: the tables of the orchestrator.

Tenant tables carry ``org_id`` and are guarded by row-level security
policies (see the initial migration). Columns whose name ends in
``_encrypted`` hold AES-256-GCM ciphertexts written by the services.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..security.permissions import Role


class Framework(StrEnum):
    LANGGRAPH = "langgraph"
    CREWAI = "crewai"
    AGNO = "agno"
    N8N = "n8n"
    NOTEBOOK = "notebook"


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


class MembershipSource(StrEnum):
    HUB = "hub"  # a JupyterHub group org:<slug>[:<role>]


#: an organization's slug: what a hub group ``org:<slug>`` names
SLUG_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"


class IntegrationKind(StrEnum):
    OPENAI_COMPATIBLE = "openai-compatible"
    N8N = "n8n"
    TOOL = "tool"


def _in(column: str, values: type[StrEnum]) -> str:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return f"{column} IN ({listed})"


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp(), nullable=False)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONB}


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    email_encrypted: Mapped[str | None] = mapped_column(Text)
    display_name_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class ResourceTier(Base):
    __tablename__ = "resource_tiers"
    __table_args__ = (
        CheckConstraint("cpu > 0", name="cpu_positive"),
        CheckConstraint("memory_mib > 0", name="memory_positive"),
        CheckConstraint("gpu_count >= 0", name="gpu_count_non_negative"),
        CheckConstraint("max_concurrent_executions > 0", name="concurrency_positive"),
        CheckConstraint("max_agents > 0", name="max_agents_positive"),
        CheckConstraint("writes_per_minute > 0", name="writes_rate_positive"),
        CheckConstraint("executes_per_minute > 0", name="executes_rate_positive"),
        CheckConstraint("monthly_runs IS NULL OR monthly_runs >= 0", name="monthly_runs_non_negative"),
        CheckConstraint("monthly_tokens IS NULL OR monthly_tokens >= 0", name="monthly_tokens_non_negative"),
        CheckConstraint(
            "monthly_gpu_seconds IS NULL OR monthly_gpu_seconds >= 0", name="monthly_gpu_seconds_non_negative"
        ),
    )

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(128), nullable=False)
    cpu: Mapped[float] = mapped_column(Float, nullable=False)
    memory_mib: Mapped[int] = mapped_column(Integer, nullable=False)
    gpu_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    gpu_type: Mapped[str | None] = mapped_column(String(64))
    max_concurrent_executions: Mapped[int] = mapped_column(Integer, nullable=False)
    max_agents: Mapped[int] = mapped_column(Integer, nullable=False)
    #: an organization's rates (all its members together); see services/ratelimit.py
    writes_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, server_default="600")
    executes_per_minute: Mapped[int] = mapped_column(Integer, nullable=False, server_default="600")
    #: an organization's monthly allowances (migration 0012; None: none); see services/usage.py
    monthly_runs: Mapped[int | None] = mapped_column(BigInteger)
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger)
    monthly_gpu_seconds: Mapped[int | None] = mapped_column(BigInteger)


class RateLimit(Base):
    """One rate-limit bucket: its theoretical arrival time (GCRA). Not a tenant table."""

    __tablename__ = "rate_limits"
    __table_args__ = (Index("ix_rate_limits_tat", "tat"), {"prefixes": ["UNLOGGED"]})

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        CheckConstraint(
            "max_concurrent_executions IS NULL OR max_concurrent_executions > 0", name="concurrency_override_positive"
        ),
        CheckConstraint("max_agents IS NULL OR max_agents > 0", name="max_agents_override_positive"),
        CheckConstraint("live_agents >= 0", name="live_agents_non_negative"),
        CheckConstraint("runs_per_process BETWEEN 1 AND 1000", name="runs_per_process_range"),
        CheckConstraint(f"slug ~ '{SLUG_PATTERN}'", name="slug_format"),
        Index("uq_organizations_slug", "slug", unique=True),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: the short name a hub group ``org:<slug>`` refers to (None: no hub group maps to it)
    slug: Mapped[str | None] = mapped_column(String(63))
    tier_name: Mapped[str] = mapped_column(ForeignKey("resource_tiers.name"), nullable=False, server_default="free")
    personal_for_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    max_concurrent_executions: Mapped[int | None] = mapped_column(Integer)
    max_agents: Mapped[int | None] = mapped_column(Integer)
    #: live (not deleted) agents, kept by a trigger that also enforces the agent limit
    live_agents: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    #: consecutive framework runs one forked process may serve (1: a fresh process for every run)
    runs_per_process: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class OrganizationMember(Base):
    __tablename__ = "organization_members"
    __table_args__ = (
        CheckConstraint(_in("role", Role), name="role_known"),
        CheckConstraint(_in("source", MembershipSource), name="source_known"),
        Index("ix_organization_members_user_id", "user_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    #: None: granted through the API; "hub": given by a hub group (it comes and goes with the group)
    source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint(_in("framework", Framework), name="framework_known"),
        CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        Index(
            "ix_agents_org_live_created",
            "org_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_agents_org_framework_created",
            "org_id",
            "framework",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "uq_agents_org_live_name",
            "org_id",
            text("lower(name)"),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    framework: Mapped[str] = mapped_column(String(32), nullable=False)
    tags: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (
        CheckConstraint("current_version >= 1", name="version_positive"),
        CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        Index("ix_workflows_agent_created", "agent_id", text("created_at DESC"), text("id DESC")),
        Index("ix_workflows_org_id", "org_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="RESTRICT"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkflowVersion(Base):
    """Immutable: a database trigger refuses UPDATE and DELETE."""

    __tablename__ = "workflow_versions"
    __table_args__ = (
        UniqueConstraint("workflow_id", "version", name="uq_workflow_versions_number"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_workflow_versions_org_id", "org_id"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    notebook_snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    comment: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


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


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (
        CheckConstraint(_in("kind", IntegrationKind), name="kind_known"),
        CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
        UniqueConstraint("org_id", "name", name="uq_integrations_org_name"),
    )

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_created", "org_id", text("created_at DESC")),)

    id: Mapped[uuid.UUID] = _uuid_pk()
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created()


TENANT_TABLES: tuple[str, ...] = (
    "organizations",
    "organization_members",
    "agents",
    "workflows",
    "workflow_versions",
    "workflow_executions",
    "integrations",
    "audit_events",
    "schedules",
    "execution_events",
    "execution_notebooks",
)
