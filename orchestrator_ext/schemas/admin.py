"""``/admin``: what platform admins (JupyterHub admins) see and change across every organization."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from ..db.models import SLUG_PATTERN
from .common import Name, NotNull, PageQuery, QueryModel, RequestModel, ResponseModel, Timestamp, omit_default
from .organizations import DescribeLimits, DescribeTier, TierName

Slug = Annotated[str, StringConstraints(strip_whitespace=True, pattern=SLUG_PATTERN)]
Override = Annotated[int, Field(ge=1, le=1_000_000)]


class ListAdminOrganizationsQuery(PageQuery, QueryModel):
    personal: bool | None = Field(
        default=None, description="true: only users' personal organizations; false: only shared ones; omitted: all."
    )
    slug: Slug | None = Field(default=None, description="Only the organization with this slug.")


class DescribeOverrides(ResponseModel):
    """The organization's own limits, where they replace its tier's (null: the tier's)."""

    max_concurrent_executions: int | None
    max_agents: int | None


class DescribeAdminOrganization(ResponseModel):
    id: uuid.UUID
    name: str
    slug: str | None
    personal: bool
    tier: DescribeTier
    limits: DescribeLimits
    overrides: DescribeOverrides
    members: int = Field(description="How many members it has.")
    live_agents: int = Field(description="Agents not archived.")
    created_at: Timestamp
    updated_at: Timestamp


class ListAdminOrganizationsResponse(ResponseModel):
    items: list[DescribeAdminOrganization]
    next_cursor: str | None


class AdminUpdateOrganization(RequestModel):
    """Any tier, a slug (null: none), limit overrides (null: the tier's) and the name."""

    name: NotNull[Name] = Field(default=None, json_schema_extra=omit_default)
    tier: NotNull[TierName] = Field(default=None, json_schema_extra=omit_default)
    slug: Slug | None = Field(
        default=None, description="Links the organization to the hub group org:<slug>; null unlinks it."
    )
    max_concurrent_executions: Override | None = None
    max_agents: Override | None = None
