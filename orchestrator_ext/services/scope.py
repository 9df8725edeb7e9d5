"""Who is calling, and the tenant scope of their transaction.

:class:`Identity` is what the authentication layer (jupyter-server's identity
provider, the hub) says about the caller. :class:`Actor` is the same caller as
the database knows them: a user row and their memberships. Entering a scope
sets the row-level-security settings for the transaction, so a query that
forgets its organization filter still sees only the caller's organizations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.engine import Database
from ..db.models import Organization, OrganizationMember, User
from ..db.reads import Prepared
from ..errors import FieldError, Forbidden, NotFound, ValidationFailed
from ..security.crypto import KeyRing
from ..security.permissions import Permission, Role, role_allows
from .groups import HubGroupSync


@dataclass(frozen=True)
class Identity:
    """The authenticated caller: a stable subject (user name) and optional profile hints.

    ``platform_admin``: the caller operates the whole platform (a JupyterHub
    admin, the owner of a personal server, or a name in
    ``OrchestratorApp.platform_admins``): the ``/admin`` endpoints answer them.
    ``org_grants``: the organizations the caller's hub groups (``org:<slug>``,
    ``org:<slug>:<role>``) make them a member of, as (slug, role) pairs; None
    when no hub manages the caller's memberships.
    """

    subject: str
    display_name: str | None = None
    email: str | None = None
    platform_admin: bool = False
    org_grants: tuple[tuple[str, Role], ...] | None = None


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    subject: str
    roles: Mapping[uuid.UUID, Role]
    personal_org_id: uuid.UUID | None

    def role_in(self, org_id: uuid.UUID) -> Role | None:
        return self.roles.get(org_id)

    def require(
        self,
        org_id: uuid.UUID,
        permission: Permission,
        *,
        what: str = "organization",
        resource_id: uuid.UUID | None = None,
    ) -> Role:
        """The caller's role in ``org_id`` if it grants ``permission``.

        Not a member: :class:`NotFound` naming the resource asked for (another
        tenant's things do not exist for the caller). A member whose role lacks
        the permission: :class:`Forbidden`.
        """
        role = self.roles.get(org_id)
        if role is None:
            raise NotFound(f"No {what} with id '{resource_id or org_id}'.")
        if not role_allows(role, permission):
            raise Forbidden(f"Your role '{role.value}' in this organization does not allow '{permission.value}'.")
        return role

    def orgs_allowing(self, permission: Permission) -> list[uuid.UUID]:
        return [org for org, role in self.roles.items() if role_allows(role, permission)]


ENTER_SQL = "SELECT org_id, role, personal FROM orchestrator_enter(:u)"


_ENTER = Prepared.of(ENTER_SQL.replace(":u", "%(u)s::uuid"))


def _actor(user_id: uuid.UUID, identity: Identity, rows: Iterable[tuple[Any, ...]]) -> Actor:
    """The actor from ``orchestrator_enter``'s rows: (org_id, role, personal)."""
    listed = list(rows)
    return Actor(
        user_id=user_id,
        subject=identity.subject,
        roles={row[0]: Role(row[1]) for row in listed},
        personal_org_id=next((row[0] for row in listed if row[2]), None),
    )


@dataclass
class Scope:
    """One transaction on behalf of one actor."""

    session: AsyncSession
    actor: Actor
    _org_ids: set[uuid.UUID] = field(default_factory=set)

    async def admit_org(self, org_id: uuid.UUID) -> None:
        """Widen the row-level-security scope to an organization created in this transaction."""
        self._org_ids.add(org_id)
        await set_org_scope(self.session, self._org_ids)


async def set_org_scope(session: AsyncSession, org_ids: Iterable[uuid.UUID]) -> None:
    value = "{" + ",".join(str(o) for o in org_ids) + "}"
    await session.execute(text("SELECT set_config('orchestrator.org_ids', :v, true)"), {"v": value})


def resolve_org(scope: Scope, org_id: uuid.UUID | None, field: str = "org_id") -> uuid.UUID:
    """The organization a request targets: the one named, else the caller's personal one."""
    if org_id is not None:
        return org_id
    if scope.actor.personal_org_id is None:
        raise ValidationFailed("You have no personal organization; name one.", errors=[FieldError(field, "required")])
    return scope.actor.personal_org_id


class ScopeFactory:
    """Resolves identities to actors (creating users on first sight) and opens scopes."""

    def __init__(self, db: Database, keyring: KeyRing) -> None:
        self.db = db
        self.keyring = keyring
        # subject -> user id; ids never change, so this is safe to keep.
        self._user_ids: dict[str, uuid.UUID] = {}
        self.hub_groups = HubGroupSync(db)

    @asynccontextmanager
    async def enter(self, identity: Identity) -> AsyncIterator[Scope]:
        async with self.db.transaction() as session:
            user_id = await self.user_id(identity)
            rows = (await session.execute(text(ENTER_SQL), {"u": user_id})).all()
            if not rows:  # every user has a personal organization: the cached id is stale
                user_id = await self.user_id(identity, refresh=True)
                rows = (await session.execute(text(ENTER_SQL), {"u": user_id})).all()
            actor = _actor(user_id, identity, [(r.org_id, r.role, r.personal) for r in rows])
            yield Scope(session=session, actor=actor, _org_ids=set(actor.roles))

    async def read(
        self, identity: Identity, query: Prepared, params: Mapping[str, Any]
    ) -> tuple[Actor, list[dict[str, Any]]]:
        """Enter the caller's tenant scope and run one read-only query, in a single round trip.

        The rows come back before the caller checks permissions on the actor:
        row-level security has already limited them to the caller's
        organizations, and a caller refused by :meth:`Actor.require` never sees them.
        """
        user_id = await self.user_id(identity)
        memberships, rows = await self.db.reads.scoped(_ENTER, query, {**params, "u": user_id})
        if not memberships:  # the cached id is stale (see enter)
            user_id = await self.user_id(identity, refresh=True)
            memberships, rows = await self.db.reads.scoped(_ENTER, query, {**params, "u": user_id})
        actor = _actor(user_id, identity, [(m["org_id"], m["role"], m["personal"]) for m in memberships])
        return actor, rows

    async def write(self, actor: Actor, statement: Prepared, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Enter ``actor``'s tenant scope and run one statement that writes, in a single round trip that
        commits (the batch of :meth:`read`), never retried: it may have committed before a connection broke.

        ``actor`` comes from an earlier :meth:`read` whose rows the caller has already checked
        permissions on: nothing here checks them again, row-level security aside.
        """
        params = {**params, "u": actor.user_id}
        return (await self.db.reads.scoped(_ENTER, statement, params, retry=False))[1]

    async def user_id(self, identity: Identity, *, refresh: bool = False) -> uuid.UUID:
        """The caller's user id, creating the user and their personal organization on first sight.

        First sight commits in a transaction of its own, and only then is the id
        cached: a request that fails afterwards cannot leave a cached id whose
        row was rolled back. ``refresh`` forgets the cached id first (a user
        removed from under a running server, e.g. a restored database).
        """
        if refresh:
            self._user_ids.pop(identity.subject, None)
        user_id = self._user_ids.get(identity.subject)
        if user_id is None:
            async with self.db.transaction() as session:
                user_id = await self._first_sight(session, identity)
            self._user_ids[identity.subject] = user_id
        if identity.org_grants is not None:
            await self.hub_groups.sync(user_id, identity.subject, identity.org_grants)
        return user_id

    async def _first_sight(self, session: AsyncSession, identity: Identity) -> uuid.UUID:
        """Create (or find) the user row and their personal organization."""
        new_id = uuid.uuid4()
        values: dict[str, object] = {"id": new_id, "subject": identity.subject}
        if identity.display_name:
            values["display_name_encrypted"] = self.keyring.encrypt(
                identity.display_name, f"users.display_name:{new_id}"
            )
        if identity.email:
            values["email_encrypted"] = self.keyring.encrypt(identity.email, f"users.email:{new_id}")
        await session.execute(insert(User).values(**values).on_conflict_do_nothing(index_elements=["subject"]))
        user_id = (await session.execute(select(User.id).where(User.subject == identity.subject))).scalar_one()
        await session.execute(text("SELECT set_config('orchestrator.user_id', :u, true)"), {"u": str(user_id)})
        org_id = uuid.uuid4()
        await set_org_scope(session, [org_id])
        created = await session.execute(
            insert(Organization)
            .values(id=org_id, name=f"{identity.subject} (personal)", personal_for_user_id=user_id, created_by=user_id)
            .on_conflict_do_nothing(index_elements=["personal_for_user_id"])
            .returning(Organization.id)
        )
        if created.scalar_one_or_none() is not None:
            await session.execute(
                insert(OrganizationMember).values(org_id=org_id, user_id=user_id, role=Role.OWNER.value)
            )
        return user_id
