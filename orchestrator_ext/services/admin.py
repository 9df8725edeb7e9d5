"""Platform administration: every organization, its tier, limits, slug and members.

Platform admins are JupyterHub's admins in team and cluster mode (the hub's
``admin`` flag, asked on every request), the owner of a personal server, and
the names in ``OrchestratorApp.platform_admins``. They do through the API what
an operator does with ``jupyter orchestrator set-tier``, and more:

- list every organization with its tier, limits, members and live agents;
- move one to any tier (GPU and enterprise included), set or clear its limit
  overrides, rename it, and give it the slug a hub group ``org:<slug>`` names;
- make any user a member of any shared organization with any role (e.g. the
  first owner of an organization a hub group created).

Their actions run outside any tenant scope (a system transaction) and each is
written to the audit log of the organization it changed, under the admin's id,
so the organization's own admins see what was done to it. Everyone else gets a
403 from every ``/admin`` endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import AuditEvent, Organization, OrganizationMember, ResourceTier
from ..db.system import system_transaction
from ..errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed
from ..schemas.admin import (
    AdminUpdateOrganization,
    DescribeAdminOrganization,
    DescribeOverrides,
    ListAdminOrganizationsQuery,
    ListAdminOrganizationsResponse,
)
from ..schemas.organizations import AddMember, DescribeMember, DescribeTier
from ..security.permissions import Role
from .organizations import check_not_last_owner, describe_member, describe_org, find_tier, find_user, not_from_hub
from .pagination import page_of, paginate
from .scope import Identity, ScopeFactory

REFUSED = (
    "Only platform admins may use /admin: JupyterHub admins, a personal server's owner, "
    "or the names in OrchestratorApp.platform_admins."
)


class AdminService:
    def __init__(self, scopes: ScopeFactory) -> None:
        self.scopes = scopes

    @asynccontextmanager
    async def _system(self, identity: Identity) -> AsyncIterator[tuple[AsyncSession, uuid.UUID]]:
        """A transaction across every tenant, for a platform admin only; yields it and the admin's user id."""
        if not identity.platform_admin:
            raise Forbidden(REFUSED)
        admin_id = await self.scopes.user_id(identity)
        async with system_transaction(self.scopes.db) as session:
            await session.execute(text("SELECT set_config('orchestrator.user_id', :u, true)"), {"u": str(admin_id)})
            yield session, admin_id

    # ---- organizations ------------------------------------------------------------

    async def list_organizations(
        self, identity: Identity, query: ListAdminOrganizationsQuery
    ) -> ListAdminOrganizationsResponse:
        async with self._system(identity) as (session, _):
            members = (
                select(func.count())
                .select_from(OrganizationMember)
                .where(OrganizationMember.org_id == Organization.id)
                .scalar_subquery()
            )
            stmt = select(Organization, ResourceTier, members).join(
                ResourceTier, ResourceTier.name == Organization.tier_name
            )
            if query.personal is not None:
                personal = Organization.personal_for_user_id.is_not(None)
                stmt = stmt.where(personal if query.personal else ~personal)
            if query.slug is not None:
                stmt = stmt.where(Organization.slug == query.slug)
            stmt = paginate(stmt, Organization.created_at, Organization.id, query.limit, query.cursor)
            rows = (await session.execute(stmt)).all()
            page, next_cursor = page_of(rows, query.limit, lambda row: (row[0].created_at, row[0].id))
            return ListAdminOrganizationsResponse(
                items=[_describe(org, tier, count) for org, tier, count in page], next_cursor=next_cursor
            )

    async def update_organization(
        self, identity: Identity, org_id: uuid.UUID, body: AdminUpdateOrganization
    ) -> DescribeAdminOrganization:
        changes = body.model_dump(exclude_unset=True)
        async with self._system(identity) as (session, admin_id):
            org = await _lock(session, org_id)
            tier = await find_tier(session, changes.get("tier", org.tier_name))
            if "slug" in changes and changes["slug"] != org.slug:
                await _check_slug(session, org, changes["slug"])
            for name in ("name", "slug", "max_concurrent_executions", "max_agents"):
                if name in changes:
                    setattr(org, name, changes[name])
            org.tier_name = tier.name
            limit = org.max_agents if org.max_agents is not None else tier.max_agents
            if org.live_agents > limit:
                field = "max_agents" if "max_agents" in changes else "tier"
                raise Conflict(
                    f"The organization has {org.live_agents} agents; the new limit is {limit}. Archive agents first.",
                    errors=[FieldError(field, "the organization's agents exceed this limit", "limit")],
                )
            if changes:
                org.updated_at = datetime.now(UTC)
                session.add(
                    _event(admin_id, org.id, "organization.admin_update", "organization", org.id, changes=changes)
                )
            await session.flush()
            await session.refresh(org)
            count = await _member_count(session, org.id)
        if "slug" in changes:
            self.scopes.hub_groups.forget()  # memberships follow the new slug at users' next requests
        return _describe(org, tier, count)

    async def set_member(self, identity: Identity, org_id: uuid.UUID, body: AddMember) -> tuple[DescribeMember, bool]:
        """Add ``body``'s user with ``body.role`` or change their role; (the member, whether added)."""
        async with self._system(identity) as (session, admin_id):
            org = await _lock(session, org_id)
            if org.personal_for_user_id is not None:
                raise Conflict("A personal organization has exactly one member; choose a shared organization.")
            user, _ = await find_user(session, body)
            member = await session.get(OrganizationMember, (org_id, user.id))
            added = member is None
            if member is None:
                member = OrganizationMember(org_id=org_id, user_id=user.id, role=body.role.value)
                session.add(member)
                session.add(_event(admin_id, org_id, "member.add", "member", user.id, role=body.role.value))
            elif member.role != body.role.value:
                not_from_hub(member, org, "changed")
                if member.role == Role.OWNER.value:
                    await check_not_last_owner(session, org_id, "demoted")
                session.add(
                    _event(
                        admin_id, org_id, "member.update", "member", user.id, old_role=member.role, role=body.role.value
                    )
                )
                member.role = body.role.value
            await session.flush()
            await session.refresh(member)
            return describe_member(self.scopes.keyring, member, user), added


