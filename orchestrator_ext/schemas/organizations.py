"""Organizations (tenants), their resource tier and limits, and their members."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, Strict, StringConstraints

from ..security.permissions import Role
from .common import (
    SOURCE_HELP,
    WHOLE_NUMBER,
    MemberSource,
    Name,
    NotNull,
    PageQuery,
    RequestModel,
    ResponseModel,
    Timestamp,
    as_sent,
    omit_default,
    stripped_text_schema,
)

#: the resource tiers there are (migration 0002 creates them; tests/api/test_fuzz_contract.py checks the table)
TierName = Literal["free", "team", "gpu-small", "gpu-large", "enterprise"]
#: the tiers an organization may start on; larger ones need a change by an operator
CreatableTier = Literal["free", "team"]
TIER_NAMES: tuple[str, ...] = get_args(TierName)
CREATABLE_TIERS: tuple[str, ...] = get_args(CreatableTier)
#: the most consecutive runs one process may serve (a bound on how long one process's state can grow)
MAX_RUNS_PER_PROCESS = 1000
RunsPerProcess = Annotated[int, Strict(), Field(ge=1, le=MAX_RUNS_PER_PROCESS), WHOLE_NUMBER]
RUNS_PER_PROCESS_HELP = (
    f"Consecutive framework runs (LangGraph, CrewAI, Agno) of this organization one forked process may serve, "
    f"1-{MAX_RUNS_PER_PROCESS}. 1 (the default): every run gets a fresh process forked from the warm fork server "
    "and used once. N > 1 trades isolation between this organization's own runs for speed: a process serves up "
    "to N runs one after another (then, or when its memory grows past a bound or it sits idle, a fresh one), "
    "each run still in its own working directory with the scrubbed environment, its own log, its own timeout, "
    "and cancel or timeout killing that process ends only the run in it. LOST between runs of this "
    "organization: module globals and imported modules' state, monkeypatches, threads a run left running, "
    "memory a run leaked, files a run wrote outside its working directory (e.g. /tmp), compiled graphs cached "
    "by spec. KEPT: a process never serves two organizations, two tiers or two limits; other organizations' "
    "runs, the platform's database and keys stay out of reach as with 1. Notebook runs are not affected. "
    "Owners and admins may change it."
)
Username = Annotated[str, as_sent(255), StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class CreateOrganization(RequestModel):
    """A new organization; the caller becomes its owner."""

    name: Name
    tier: CreatableTier = Field(
        default="free",
        description=(
            f"One of {', '.join(CREATABLE_TIERS)}; owners may move it between these later; "
            "larger tiers are granted by an operator."
        ),
    )


class UpdateOrganization(RequestModel):
    """Rename or set how many runs share a process (``org:update``), and/or move to another tier
    (``org:change_tier``)."""

    name: NotNull[Name] = Field(default=None, json_schema_extra=omit_default)
    runs_per_process: NotNull[RunsPerProcess] = Field(
        default=None, json_schema_extra=omit_default, description=RUNS_PER_PROCESS_HELP
    )
    tier: NotNull[TierName] = Field(default=None, json_schema_extra=omit_default)


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
    runs_per_process: int = Field(description=RUNS_PER_PROCESS_HELP)
    created_at: Timestamp
    updated_at: Timestamp


class ListOrganizationsQuery(PageQuery):
    pass


class ListOrganizationsResponse(ResponseModel):
    items: list[DescribeOrganization]
    next_cursor: str | None


def _one_of_username_or_id(schema: dict[str, Any]) -> None:
    stripped_text_schema(schema)
    schema["oneOf"] = [{"required": ["username"]}, {"required": ["user_id"]}]


class AddMember(RequestModel):
    """Add an existing user (one who has used the API once), named by ``username`` or ``user_id``."""

    model_config = ConfigDict(json_schema_extra=_one_of_username_or_id)

    username: NotNull[Username] = Field(default=None, json_schema_extra=omit_default)
    user_id: NotNull[uuid.UUID] = Field(default=None, json_schema_extra=omit_default)
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
