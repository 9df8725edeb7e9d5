"""``jupyter orchestrator worker`` and ``jupyter orchestrator scheduler``: the engine as its own processes.

Run any number of each, on any machine that reaches the database; they share
the server's configuration (its traits and ``ORCHESTRATOR_*`` variables).
SIGTERM or Ctrl-C stops them cleanly: a worker hands its unfinished runs back
to the queue.

In the team mode the worker runs as root (it starts each organization's runs
as that organization's account) beside an API service of another account that
owns the embedded PostgreSQL and the key ring: with ``--WorkerCommand.prepare_as``
it reaches them as that account, in a child process that hands back only the
URLs and the keys, so nothing of the service's changes owner.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pwd
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from traitlets import Bool, Float, Unicode

from ..cli import OrchestratorCommand
from ..db.setup import PreparedDatabase, prepare_database
from ..observability import logging as ologging
from ..security.crypto import KeyRing
from ..security.run_as import run_as
from .runs_state import RunsServer, embedded_runs

log = logging.getLogger("orchestrator.engine")


class _EngineCommand(OrchestratorCommand):
    """Runs :meth:`serve` (each command's own) in an event loop until SIGTERM or SIGINT."""

    grace_seconds = Float(10.0, help="On SIGTERM, how long running runs may take to finish.").tag(config=True)
    serve: Callable[[str, asyncio.Event], Awaitable[None]]
    #: the embedded server, where each organization's runs get a database of their own (.runs_state)
    runs: RunsServer | None = None

    def start(self) -> None:
        # `jupyter orchestrator worker --OrchestratorApp.worker_slots=4`: the command line sets the parent's traits
        self.orchestrator.update_config(self.config)
        ologging.configure(level=logging.INFO, fmt=self.orchestrator.log_style)
        prepared = self.prepare()
        try:
            self.runs = embedded_runs(prepared.runs_admin_url, prepared.runs_host)
            asyncio.run(self._until_stopped(prepared.app_url))
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()

    def prepare(self) -> PreparedDatabase:
        return prepare_database(self.orchestrator.database_location(), revision=None)

    async def _until_stopped(self, url: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await self.serve(url, stop)


class WorkerCommand(_EngineCommand):
    name = "jupyter-orchestrator-worker"
    description = "Run a worker: claim queued executions and run them (notebooks on warm kernels)."

    prepare_as = Unicode(
        "",
        help="""A worker running as root beside an API service of another account (the team mode): reach
        the database and read the key ring as that account (the embedded PostgreSQL's files and keys.json
        are its), in a child process that hands back only the URLs and the keys.""",
    ).tag(config=True)
    print_connection = Bool(
        False, help="Prepare the database, print the URLs and keys a worker connects with (JSON), and exit."
    ).tag(config=True)
    keyring: KeyRing | None = None

    def start(self) -> None:
        if not self.print_connection:
            super().start()
            return
        self.orchestrator.update_config(self.config)
        prepared = prepare_database(self.orchestrator.database_location(), revision=None)
        try:
            keys = self.orchestrator.keyring().serialize()
            runs = {"runs_admin_url": prepared.runs_admin_url, "runs_host": prepared.runs_host}
            print(json.dumps({"app_url": prepared.app_url, **runs, "keys": keys}))
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()

    def prepare(self) -> PreparedDatabase:
        if not self.prepare_as:
            return super().prepare()
        account = pwd.getpwnam(self.prepare_as)
        command = [sys.executable, sys.argv[0], *sys.argv[1:], "--WorkerCommand.print_connection=True"]
        done = run_as(account, command, timeout=300)  # this command, as the service's account
        if done.returncode != 0:
            raise SystemExit(f"preparing the database as {self.prepare_as} failed:\n{done.stderr[-4000:]}")
        handed = json.loads(done.stdout.strip().splitlines()[-1])
        self.keyring = KeyRing.parse(handed["keys"])
        # organizations' runs' databases are made on the embedded server with its superuser's URL (this
        # worker is root); runs reach it by the socket folder ORCHESTRATOR_RUNS_SOCKET_DIR opens to them
        return PreparedDatabase(
            handed["app_url"], handed["app_url"], None, handed["runs_admin_url"], handed["runs_host"]
        )

    async def serve(self, url: str, stop: asyncio.Event) -> None:
        from .. import tracing
        from .worker import Worker

        app = self.orchestrator
        tracing.setup()  # OTEL_EXPORTER_OTLP_ENDPOINT set: its runs continue the traces of their requests
        # the worker makes itself non-dumpable as it starts: its runs must not read its memory (URLs, keys)
        worker = Worker(url, app.worker_settings(self.runs, Path.cwd()), self.keyring or app.keyring())
        await worker.start()
        try:
            await stop.wait()
        finally:
            await worker.stop(grace=self.grace_seconds)
            tracing.shutdown()


class SchedulerCommand(_EngineCommand):
    name = "jupyter-orchestrator-scheduler"
    description = "Run a scheduler: start the executions of due schedules (several may run at once)."

    async def serve(self, url: str, stop: asyncio.Event) -> None:
        from .scheduler import Scheduler

        scheduler = Scheduler(url, interval=self.orchestrator.scheduler_interval)
        try:
            await scheduler.run(stop)
        finally:
            await scheduler.close()
