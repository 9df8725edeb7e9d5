"""Who: users (a hub or OIDC subject, PII encrypted), organizations and their members with a role,
and the organization's audit log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ...security.permissions import Role
from .base import Base, _created, _in, _uuid_pk


class MembershipSource(StrEnum):
    HUB = "hub"  # a JupyterHub group org:<slug>[:<role>]


#: an organization's slug: what a hub group ``org:<slug>`` names
SLUG_PATTERN = "^[a-z0-9][a-z0-9-]{0,62}$"


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = _uuid_pk()
    subject: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    email_encrypted: Mapped[str | None] = mapped_column(Text)
    display_name_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


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
