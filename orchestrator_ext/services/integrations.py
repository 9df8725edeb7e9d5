"""Integrations: create, list, read and delete, within the caller's organizations.

The secret is write-only: encrypted with the key ring, bound to the row
(context ``integrations.secret:<id>``), stored in ``secret_encrypted``, and
never returned, logged or audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ..db.models import Integration
from ..errors import Conflict, FieldError, NotFound
from ..schemas.integrations import (
    CreateIntegration,
    DescribeIntegration,
    ListIntegrationsQuery,
    ListIntegrationsResponse,
)
from ..security.crypto import KeyRing
from ..security.permissions import Permission
from . import audit
from .pagination import page_of, paginate
from .scope import Identity, Scope, ScopeFactory, resolve_org
from .settings import ServiceSettings

NAME_CONSTRAINT = "uq_integrations_org_name"


def secret_context(integration_id: uuid.UUID) -> str:
    """The associated data a secret is sealed with: it opens only on its own row."""
    return f"integrations.secret:{integration_id}"


#: config the platform keeps for itself, shown to nobody: n8n's owner login for the hub's editor proxy
#: (sealed with the key ring, orchestrator_ext.n8n.integration), ciphertext or not
PRIVATE_CONFIG = {"n8n": frozenset({"editor"})}


def describe(row: Integration, keyring: KeyRing) -> DescribeIntegration:
    """The public view of a row: everything but the secret."""
    sealed = row.secret_encrypted
    key_id = keyring.key_id_of(sealed) if sealed is not None else ""
    return DescribeIntegration(
        id=row.id,
        org_id=row.org_id,
        kind=row.kind,
        name=row.name,
        config={k: v for k, v in row.config.items() if k not in PRIVATE_CONFIG.get(row.kind, ())},
        has_secret=sealed is not None,
        secret_key_id=key_id or None,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def name_taken(name: str) -> Conflict:
    return Conflict(
        f"An integration named '{name}' already exists in this organization.",
        errors=[FieldError("name", "already taken in this organization", "unique")],
    )


async def load_integration(scope: Scope, integration_id: uuid.UUID, permission: Permission) -> Integration:
    """An integration the caller may act on with ``permission``; 404 when invisible."""
    row = (
        await scope.session.execute(select(Integration).where(Integration.id == integration_id))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No integration with id '{integration_id}'.")
    scope.actor.require(row.org_id, permission, what="integration", resource_id=integration_id)
    return row


class IntegrationService:
    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings) -> None:
        self.scopes = scopes
        self.settings = settings

    async def create(self, identity: Identity, body: CreateIntegration) -> DescribeIntegration:
        async with self.scopes.enter(identity) as scope:
            org_id = resolve_org(scope, body.org_id)
            scope.actor.require(org_id, Permission.INTEGRATIONS_MANAGE)
            await self._check_name_free(scope, org_id, body.name)
            row = Integration(
                id=uuid.uuid4(),
                org_id=org_id,
                kind=body.kind.value,
                name=body.name,
                config=body.config,
                created_by=scope.actor.user_id,
            )
            if body.secret is not None:
                row.secret_encrypted = self.scopes.keyring.encrypt(
                    body.secret.get_secret_value(), secret_context(row.id)
                )
            scope.session.add(row)
            audit.record(
                scope,
                "integration.create",
                "integration",
                row.id,
                org_id,
                kind=row.kind,
                has_secret=body.secret is not None,
            )
            await self._flush_new(scope, body.name)
            await scope.session.refresh(row)
            return describe(row, self.scopes.keyring)

    async def list(self, identity: Identity, query: ListIntegrationsQuery) -> ListIntegrationsResponse:
        async with self.scopes.enter(identity) as scope:
            if query.org_id is not None:
                scope.actor.require(query.org_id, Permission.INTEGRATIONS_READ)
                orgs = [query.org_id]
            else:
                orgs = scope.actor.orgs_allowing(Permission.INTEGRATIONS_READ)
            stmt = select(Integration).where(Integration.org_id.in_(orgs))
            if query.kind is not None:
                stmt = stmt.where(Integration.kind == query.kind.value)
            page = paginate(stmt, Integration.created_at, Integration.id, query.limit, query.cursor)
            rows = (await scope.session.execute(page)).scalars().all()
            items, next_cursor = page_of(rows, query.limit)
            return ListIntegrationsResponse(
                items=[describe(row, self.scopes.keyring) for row in items], next_cursor=next_cursor
            )

    async def get(self, identity: Identity, integration_id: uuid.UUID) -> DescribeIntegration:
        async with self.scopes.enter(identity) as scope:
            row = await load_integration(scope, integration_id, Permission.INTEGRATIONS_READ)
            return describe(row, self.scopes.keyring)

    async def delete(self, identity: Identity, integration_id: uuid.UUID) -> None:
        """Hard delete: the row and its sealed secret are gone."""
        async with self.scopes.enter(identity) as scope:
            row = await load_integration(scope, integration_id, Permission.INTEGRATIONS_MANAGE)
            await scope.session.execute(delete(Integration).where(Integration.id == row.id))
            audit.record(scope, "integration.delete", "integration", row.id, row.org_id, kind=row.kind)

    async def _check_name_free(self, scope: Scope, org_id: uuid.UUID, name: str) -> None:
        taken = (
            await scope.session.execute(
                select(Integration.id).where(Integration.org_id == org_id, func.lower(Integration.name) == name.lower())
            )
        ).first()
        if taken is not None:
            raise name_taken(name)

    async def _flush_new(self, scope: Scope, name: str) -> None:
        """Flush the insert; a concurrent create of the same name is the same 409 as the check's."""
        try:
            await scope.session.flush()
        except IntegrityError as exc:
            if NAME_CONSTRAINT in str(exc.orig):
                raise name_taken(name) from exc
            raise
