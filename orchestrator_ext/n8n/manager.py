"""The personal mode's n8n: started beside the server (at start, or at the first n8n run), stopped with it.

``ORCHESTRATOR_N8N`` chooses: ``off``; ``start`` (n8n starts with the server);
``on-demand`` (the default where n8n is installed: it starts when an n8n run is
queued, found by a cheap poll of the queue, and the run waits for it; the very
first time, while the owner's organization has no ``n8n`` integration yet, it
starts at once, since a run is handed its integrations when it is claimed).
Each start provisions the instance (:mod:`.provision`) and saves it as the
owner's ``n8n`` integration, its API key encrypted, keeping the saved key while
n8n takes it; the port is kept in the data dir, so the integration's URL stays
right from one start to the next. n8n's data is in a database and role of its
own on the embedded PostgreSQL (:mod:`.database`).

n8n is started from the event loop's thread: its parent-death signal is tied
to the thread that started it, so it must not be a short-lived worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from pathlib import Path

from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError
from sqlalchemy import Engine, create_engine, text

from ..db.engine import sqlalchemy_url
from ..db.system import system_transaction_sync
from ..security.crypto import KeyRing
from . import database, integration, process, provision
from .install import installation
from .instances import OrgInstances

log = logging.getLogger("orchestrator.n8n")

MODES = ("off", "start", "on-demand")
#: after a failure (the database away, n8n not starting), the next look
RETRY_SECONDS = 30.0
#: a queued or running run of an n8n agent of the owner's organization
WANTED = text(
    "SELECT 1 FROM workflow_executions e JOIN agents a ON a.id = e.agent_id "
    "WHERE a.framework = 'n8n' AND e.status IN ('queued', 'running') AND e.org_id = :org LIMIT 1"
)


def mode() -> str:
    """``ORCHESTRATOR_N8N``, else ``on-demand`` where n8n is installed and ``off`` where not."""
    chosen = (os.environ.get("ORCHESTRATOR_N8N") or "").strip().lower()
    if chosen in MODES:
        return chosen
    return "on-demand" if installation().ready() else "off"


class N8nManager:
    """Starts the personal mode's n8n when wanted and stops it with the server."""

    #: the browser id the editor proxy's n8n login is bound to (n8n checks it on every /rest call)
    BROWSER_ID = provision.BROWSER_ID

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        keyring: KeyRing,
        owner: str,
        poll: float = 1.0,
        editor_path: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.editor_path = editor_path
        self._editor: tuple[str, str] | None = None
        self.database_url = database_url
        self.keyring = keyring
        self.owner = owner
        self.poll = poll
        self.running: process.N8nProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._engine: Engine | None = None
        self._orgs: OrgInstances | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(sqlalchemy_url(self.database_url), pool_size=1, max_overflow=0)
        return self._engine

    @property
    def orgs(self) -> OrgInstances:
        """Other organizations' instances (:mod:`.instances`), under ``<data dir>/orgs``."""
        if self._orgs is None:
            self._orgs = OrgInstances(self.data_dir / "orgs", self.data_dir.parent, self.engine, self.keyring)
        return self._orgs

    def start(self, how: str) -> None:
        """Begin: start the owner's n8n now (``start``) or when one of its n8n runs is queued (``on-demand``);
        other organizations' on demand either way."""
        if how in ("start", "on-demand"):
            self._task = asyncio.create_task(self._watch_queue(at_once=how == "start"))

    async def ensure(self) -> str:
        """n8n running and provisioned (started if needed); its base URL."""
        async with self._lock:
            if self.running is not None and self.running.process.poll() is None:
                return self.running.base_url
            found = installation()
            # its own database and role on the embedded PostgreSQL (SQLite in its data folder with an external one)
            db = await asyncio.to_thread(database.for_embedded, self.data_dir.parent)
            port = process.kept_port(self.data_dir)
            await asyncio.to_thread(self._reserve, f"http://127.0.0.1:{port}")
            self.running = process.start(found, self.data_dir, port, database=db, editor_path=self.editor_path)
            try:
                took = await asyncio.to_thread(process.wait_ready, self.running)
                await asyncio.to_thread(self._provision, self.running.base_url)
            except Exception:
                log.exception("n8n did not start")
                process.stop(self.running)
                self.running = None
                raise
            log.info("n8n at %s (ready in %.1f s), integration '%s'", self.running.base_url, took, "n8n")
            return self.running.base_url

    async def editor_login(self) -> tuple[str, str]:
        """n8n's base URL and its owner's login cookie, for the editor proxy (n8n started if needed)."""
        base_url = await self.ensure()
        if self._editor is None or self._editor[0] != base_url:
            session = await asyncio.to_thread(provision.login, base_url, provision.load_owner(self.data_dir))
            self._editor = (base_url, session.auth_cookie())
        return self._editor

    def forget_editor_login(self) -> None:
        """n8n refused the cached login (it expired; the port, so the base URL, outlives n8n's restarts):
        the next :meth:`editor_login` logs in again."""
        self._editor = None

    def _provision(self, base_url: str) -> None:
        """Keep the saved key while n8n still takes it (a run queued meanwhile was handed it), else a new one."""
        org_id = integration.find_org(self.engine, "", self.owner)
        saved = integration.stored(self.engine, self.keyring, org_id)
        if saved is not None and saved[0] == base_url:
            try:
                N8nApi(base_url, saved[1], timeout=10).workflows()
                return
            except N8nApiError:
                pass  # revoked or from another instance: a new one
        key = provision.provision(base_url, self.data_dir)
        integration.save(self.engine, self.keyring, org_id, base_url, key)

    def _reserve(self, base_url: str) -> None:
        """The owner's ``n8n`` integration, keyless, before the first start (:func:`.integration.reserve`)."""
        org_id = self._owner_org()
        if org_id is not None:
            integration.reserve(self.engine, org_id, base_url, managed="owner")

    def _owner_org(self) -> uuid.UUID | None:
        try:
            return integration.find_org(self.engine, "", self.owner)
        except SystemExit:
            return None  # no personal organization yet: its first request makes it, runs come later

    def _owner_wants(self, org_id: uuid.UUID | None) -> bool:
        """Whether the owner's instance is wanted now: the first time (its organization has no n8n integration:
        a run is handed its integrations when it is claimed, so it must exist before), or one of its n8n runs
        is queued or running."""
        if org_id is None:
            return False
        if integration.stored(self.engine, self.keyring, org_id) is None:
            return True
        with system_transaction_sync(self.engine) as conn:
            return conn.execute(WANTED, {"org": org_id}).first() is not None

    async def _watch_queue(self, *, at_once: bool = False) -> None:
        if at_once:
            with contextlib.suppress(Exception):  # logged by ensure(); a run then says the instance is unreachable
                await self.ensure()
        while True:
            try:
                owner_org = await asyncio.to_thread(self._owner_org)
                if self.running is None and await asyncio.to_thread(self._owner_wants, owner_org):
                    await self.ensure()
                await self.orgs.start_wanted(owner_org)
            except Exception:  # the database may be away, or n8n failed to start (logged): look again later
                log.warning("could not look for n8n runs, or start n8n", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
            await asyncio.sleep(self.poll)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._orgs is not None:
            await self._orgs.stop()
        if self.running is not None:
            await asyncio.to_thread(process.stop, self.running)
            self.running = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def for_personal_mode(
    data_dir: Path, database_url: str, keyring: KeyRing, owner: str, editor_path: str | None = None
) -> N8nManager | None:
    """The personal server's manager, started in the mode ``ORCHESTRATOR_N8N`` chooses (None: off)."""
    how = mode()
    if how == "off" or not installation().ready():
        if how != "off":
            log.warning("ORCHESTRATOR_N8N=%s but n8n is not installed: jupyter orchestrator n8n install", how)
        return None
    manager = N8nManager(data_dir, database_url, keyring, owner, editor_path=editor_path)
    manager.start(how)
    return manager
