"""Organizations and their members.

Rules:

- Every user has a personal organization (made on first sight by the scope
  factory). It has exactly one member, its owner: nobody can be added to it,
  and its owner can neither leave it nor be demoted (they are its last owner).
- A new organization starts on the ``free`` or ``team`` tier
  (:data:`~orchestrator_ext.schemas.organizations.CREATABLE_TIERS`), and its
  owners (``org:change_tier``) may move it between those self-service tiers;
  the larger tiers (GPU, enterprise) cost real resources and are granted by an
  operator with ``jupyter orchestrator set-tier``.
- Renaming needs ``org:update``, changing the tier ``org:change_tier``. Moving
  to a tier whose agent limit is below the organization's live agents is refused.
- Members: ``members:read`` to list; ``members:manage`` to add, remove and
  re-role admins, developers and viewers; ``members:manage_owners`` when the
  member is or becomes an owner. Anyone may leave (remove themself). The last
  owner can be neither removed nor demoted. Member changes lock the
  organization row, so two concurrent demotions cannot both pass that check.
- Another tenant's organization does not exist for the caller (404).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Agent, MembershipSource, Organization, OrganizationMember, ResourceTier, User
from ..errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from ..schemas.organizations import (
    CREATABLE_TIERS,
    AddMember,
    CreateOrganization,
    DescribeLimits,
    DescribeMember,
    DescribeOrganization,
    DescribeTier,
    ListMembersQuery,
    ListMembersResponse,
    ListOrganizationsQuery,
    ListOrganizationsResponse,
    UpdateMember,
    UpdateOrganization,
)
from ..security.crypto import KeyRing
from ..security.permissions import Permission, Role
from . import audit
from .pagination import page_of, paginate
from .scope import Identity, Scope, ScopeFactory
from .settings import ServiceSettings
from .users import open_field


def _self_service(wanted: str, current: str) -> None:
    """Owners move between the self-service tiers; the larger ones (GPU, enterprise) cost real
    resources, so an operator grants them (``jupyter orchestrator set-tier``)."""
    if wanted not in CREATABLE_TIERS or current not in CREATABLE_TIERS:
        raise Forbidden(
            f"Owners can move an organization between the self-service tiers ({', '.join(CREATABLE_TIERS)}); "
            f"moving from '{current}' to '{wanted}' is done by an operator (jupyter orchestrator set-tier)."
        )


def describe_org(org: Organization, tier: ResourceTier, role: Role) -> DescribeOrganization:
    """An organization as the caller (holding ``role``) sees it, with its effective limits."""
    limits = DescribeLimits(
        cpu=tier.cpu,
        memory_mib=tier.memory_mib,
        gpu_count=tier.gpu_count,
        gpu_type=tier.gpu_type,
        max_concurrent_executions=(
            org.max_concurrent_executions
            if org.max_concurrent_executions is not None
            else tier.max_concurrent_executions
        ),
        max_agents=org.max_agents if org.max_agents is not None else tier.max_agents,
    )
    return DescribeOrganization(
        id=org.id,
        name=org.name,
        slug=org.slug,
        personal=org.personal_for_user_id is not None,
        role=role,
        tier=DescribeTier.model_validate(tier),
        limits=limits,
        runs_per_process=org.runs_per_process,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


def describe_member(keyring: KeyRing, member: OrganizationMember, user: User) -> DescribeMember:
    """A membership as the API shows it (the display name decrypted)."""
    return DescribeMember(
        user_id=user.id,
        username=user.subject,
        display_name=open_field(keyring, user.display_name_encrypted, "display_name", user.id),
        role=Role(member.role),
        source=member.source or "api",
        joined_at=member.created_at,
    )


def not_from_hub(member: OrganizationMember, org: Organization, change: str) -> None:
    """A membership a hub group gives follows the group: the hub is where it changes."""
    if member.source == MembershipSource.HUB.value:
        raise Conflict(
            f"This membership comes from the JupyterHub group 'org:{org.slug}' and cannot be {change} here: "
            "change the user's groups in the hub's admin panel."
        )


def permission_for(*roles: Role) -> Permission:
    """What it takes to act on a membership that is, or becomes, any of ``roles``."""
    return Permission.MEMBERS_MANAGE_OWNERS if Role.OWNER in roles else Permission.MEMBERS_MANAGE


class OrganizationService:
    """``/organizations`` and ``/organizations/{id}/members``."""

    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings) -> None:
        self.scopes = scopes
        self.settings = settings

    # ---- organizations ----------------------------------------------------------

    async def list(self, identity: Identity, query: ListOrganizationsQuery) -> ListOrganizationsResponse:
        async with self.scopes.enter(identity) as scope:
            orgs = scope.actor.orgs_allowing(Permission.ORG_READ)
            if not orgs:
                return ListOrganizationsResponse(items=[], next_cursor=None)
            stmt = self._with_tier().where(Organization.id.in_(orgs))
            stmt = paginate(stmt, Organization.created_at, Organization.id, query.limit, query.cursor)
            rows = (await scope.session.execute(stmt)).all()
            page, next_cursor = page_of(rows, query.limit, lambda row: (row[0].created_at, row[0].id))
            items = [describe_org(org, tier, scope.actor.roles[org.id]) for org, tier in page]
            return ListOrganizationsResponse(items=items, next_cursor=next_cursor)

    async def create(self, identity: Identity, body: CreateOrganization) -> DescribeOrganization:
        async with self.scopes.enter(identity) as scope:
            tier = await find_tier(scope.session, body.tier)
            if tier.name not in CREATABLE_TIERS:
                raise ValidationFailed(
                    f"A new organization starts on one of: {', '.join(CREATABLE_TIERS)}; "
                    f"an owner can move it to '{tier.name}' afterwards.",
                    errors=[FieldError("tier", f"must be one of {', '.join(CREATABLE_TIERS)} on creation", "enum")],
                )
            org = Organization(id=uuid.uuid4(), name=body.name, tier_name=tier.name, created_by=scope.actor.user_id)
            await scope.admit_org(org.id)
            scope.session.add(org)
            await scope.session.flush()
            scope.session.add(OrganizationMember(org_id=org.id, user_id=scope.actor.user_id, role=Role.OWNER.value))
            audit.record(scope, "organization.create", "organization", org.id, org.id, tier=tier.name)
            await scope.session.flush()
            await scope.session.refresh(org)
            return describe_org(org, tier, Role.OWNER)

    async def get(self, identity: Identity, org_id: uuid.UUID) -> DescribeOrganization:
        async with self.scopes.enter(identity) as scope:
            role = scope.actor.require(org_id, Permission.ORG_READ)
            org, tier = await self._load(scope, org_id)
            return describe_org(org, tier, role)

    async def update(self, identity: Identity, org_id: uuid.UUID, body: UpdateOrganization) -> DescribeOrganization:
        async with self.scopes.enter(identity) as scope:
            role = scope.actor.require(org_id, Permission.ORG_UPDATE)
            changes = body.model_dump(exclude_unset=True)
            if "tier" in changes:
                scope.actor.require(org_id, Permission.ORG_CHANGE_TIER)
            org, tier = await self._load(scope, org_id, lock=True)
            if "tier" in changes and changes["tier"] != tier.name:
                wanted = await find_tier(scope.session, changes["tier"])
                _self_service(wanted.name, tier.name)
                tier = wanted
                await self._check_agents_fit(scope, org, tier)
                org.tier_name = tier.name
            if "name" in changes:
                org.name = changes["name"]
            if "runs_per_process" in changes:
                org.runs_per_process = changes["runs_per_process"]
            if changes:
                org.updated_at = datetime.now(UTC)
                audit.record(
                    scope, "organization.update", "organization", org.id, org.id, fields=sorted(changes), tier=tier.name
                )
                await scope.session.flush()
            return describe_org(org, tier, role)

    # ---- members ------------------------------------------------------------------

    async def list_members(self, identity: Identity, org_id: uuid.UUID, query: ListMembersQuery) -> ListMembersResponse:
        async with self.scopes.enter(identity) as scope:
            scope.actor.require(org_id, Permission.MEMBERS_READ)
            stmt = (
                select(OrganizationMember, User)
                .join(User, User.id == OrganizationMember.user_id)
                .where(OrganizationMember.org_id == org_id)
            )
            stmt = paginate(stmt, OrganizationMember.created_at, OrganizationMember.user_id, query.limit, query.cursor)
            rows = (await scope.session.execute(stmt)).all()
            page, next_cursor = page_of(rows, query.limit, lambda row: (row[0].created_at, row[0].user_id))
            return ListMembersResponse(items=[self._describe_member(m, u) for m, u in page], next_cursor=next_cursor)

    async def add_member(self, identity: Identity, org_id: uuid.UUID, body: AddMember) -> DescribeMember:
        async with self.scopes.enter(identity) as scope:
            scope.actor.require(org_id, permission_for(body.role))
            org = await self._lock(scope, org_id)
            if org.personal_for_user_id is not None:
                raise Conflict("A personal organization has exactly one member; create an organization to share work.")
            user, field = await find_user(scope.session, body)
            if await self._membership(scope, org_id, user.id) is not None:
                raise Conflict(
                    "The user is already a member; change their role instead.",
                    errors=[FieldError(field, "already a member of this organization", "unique")],
                )
            member = OrganizationMember(org_id=org_id, user_id=user.id, role=body.role.value)
            scope.session.add(member)
            audit.record(scope, "member.add", "member", user.id, org_id, role=body.role.value)
            await scope.session.flush()
            await scope.session.refresh(member)
            return self._describe_member(member, user)

    async def update_member(
        self, identity: Identity, org_id: uuid.UUID, user_id: uuid.UUID, body: UpdateMember
    ) -> DescribeMember:
        async with self.scopes.enter(identity) as scope:
            scope.actor.require(org_id, Permission.MEMBERS_READ)
            org = await self._lock(scope, org_id)
            member, user = await self._load_member(scope, org_id, user_id)
            not_from_hub(member, org, "changed")
            current = Role(member.role)
            scope.actor.require(org_id, permission_for(current, body.role))
            if current == body.role:
                return self._describe_member(member, user)
            if current == Role.OWNER:
                await check_not_last_owner(scope.session, org_id, "demoted")
            member.role = body.role.value
            audit.record(
                scope, "member.update", "member", user_id, org_id, old_role=current.value, role=body.role.value
            )
            await scope.session.flush()
            return self._describe_member(member, user)

    async def remove_member(self, identity: Identity, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member; removing oneself (leaving) needs no permission beyond membership."""
        async with self.scopes.enter(identity) as scope:
            scope.actor.require(org_id, Permission.MEMBERS_READ)
            org = await self._lock(scope, org_id)
            member, _ = await self._load_member(scope, org_id, user_id)
            not_from_hub(member, org, "removed")
            role = Role(member.role)
            leaving = user_id == scope.actor.user_id
            if not leaving:
                scope.actor.require(org_id, permission_for(role))
            if role == Role.OWNER:
                await check_not_last_owner(scope.session, org_id, "removed")
            await scope.session.delete(member)
            audit.record(scope, "member.remove", "member", user_id, org_id, role=role.value, left=leaving)
            await scope.session.flush()

    # ---- helpers ------------------------------------------------------------------

    @staticmethod
    def _with_tier() -> Select[Organization, ResourceTier]:
        return select(Organization, ResourceTier).join(ResourceTier, ResourceTier.name == Organization.tier_name)

    async def _load(self, scope: Scope, org_id: uuid.UUID, *, lock: bool = False) -> tuple[Organization, ResourceTier]:
        stmt = self._with_tier().where(Organization.id == org_id)
        if lock:
            stmt = stmt.with_for_update(of=Organization)
        row = (await scope.session.execute(stmt)).one_or_none()
        if row is None:
            raise NotFound(f"No organization with id '{org_id}'.")
        return row

    async def _lock(self, scope: Scope, org_id: uuid.UUID) -> Organization:
        stmt = select(Organization).where(Organization.id == org_id).with_for_update()
        org = (await scope.session.execute(stmt)).scalar_one_or_none()
        if org is None:
            raise NotFound(f"No organization with id '{org_id}'.")
        return org

    async def _check_agents_fit(self, scope: Scope, org: Organization, tier: ResourceTier) -> None:
        limit = org.max_agents if org.max_agents is not None else tier.max_agents
        live = (
            await scope.session.execute(
                select(func.count()).select_from(Agent).where(Agent.org_id == org.id, Agent.deleted_at.is_(None))
            )
        ).scalar_one()
        if live > limit:
            raise Conflict(
                f"The organization has {live} agents; tier '{tier.name}' allows {limit}. Archive agents first.",
                errors=[FieldError("tier", "the organization's agents exceed this tier's limit", "limit")],
            )

    async def _membership(self, scope: Scope, org_id: uuid.UUID, user_id: uuid.UUID) -> OrganizationMember | None:
        return await scope.session.get(OrganizationMember, (org_id, user_id))

    async def _load_member(
        self, scope: Scope, org_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[OrganizationMember, User]:
        stmt = (
            select(OrganizationMember, User)
            .join(User, User.id == OrganizationMember.user_id)
            .where(OrganizationMember.org_id == org_id, OrganizationMember.user_id == user_id)
        )
        row = (await scope.session.execute(stmt)).one_or_none()
        if row is None:
            raise NotFound(f"No member with user id '{user_id}' in this organization.")
        return row

    def _describe_member(self, member: OrganizationMember, user: User) -> DescribeMember:
        return describe_member(self.scopes.keyring, member, user)


async def find_tier(session: AsyncSession, name: str) -> ResourceTier:
    """The tier named ``name``; an unknown one is a 422 on ``tier`` listing the known ones."""
    tier = await session.get(ResourceTier, name)
    if tier is None:
        listed = ", ".join((await session.execute(select(ResourceTier.name).order_by(ResourceTier.name))).scalars())
        raise ValidationFailed(
            f"There is no tier '{name}'; the tiers are: {listed}.",
            errors=[FieldError("tier", f"unknown tier; one of {listed}", "enum")],
        )
    return tier


async def find_user(session: AsyncSession, body: AddMember) -> tuple[User, str]:
    """The user ``body`` names and the request field that named them."""
    if (body.username is None) == (body.user_id is None):
        raise ValidationFailed(
            "Name the user by exactly one of 'username' or 'user_id'.",
            errors=[FieldError("username", "give exactly one of username or user_id", "missing")],
        )
    field = "username" if body.username is not None else "user_id"
    condition: Any = User.subject == body.username if body.username is not None else User.id == body.user_id
    user = (await session.execute(select(User).where(condition))).scalar_one_or_none()
    if user is None:
        raise ValidationFailed(
            "No such user: a user exists once they have used the API.",
            errors=[FieldError(field, "no such user (they must sign in once first)", "not_found")],
        )
    return user, field


async def check_not_last_owner(session: AsyncSession, org_id: uuid.UUID, change: str) -> None:
    owners = (
        await session.execute(
            select(func.count())
            .select_from(OrganizationMember)
            .where(OrganizationMember.org_id == org_id, OrganizationMember.role == Role.OWNER.value)
        )
    ).scalar_one()
    if owners <= 1:
        raise Conflict(f"The last owner cannot be {change}; make another member an owner first.")
