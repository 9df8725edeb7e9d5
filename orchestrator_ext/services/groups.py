"""Organization membership from JupyterHub groups.

A hub group named ``org:<slug>`` makes its members developers of the
organization whose slug is ``<slug>``; ``org:<slug>:<role>`` gives that role
(owner, admin, developer, viewer). A user in several groups of one
organization gets the highest role. An organization a group names that does
not exist yet is created (named after its slug, on the ``free`` tier); a
platform admin sets its tier, or links an existing organization to a group by
giving it that slug (``PATCH /admin/organizations/{id}``).

Memberships a group gives are marked ``source = 'hub'``: they follow the
group (a user taken out of it loses the membership at their next request, a
group's role change changes theirs) and the API refuses to change or remove
them. A membership granted through the API is never touched by the groups.

The sync runs when a request comes with a set of groups this process has not
seen for that user (each API process remembers the last set per user), in a
transaction of its own, outside any tenant scope: joining an organization is
exactly what the caller's own scope cannot do yet.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from ..db.engine import Database
from ..db.models import SLUG_PATTERN, AuditEvent, MembershipSource, Organization, OrganizationMember
from ..db.system import system_transaction
from ..security.permissions import Role

log = logging.getLogger("orchestrator.hub")

GROUP_PREFIX = "org:"
DEFAULT_ROLE = Role.DEVELOPER
RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}
_SLUG = re.compile(SLUG_PATTERN)

Grants = tuple[tuple[str, Role], ...]


def parse_org_groups(groups: Iterable[str]) -> Grants:
    """The (slug, role) pairs that hub groups grant, one per slug (its highest role), sorted.

    Groups that do not start with ``org:`` are not about organizations; one that
    does but is malformed (a bad slug, an unknown role) is logged and ignored.
    """
    best: dict[str, Role] = {}
    for group in groups:
        if not group.startswith(GROUP_PREFIX):
            continue
        slug, _, role_name = group[len(GROUP_PREFIX) :].partition(":")
        try:
            role = Role(role_name) if role_name else DEFAULT_ROLE
        except ValueError:
            log.warning("hub group %r names no role (one of %s): ignored", group, ", ".join(r.value for r in Role))
            continue
        if not _SLUG.match(slug):
            log.warning("hub group %r: '%s' is not an organization slug (%s): ignored", group, slug, SLUG_PATTERN)
            continue
        if slug not in best or RANK[role] > RANK[best[slug]]:
            best[slug] = role
    return tuple(sorted(best.items()))


class HubGroupSync:
    """Keeps a user's hub-managed memberships equal to what their hub groups grant."""

    def __init__(self, db: Database) -> None:
        self.db = db
        #: user id -> the grants last applied by this process
        self._applied: dict[uuid.UUID, Grants] = {}

    def forget(self) -> None:
        """Apply every user's groups again at their next request (e.g. after a slug changed)."""
        self._applied.clear()

    async def sync(self, user_id: uuid.UUID, subject: str, grants: Grants) -> None:
        if self._applied.get(user_id) == grants:
            return
        wanted = dict(grants)
        async with system_transaction(self.db) as session:
            if wanted:
                await session.execute(
                    insert(Organization)
                    .values([{"id": uuid.uuid4(), "name": slug, "slug": slug} for slug in wanted])
                    .on_conflict_do_nothing(index_elements=["slug"])
                )
            found = await session.execute(
                select(Organization.slug, Organization.id).where(Organization.slug.in_(wanted))
            )
            orgs: dict[str, uuid.UUID] = {row.slug: row.id for row in found}
            mine = await session.execute(
                select(OrganizationMember.org_id, OrganizationMember.role, OrganizationMember.source)
                .where(OrganizationMember.user_id == user_id)
                .with_for_update()
            )
            current: dict[uuid.UUID, tuple[str, str | None]] = {row.org_id: (row.role, row.source) for row in mine}
            changes: list[AuditEvent] = []
            for slug, role in wanted.items():
                org_id = orgs[slug]
                had = current.get(org_id)
                if had is None:
                    await session.execute(
                        insert(OrganizationMember)
                        .values(org_id=org_id, user_id=user_id, role=role.value, source=MembershipSource.HUB.value)
                        .on_conflict_do_nothing()
                    )
                    changes.append(_event(org_id, user_id, "member.add", role=role.value, group=_group(slug, role)))
                elif had[1] == MembershipSource.HUB.value and had[0] != role.value:
                    await session.execute(
                        update(OrganizationMember)
                        .where(OrganizationMember.org_id == org_id, OrganizationMember.user_id == user_id)
                        .values(role=role.value)
                    )
                    changes.append(
                        _event(
                            org_id, user_id, "member.update", old_role=had[0], role=role.value, group=_group(slug, role)
                        )
                    )
            kept = {orgs[slug] for slug in wanted}
            for org_id, (old_role, source) in current.items():
                if source == MembershipSource.HUB.value and org_id not in kept:
                    await session.execute(
                        delete(OrganizationMember).where(
                            OrganizationMember.org_id == org_id, OrganizationMember.user_id == user_id
                        )
                    )
                    changes.append(_event(org_id, user_id, "member.remove", role=old_role, left=False))
            session.add_all(changes)
        if changes:
            log.info("hub groups of %s: %d membership change(s)", subject, len(changes))
        self._applied[user_id] = grants


def _group(slug: str, role: Role) -> str:
    return f"{GROUP_PREFIX}{slug}" if role == DEFAULT_ROLE else f"{GROUP_PREFIX}{slug}:{role.value}"


def _event(org_id: uuid.UUID, user_id: uuid.UUID, action: str, **details: object) -> AuditEvent:
    """An audit row for a change the hub's groups made (the actor is the user it concerns)."""
    return AuditEvent(
        org_id=org_id,
        actor_user_id=user_id,
        action=action,
        resource_type="member",
        resource_id=str(user_id),
        details={**details, "source": MembershipSource.HUB.value},
    )
