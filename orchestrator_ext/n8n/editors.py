"""Organizations' n8n editors as the hub's Orchestrator service serves them (team mode).

Under JupyterHub each organization has an instance of its own (started on
demand by the hub's n8n service, :mod:`.team`, or by ``jupyter orchestrator
n8n serve --org X --service-prefix /services/orchestrator/``),
whose editor the service proxies at
``<service>/orchestrator/n8n/<organization id>/`` (handlers/n8n_editor.py) to
the organization's members only. The service runs unprivileged and cannot
read an instance's data folder: ``serve`` keeps the owner's login sealed with
the organization's ``n8n`` integration, bound to the instance's URL
(:func:`.integration.editor_login`); the service opens it, logs in to n8n as
the owner and keeps n8n's session cookie for itself, as the personal mode's
proxy does. Nothing of it reaches the browser.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ..db.models import Integration
from ..errors import Conflict
from ..security.crypto import KeyRing
from ..security.permissions import Permission
from ..services.container import Services
from ..services.scope import Identity
from . import integration, provision

#: who may open an organization's editor: those who may change its workflows (the editor writes n8n's)
EDITOR_PERMISSION = Permission.WORKFLOWS_WRITE


@dataclass(frozen=True)
class EditorTarget:
    """One organization's instance as the editor proxy reaches it."""

    integration_id: uuid.UUID
    base_url: str
    path: str
    email: str
    password: str


class OrgEditor:
    """The proxy's view of one organization's editor: n8n's login cookie, made on first use, renewed on demand."""

    BROWSER_ID = provision.BROWSER_ID

    def __init__(self, target: EditorTarget, cache: dict[uuid.UUID, tuple[EditorTarget, str]]) -> None:
        self.target = target
        self.cache = cache

    async def editor_login(self) -> tuple[str, str]:
        """n8n's base URL and the owner's ``n8n-auth`` cookie (a login when none is kept for this target)."""
        kept = self.cache.get(self.target.integration_id)
        if kept is None or kept[0] != self.target:
            owner = provision.Owner(self.target.email, self.target.password)
            session = await asyncio.to_thread(provision.login, self.target.base_url, owner)
            kept = (self.target, session.auth_cookie())
            self.cache[self.target.integration_id] = kept
        return self.target.base_url, kept[1]

    def forget_editor_login(self) -> None:
        self.cache.pop(self.target.integration_id, None)


class HubEditors:
    """Every organization's editor the service proxies, their n8n logins kept in memory (never on disk)."""

    def __init__(self) -> None:
        self._logins: dict[uuid.UUID, tuple[EditorTarget, str]] = {}

    async def for_org(self, services: Services, identity: Identity, org_id: uuid.UUID) -> OrgEditor:
        """The organization's editor for ``identity``: :class:`NotFound` where they are not a member,
        :class:`Forbidden` where their role may not write workflows, :class:`Conflict` where it has no instance
        with an editor."""
        async with services.scopes.enter(identity) as scope:
            scope.actor.require(org_id, EDITOR_PERMISSION, what="organization")
            stmt = select(Integration).where(
                Integration.org_id == org_id,
                Integration.kind == "n8n",
                func.lower(Integration.name) == integration.INTEGRATION_NAME,
            )
            row = (await scope.session.execute(stmt)).scalars().first()
            found = _target(services.keyring, row.id, row.config or {}) if row is not None else None
        if found is None:
            raise Conflict(
                "This organization has no n8n instance whose editor this service serves yet: the hub starts one "
                "with the organization's first n8n agent (its n8n service, where n8n is installed), or run "
                "`jupyter orchestrator n8n serve --org <organization> --service-prefix <the service's prefix>`."
            )
        return OrgEditor(found, self._logins)


def _target(keyring: KeyRing, integration_id: uuid.UUID, config: dict[str, Any]) -> EditorTarget | None:
    login = integration.editor_login(keyring, integration_id, config)
    if login is None:
        return None
    path, email, password = login
    return EditorTarget(integration_id, str(config["base_url"]).rstrip("/"), path, email, password)