def _describe(org: Organization, tier: ResourceTier, members: int) -> DescribeAdminOrganization:
    seen = describe_org(org, tier, Role.OWNER)
    return DescribeAdminOrganization(
        id=org.id,
        name=org.name,
        slug=org.slug,
        personal=seen.personal,
        tier=DescribeTier.model_validate(tier),
        limits=seen.limits,
        overrides=DescribeOverrides(max_concurrent_executions=org.max_concurrent_executions, max_agents=org.max_agents),
        members=members,
        live_agents=org.live_agents,
        created_at=org.created_at,
        updated_at=org.updated_at,
    )


def _event(
    admin_id: uuid.UUID, org_id: uuid.UUID, action: str, kind: str, resource_id: uuid.UUID, **details: Any
) -> AuditEvent:
    return AuditEvent(
        org_id=org_id,
        actor_user_id=admin_id,
        action=action,
        resource_type=kind,
        resource_id=str(resource_id),
        details={**details, "platform_admin": True},
    )


async def _lock(session: AsyncSession, org_id: uuid.UUID) -> Organization:
    org = (
        await session.execute(select(Organization).where(Organization.id == org_id).with_for_update())
    ).scalar_one_or_none()
    if org is None:
        raise NotFound(f"No organization with id '{org_id}'.")
    return org


async def _member_count(session: AsyncSession, org_id: uuid.UUID) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).select_from(OrganizationMember).where(OrganizationMember.org_id == org_id)
            )
        ).scalar_one()
    )


async def _check_slug(session: AsyncSession, org: Organization, slug: str | None) -> None:
    if slug is None:
        return
    if org.personal_for_user_id is not None:
        raise ValidationFailed(
            "A personal organization cannot take a slug: a hub group would add members to it.",
            errors=[FieldError("slug", "not allowed on a personal organization", "personal")],
        )
    taken = (
        await session.execute(select(Organization.id).where(Organization.slug == slug, Organization.id != org.id))
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(
            f"The slug '{slug}' belongs to organization '{taken}'.",
            errors=[FieldError("slug", "already used by another organization", "unique")],
        )
