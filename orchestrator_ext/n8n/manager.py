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
from pathlib import Path

from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError
from sqlalchemy import Engine, create_engine, text

from ..db.engine import sqlalchemy_url
from ..db.system import system_transaction_sync
from ..security.crypto import KeyRing
from . import database, integration, process, provision
from .install import installation

log = logging.getLogger("orchestrator.n8n")

MODES = ("off", "start", "on-demand")
PORT_FILE = "port"
#: after a failure (the database away, n8n not starting), the next look
RETRY_SECONDS = 30.0
#: a queued or running run of an n8n agent
WANTED = text(
    "SELECT 1 FROM workflow_executions e JOIN agents a ON a.id = e.agent_id "
    "WHERE a.framework = 'n8n' AND e.status IN ('queued', 'running') LIMIT 1"
)


def mode() -> str:
    """``ORCHESTRATOR_N8N``, else ``on-demand`` where n8n is installed and ``off`` where not."""
    chosen = (os.environ.get("ORCHESTRATOR_N8N") or "").strip().lower()
    if chosen in MODES:
        return chosen
    return "on-demand" if installation().ready() else "off"


def _port(data_dir: Path) -> int:
    """The port this data dir's n8n listens on: chosen once, then kept (the integration names it)."""
    path = data_dir / PORT_FILE
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    port = process.free_port()
    path.write_text(str(port))
    return port


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

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(sqlalchemy_url(self.database_url), pool_size=1, max_overflow=0)
        return self._engine

    def start(self, how: str) -> None:
        """Begin: start n8n now (``start``) or when an n8n run is queued (``on-demand``)."""
        if how == "start":
            self._task = asyncio.create_task(self._start_now())
        elif how == "on-demand":
            self._task = asyncio.create_task(self._watch_queue())

    async def ensure(self) -> str:
        """n8n running and provisioned (started if needed); its base URL."""
        async with self._lock:
            if self.running is not None and self.running.process.poll() is None:
                return self.running.base_url
            found = installation()
            # its own database and role on the embedded PostgreSQL (SQLite in its data folder with an external one)
            db = await asyncio.to_thread(database.for_embedded, self.data_dir.parent)
            port = _port(self.data_dir)
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

    async def _start_now(self) -> None:
        with contextlib.suppress(Exception):  # logged by ensure(); a run then says the instance is unreachable
            await self.ensure()

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

    def _first_time(self) -> bool:
        """Whether the owner's organization has no n8n integration yet (runs could not be handed one)."""
        try:
            org_id = integration.find_org(self.engine, "", self.owner)
        except SystemExit:
            return False  # no personal organization yet: its first request makes it, runs come later
        return integration.stored(self.engine, self.keyring, org_id) is None

    def _wanted(self) -> bool:
        with system_transaction_sync(self.engine) as conn:
            return conn.execute(WANTED).first() is not None

    async def _watch_queue(self) -> None:
        while self.running is None:
            try:
                # the first time (the owner's organization has no n8n integration yet) n8n starts at once: a run
                # is handed its integrations when it is claimed, so the integration must exist before
                if await asyncio.to_thread(self._first_time) or await asyncio.to_thread(self._wanted):
                    await self.ensure()
                    return
            except Exception:  # the database may be away, or n8n failed to start (logged): look again later
                log.warning("could not look for n8n runs, or start n8n", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
            await asyncio.sleep(self.poll)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
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
