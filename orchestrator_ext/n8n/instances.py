"""Other organizations' n8n instances, started on demand by the server (personal and split mode).

One instance per organization (docs/frameworks/n8n.md, *Isolation*). The
owner's is the personal mode's (:mod:`.manager`); every other organization
that uses n8n gets one of its own, started by the server when it is wanted:

- an organization with an n8n agent and no ``n8n`` integration yet: its
  instance starts at once (a run is handed its integrations when it is
  claimed, so the integration must exist before its first run);
- an organization with a queued or running n8n run whose instance the
  platform manages (its integration says ``managed``) and is not running: it
  starts, and the run, which waits for an instance being started, goes on.

Each has its data folder (``<n8n data dir>/orgs/<name>``), port (kept there),
database and role of its own on the embedded PostgreSQL (SQLite in its folder
with an external server), and its API key saved, encrypted, as that
organization's ``n8n`` integration. An organization whose ``n8n`` integration
is an external instance is left alone. All stop with the server.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError
from sqlalchemy import Engine, text

from ..db.system import system_transaction_sync
from ..security.crypto import KeyRing
from . import database, integration, process, provision
from .install import installation

log = logging.getLogger("orchestrator.n8n")

#: organizations whose instance is wanted now: an n8n agent and no n8n integration, or an n8n run queued or running
#: with an integration the platform manages
WANTED = text(
    "SELECT a.org_id FROM agents a WHERE a.framework = 'n8n' AND NOT EXISTS "
    "(SELECT 1 FROM integrations i WHERE i.org_id = a.org_id AND lower(i.name) = 'n8n') "
    "UNION SELECT e.org_id FROM workflow_executions e JOIN agents a ON a.id = e.agent_id "
    "JOIN integrations i ON i.org_id = e.org_id AND lower(i.name) = 'n8n' AND i.kind = 'n8n' "
    "WHERE a.framework = 'n8n' AND e.status IN ('queued', 'running') AND i.config ? 'managed'"
)


def wanted(engine: Engine) -> set[uuid.UUID]:
    with system_transaction_sync(engine) as conn:
        return {uuid.UUID(str(row[0])) for row in conn.execute(WANTED)}


class OrgInstances:
    """The instances of organizations other than the owner's, by organization."""

    def __init__(self, root: Path, orchestrator_dir: Path, engine: Engine, keyring: KeyRing) -> None:
        self.root = root
        self.orchestrator_dir = orchestrator_dir
        self.engine = engine
        self.keyring = keyring
        self.running: dict[uuid.UUID, process.N8nProcess] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._starting: dict[uuid.UUID, asyncio.Task[None]] = {}

    def is_running(self, org_id: uuid.UUID) -> bool:
        found = self.running.get(org_id)
        return found is not None and found.process.poll() is None

    async def ensure(self, org_id: uuid.UUID) -> str:
        """The organization's instance running and provisioned (started if needed); its base URL."""
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            if self.is_running(org_id):
                return self.running[org_id].base_url
            name = database.name_for(str(org_id))
            data_dir = self.root / name
            try:
                db = await asyncio.to_thread(database.for_embedded, self.orchestrator_dir, name)
                port = process.kept_port(data_dir)
                await asyncio.to_thread(integration.reserve, self.engine, org_id, f"http://127.0.0.1:{port}", name)
                started = process.start(installation(), data_dir, port, database=db)
            except Exception:
                log.exception("the n8n of organization %s could not be started", org_id)
                raise
            self.running[org_id] = started
            try:
                took = await asyncio.to_thread(process.wait_ready, started)
                await asyncio.to_thread(self._provision, org_id, name, started.base_url, data_dir)
            except Exception:
                log.exception("the n8n of organization %s did not start", org_id)
                await asyncio.to_thread(process.stop, started)
                self.running.pop(org_id, None)
                raise
            log.info("n8n of organization %s at %s (ready in %.1f s)", org_id, started.base_url, took)
            return started.base_url

    def _provision(self, org_id: uuid.UUID, name: str, base_url: str, data_dir: Path) -> None:
        """Keep the saved key while the instance still takes it (a run claimed meanwhile holds it), else a new one."""
        saved = integration.stored(self.engine, self.keyring, org_id)
        if saved is not None and saved[0] == base_url:
            try:
                N8nApi(base_url, saved[1], timeout=10).workflows()
                return
            except N8nApiError:
                pass
        key = provision.provision(base_url, data_dir)
        integration.save(self.engine, self.keyring, org_id, base_url, key, managed=name)

    async def start_wanted(self, owner_org: uuid.UUID | None) -> None:
        """Start the instances wanted now, side by side (not the owner's: the personal mode's manager runs it)."""
        for org_id in await asyncio.to_thread(wanted, self.engine):
            if org_id != owner_org and not self.is_running(org_id) and org_id not in self._starting:
                task = asyncio.create_task(self._start(org_id), name=f"n8n-{org_id}")
                self._starting[org_id] = task

    async def _start(self, org_id: uuid.UUID) -> None:
        try:
            await self.ensure(org_id)
        except Exception:  # noqa: BLE001 - logged by ensure(); tried again after a pause, on a later poll
            await asyncio.sleep(30.0)
        finally:
            self._starting.pop(org_id, None)

    async def stop(self) -> None:
        for task in list(self._starting.values()):
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        running, self.running = list(self.running.values()), {}
        await asyncio.gather(*(asyncio.to_thread(process.stop, started) for started in running))
