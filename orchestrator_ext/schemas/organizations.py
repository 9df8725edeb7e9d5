"""Organizations (tenants), their resource tier and limits, and their members."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from ..security.permissions import Role
from .common import SOURCE_HELP, MemberSource, Name, NotNull, PageQuery, RequestModel, ResponseModel, Timestamp

TierName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]

#: the tiers an organization may start on; larger ones need a change by an owner
CREATABLE_TIERS: tuple[str, ...] = ("free", "team")


class CreateOrganization(RequestModel):
    """A new organization; the caller becomes its owner."""

    name: Name
    tier: TierName = Field(
        default="free",
        description=(
            f"One of {', '.join(CREATABLE_TIERS)}; owners may move it between these later; "
            "larger tiers are granted by an operator."
        ),
    )


class UpdateOrganization(RequestModel):
    """Rename (``org:update``) and/or move to another tier (``org:change_tier``)."""

    name: NotNull[Name] = None
    tier: NotNull[TierName] = None


class DescribeTier(ResponseModel):
    name: str
    title: str
    cpu: float
    memory_mib: int
    gpu_count: int
    gpu_type: str | None
    max_concurrent_executions: int
    max_agents: int


class DescribeLimits(ResponseModel):
    """The limits in force: the organization's override where it has one, else its tier's."""

    cpu: float
    memory_mib: int
    gpu_count: int
    gpu_type: str | None
    max_concurrent_executions: int
    max_agents: int


class DescribeOrganization(ResponseModel):
    id: uuid.UUID
    name: str
    slug: str | None = Field(
        description="The short name a JupyterHub group org:<slug> refers to (set by a platform admin); null: none."
    )
    personal: bool = Field(description="A user's personal organization: exactly one member, its owner.")
    role: Role = Field(description="The caller's role in the organization.")
    tier: DescribeTier
    limits: DescribeLimits
    created_at: Timestamp
    updated_at: Timestamp


class ListOrganizationsQuery(PageQuery):
    pass


class ListOrganizationsResponse(ResponseModel):
    items: list[DescribeOrganization]
    next_cursor: str | None


class AddMember(RequestModel):
    """Add an existing user (one who has used the API once), named by ``username`` or ``user_id``."""

    username: Username | None = None
    user_id: uuid.UUID | None = None
    role: Role


class UpdateMember(RequestModel):
    role: Role


class DescribeMember(ResponseModel):
    user_id: uuid.UUID
    username: str
    display_name: str | None
    role: Role
    source: MemberSource = Field(description=SOURCE_HELP)
    joined_at: Timestamp


class ListMembersQuery(PageQuery):
    pass


class ListMembersResponse(ResponseModel):
    items: list[DescribeMember]
    next_cursor: str | None
