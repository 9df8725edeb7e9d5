"""The caller's profile: read and update it, with its personal data encrypted at rest.

``users.display_name_encrypted`` and ``users.email_encrypted`` hold key-ring
ciphertexts bound to ``users.display_name:<id>`` and ``users.email:<id>``.
Plaintext values never reach a log line or an audit row.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from ..db.models import Organization, OrganizationMember, User
from ..schemas.users import DescribeMembership, DescribeUser, UpdateUser
from ..security.crypto import KeyRing, KeyRingError
from ..security.permissions import Role
from . import audit
from .scope import Identity, Scope, ScopeFactory
from .settings import ServiceSettings

log = logging.getLogger("orchestrator.users")

#: profile field -> the encrypted column holding it
ENCRYPTED_FIELDS: dict[str, str] = {"display_name": "display_name_encrypted", "email": "email_encrypted"}


def field_context(field: str, user_id: uuid.UUID) -> str:
    """The associated data a profile field's ciphertext is bound to."""
    return f"users.{field}:{user_id}"


def open_field(keyring: KeyRing, token: str | None, field: str, user_id: uuid.UUID) -> str | None:
    """Decrypt one profile field; one that does not open reads as absent (and is logged, without its value)."""
    if token is None:
        return None
    try:
        return keyring.decrypt(token, field_context(field, user_id))
    except KeyRingError as exc:
        log.warning("cannot decrypt %s of user %s: %s", field, user_id, exc)
        return None


class UserService:
    """``/users/me``: the caller's profile and memberships."""

    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings) -> None:
        self.scopes = scopes
        self.settings = settings

    async def me(self, identity: Identity) -> DescribeUser:
        async with self.scopes.enter(identity) as scope:
            return await self._describe(scope, await self._load(scope), identity)

    async def update(self, identity: Identity, body: UpdateUser) -> DescribeUser:
        async with self.scopes.enter(identity) as scope:
            user = await self._load(scope)
            changes = body.model_dump(exclude_unset=True)
            for name, value in changes.items():
                sealed = None if value is None else self.scopes.keyring.encrypt(value, field_context(name, user.id))
                setattr(user, ENCRYPTED_FIELDS[name], sealed)
            if changes:
                user.updated_at = datetime.now(UTC)
                audit.record(scope, "user.update", "user", user.id, None, fields=sorted(changes))
                await scope.session.flush()
            return await self._describe(scope, user, identity)

    async def _load(self, scope: Scope) -> User:
        return (await scope.session.execute(select(User).where(User.id == scope.actor.user_id))).scalar_one()

    async def _describe(self, scope: Scope, user: User, identity: Identity) -> DescribeUser:
        rows = (
            await scope.session.execute(
                select(OrganizationMember.role, OrganizationMember.source, OrganizationMember.created_at, Organization)
                .join(Organization, Organization.id == OrganizationMember.org_id)
                .where(OrganizationMember.user_id == user.id)
            )
        ).all()
        memberships = sorted(
            (
                DescribeMembership(
                    org_id=org.id,
                    name=org.name,
                    role=Role(role),
                    personal=org.personal_for_user_id == user.id,
                    source=source or "api",
                    joined_at=joined_at,
                )
                for role, source, joined_at, org in rows
            ),
            key=lambda m: (not m.personal, m.name.lower(), str(m.org_id)),
        )
        keyring = self.scopes.keyring
        return DescribeUser(
            id=user.id,
            username=user.subject,
            display_name=open_field(keyring, user.display_name_encrypted, "display_name", user.id),
            email=open_field(keyring, user.email_encrypted, "email", user.id),
            created_at=user.created_at,
            updated_at=user.updated_at,
            memberships=memberships,
            platform_admin=identity.platform_admin,
        )
