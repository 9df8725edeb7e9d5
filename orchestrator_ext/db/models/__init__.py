"""SQLAlchemy 2 typed models: the tables of the orchestrator, by topic.

- :mod:`.organizations`: users, organizations, their members and the audit log;
- :mod:`.limits`: resource tiers and rate-limit buckets;
- :mod:`.agents`: agents, workflows and their immutable versions;
- :mod:`.executions`: executions (the queue's rows), schedules, events, executed notebooks;
- :mod:`.integrations`: model providers, n8n instances and tools;
- :mod:`.base`: the declarative base and the column shapes they share.

Every name is imported from here (``from ..db.models import Agent``), and
importing this package registers every table on ``Base.metadata``, which
Alembic compares with the migrations. Tenant tables carry ``org_id`` and are
guarded by row-level security policies (see the initial migration). Columns
whose name ends in ``_encrypted`` hold AES-256-GCM ciphertexts written by the
services.
"""

from __future__ import annotations

from .agents import Agent, Framework, Workflow, WorkflowVersion
from .base import Base
from .executions import (
    ExecutionEvent,
    ExecutionNotebook,
    ExecutionStatus,
    ExecutionTrigger,
    Schedule,
    WorkflowExecution,
)
from .integrations import Integration, IntegrationKind
from .limits import RateLimit, ResourceTier
from .organizations import SLUG_PATTERN, AuditEvent, MembershipSource, Organization, OrganizationMember, User

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

__all__ = [
    "SLUG_PATTERN",
    "TENANT_TABLES",
    "Agent",
    "AuditEvent",
    "Base",
    "ExecutionEvent",
    "ExecutionNotebook",
    "ExecutionStatus",
    "ExecutionTrigger",
    "Framework",
    "Integration",
    "IntegrationKind",
    "MembershipSource",
    "Organization",
    "OrganizationMember",
    "RateLimit",
    "ResourceTier",
    "Schedule",
    "User",
    "Workflow",
    "WorkflowExecution",
    "WorkflowVersion",
]
