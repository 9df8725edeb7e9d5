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

Each runs under a system account of its own (:mod:`.account`, as ``n8n serve``
in team mode), so that an escape from one n8n's sandbox reaches neither the
server's key ring and roles' passwords nor another organization's instance.
That needs the server to run as root; a server that does not (the personal
mode under its owner's account) runs only its owner's instance
(:mod:`.manager`) and refuses the others. A refusal is written into the
organization's ``n8n`` integration (``config.refused``): its runs fail at once
with it, and its members read it there.

At most ``ORCHESTRATOR_N8N_MAX_INSTANCES`` (default 4) run at once (each is a
Node process of ~300 MB-1 GB): an organization that wants one beyond it takes
the place of the one longest without a run, else is refused until one is
free. One with no queued or running run for ``ORCHESTRATOR_N8N_IDLE_SECONDS``
(default 900) is stopped, and starts again at its next run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError
from sqlalchemy import Engine, text

from ..db.setup import RUNS_SOCKET_ENV
from ..db.system import system_transaction_sync
from ..engine.accounts import RunAccount
from ..security.crypto import KeyRing
from . import account, database, integration, process, provision
from .database import N8nDatabase
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


#: organizations with an n8n run queued or running: their instances are not idle
ACTIVE = text(
    "SELECT DISTINCT e.org_id FROM workflow_executions e JOIN agents a ON a.id = e.agent_id "
    "WHERE a.framework = 'n8n' AND e.status IN ('queued', 'running')"
)
#: a refusal, or its end, in an organization's managed n8n integration (a run reads it: n8n/pending.py, run.py)
MARK = text(
    "UPDATE integrations SET config = config || CAST(:c AS jsonb), updated_at = clock_timestamp() "
    "WHERE org_id = :o AND lower(name) = 'n8n' AND kind = 'n8n' AND config ? 'managed'"
)
UNMARK = text(
    "UPDATE integrations SET config = config - 'refused', updated_at = clock_timestamp() "
    "WHERE kind = 'n8n' AND config ? 'refused' AND config ? 'managed' AND (CAST(:o AS uuid) IS NULL OR org_id = :o)"
)
MAX_ENV = "ORCHESTRATOR_N8N_MAX_INSTANCES"
IDLE_ENV = "ORCHESTRATOR_N8N_IDLE_SECONDS"
NOT_ROOT = (
    "this server runs n8n only for its owner's organization: other organizations' instances run under system "
    "accounts of their own, which needs the server to run as root (the team mode). Register an n8n instance of "
    "your own as this organization's 'n8n' integration (kind n8n, its base_url and an API key) instead"
)


def as_root() -> bool:
    """Whether the server may make accounts and run n8n as them."""
    return os.geteuid() == 0


def service_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """These settings where ``environ`` sets them, for a process given an environment of its own: JupyterHub
    hands its ``orchestrator-n8n`` service (hub_config/team.py) only the service's ``environment``."""
    return {name: environ[name] for name in (MAX_ENV, IDLE_ENV) if environ.get(name)}


def setting(name: str, default: float) -> float:
    """A positive number from the environment, else ``default``."""
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if value > 0 else default


def looked(engine: Engine) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """The organizations whose instance is wanted now (:data:`WANTED`), and those with an n8n run now."""
    with system_transaction_sync(engine) as conn:
        wanted = {uuid.UUID(str(row[0])) for row in conn.execute(WANTED)}
        return wanted, {uuid.UUID(str(row[0])) for row in conn.execute(ACTIVE)}


def mark(engine: Engine, org_id: uuid.UUID, managed: str, refused: str) -> None:
    """Write ``refused`` into the organization's n8n integration (made, keyless, if missing)."""
    integration.reserve(engine, org_id, "", managed)
    with system_transaction_sync(engine) as conn:
        conn.execute(MARK, {"o": org_id, "c": json.dumps({"refused": refused})})


def unmark(engine: Engine, org_id: uuid.UUID | None) -> None:
    """Clear the organization's refusal (every organization's where ``org_id`` is None)."""
    with system_transaction_sync(engine) as conn:
        conn.execute(UNMARK, {"o": org_id})


class OrgInstances:
    """The instances of organizations other than the owner's, by organization."""

    def __init__(
        self,
        root: Path,
        orchestrator_dir: Path,
        engine: Engine,
        keyring: KeyRing,
        max_instances: int | None = None,
        idle_seconds: float | None = None,
        make_database: Callable[[str], N8nDatabase | None] | None = None,
        editor_prefix: str = "",
    ) -> None:
        self.root = root
        self.orchestrator_dir = orchestrator_dir
        self.engine = engine
        self.keyring = keyring
        self.max_instances = max_instances or int(setting(MAX_ENV, 4))
        self.idle_seconds = idle_seconds or setting(IDLE_ENV, 900.0)
        #: makes an instance's database and role (by its name); by default on the embedded server this process
        #: may open, the hub's n8n service's makes them as the server's account (.attach)
        self.make_database = make_database or (lambda name: database.for_embedded(self.orchestrator_dir, name))
        #: the hub's service's prefix (team mode): each instance's editor is served there (editors.py)
        self.editor_prefix = editor_prefix
        self.running: dict[uuid.UUID, process.N8nProcess] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._starting: dict[uuid.UUID, asyncio.Task[None]] = {}
        #: when each organization last had an n8n run (or its instance started), by time.monotonic()
        self._last_run: dict[uuid.UUID, float] = {}
        #: organizations refused for this server's life (not root, no account of their own), and why
        self.refused: dict[uuid.UUID, str] = {}
        #: organizations refused while every instance was busy: the refusal ends when one is free
        self._capped: set[uuid.UUID] = set()
        self._swept = False

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
                db = await asyncio.to_thread(self.make_database, name)
                db, runs_as = await self._account(org_id, name, data_dir, db)
                port = process.kept_port(data_dir, account=runs_as)
                await asyncio.to_thread(integration.reserve, self.engine, org_id, f"http://127.0.0.1:{port}", name)
                editor = self.editor_path(org_id)
                started = process.start(
                    installation(), data_dir, port, database=db, account=runs_as, editor_path=editor
                )
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
            self._last_run[org_id] = time.monotonic()
            log.info("n8n of organization %s at %s (ready in %.1f s)", org_id, started.base_url, took)
            return started.base_url

    async def _account(
        self, org_id: uuid.UUID, name: str, data_dir: Path, db: N8nDatabase | None
    ) -> tuple[N8nDatabase | None, RunAccount | None]:
        """The instance's own account (made, owning ``data_dir``) and how it reaches its database; refused (in
        its integration, for this server's life) where it could not reach them. None: not root (refused earlier)."""
        if not as_root():
            return db, None
        found = installation()
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o711)  # the accounts pass through, list nothing
            if db is not None:
                db = account.reachable(db, os.environ.get(RUNS_SOCKET_ENV))
            programs = (found.node, found.n8n)
            return db, await asyncio.to_thread(account.prepare, account.account_name(name), data_dir, programs)
        except account.N8nAccountError as exc:
            await self._refuse(
                org_id, f"this organization's n8n instance cannot run under an account of its own: {exc}"
            )
            raise

    def editor_path(self, org_id: uuid.UUID) -> str | None:
        """Where the hub's service serves the organization's editor (n8n's pages are asked for under it), or None."""
        return f"{self.editor_prefix}orchestrator/n8n/{org_id}/" if self.editor_prefix else None

    def _provision(self, org_id: uuid.UUID, name: str, base_url: str, data_dir: Path) -> None:
        """Keep the saved key while the instance still takes it (a run claimed meanwhile holds it), else a new one
        (with the owner's login sealed beside it where the hub's service serves the editor)."""
        saved = integration.stored(self.engine, self.keyring, org_id)
        if saved is not None and saved[0] == base_url:
            try:
                N8nApi(base_url, saved[1], timeout=10).workflows()
                return
            except N8nApiError:
                pass
        key = provision.provision(base_url, data_dir)
        path = self.editor_path(org_id)
        editor = (path, *provision.load_owner(data_dir).login) if path else None
        integration.save(self.engine, self.keyring, org_id, base_url, key, managed=name, editor=editor)

    async def start_wanted(self, owner_org: uuid.UUID | None) -> None:
        """Start the instances wanted now, side by side (not the owner's: the personal mode's manager runs it),
        within :attr:`max_instances`; stop those idle for :attr:`idle_seconds`; refuse what may not run."""
        wanted, active = await asyncio.to_thread(looked, self.engine)
        now = time.monotonic()
        self._last_run.update(dict.fromkeys(active, now))
        if not self._swept:  # refusals a server before this one wrote: this one decides again
            await asyncio.to_thread(unmark, self.engine, None)
            self._swept = True
        await self._stop_idle(now)
        if self._capped and (self._count() < self.max_instances or self._idle_one(active) is not None):
            for org_id in self._capped:  # a place is free, or one can be: their next run starts theirs
                await asyncio.to_thread(unmark, self.engine, org_id)
            self._capped.clear()
        for org_id in wanted - {owner_org}:
            if self.is_running(org_id) or org_id in self._starting or org_id in self.refused:
                continue
            if not as_root():
                await self._refuse(org_id, NOT_ROOT)
            elif await self._room(active):
                if org_id in self._capped:
                    self._capped.discard(org_id)
                    await asyncio.to_thread(unmark, self.engine, org_id)
                self._starting[org_id] = asyncio.create_task(self._start(org_id), name=f"n8n-{org_id}")
            elif org_id not in self._capped:
                self._capped.add(org_id)
                refusal = (
                    f"the server runs at most {self.max_instances} n8n instances at once ({MAX_ENV}) and each has "
                    "runs now: run it again when one is free"
                )
                await asyncio.to_thread(mark, self.engine, org_id, database.name_for(str(org_id)), refusal)
                log.warning("n8n of organization %s refused: %s", org_id, refusal)

    def _count(self) -> int:
        return len(self._starting) + sum(1 for org_id in self.running if org_id not in self._starting)

    async def _room(self, active: set[uuid.UUID]) -> bool:
        """Whether one more instance may start: under the cap, or once the one longest without a run (none
        now) is stopped for it."""
        if self._count() < self.max_instances:
            return True
        idle = self._idle_one(active)
        if idle is None:
            return False
        await self._stop_one(idle, "to make room")
        return True

    def _idle_one(self, active: set[uuid.UUID]) -> uuid.UUID | None:
        """The running instance longest without a run, of those with none now."""
        idle = [org_id for org_id in self.running if org_id not in active and org_id not in self._starting]
        return min(idle, key=lambda org_id: self._last_run.get(org_id, 0.0)) if idle else None

    async def _stop_idle(self, now: float) -> None:
        for org_id in [o for o in self.running if o not in self._starting]:
            if now - self._last_run.get(org_id, now) >= self.idle_seconds:
                await self._stop_one(org_id, f"idle for {self.idle_seconds:g} s")

    async def _stop_one(self, org_id: uuid.UUID, why: str) -> None:
        """Stop an organization's instance (it starts again at its next run)."""
        async with self._locks.setdefault(org_id, asyncio.Lock()):
            started = self.running.pop(org_id, None)
            if started is not None:
                log.info("n8n of organization %s stopped, %s", org_id, why)
                await asyncio.to_thread(process.stop, started)

    async def _refuse(self, org_id: uuid.UUID, why: str) -> None:
        """Refuse the organization an instance for this server's life, in its integration (its runs say why)."""
        self.refused[org_id] = why
        await asyncio.to_thread(mark, self.engine, org_id, database.name_for(str(org_id)), why)
        log.warning("n8n of organization %s refused: %s", org_id, why)

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
