"""``jupyter orchestrator worker`` and ``jupyter orchestrator scheduler``: the engine as its own processes.

Run any number of each, on any machine that reaches the database; they share
the server's configuration (its traits and ``ORCHESTRATOR_*`` variables).
SIGTERM or Ctrl-C stops them cleanly: a worker hands its unfinished runs back
to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from traitlets import Float

from ..cli import OrchestratorCommand
from ..db.setup import prepare_database
from ..observability import logging as ologging
from .isolation import protect_worker_process

log = logging.getLogger("orchestrator.engine")


class _EngineCommand(OrchestratorCommand):
    """Runs :meth:`serve` (each command's own) in an event loop until SIGTERM or SIGINT."""

    grace_seconds = Float(10.0, help="On SIGTERM, how long running runs may take to finish.").tag(config=True)
    serve: Callable[[str, asyncio.Event], Awaitable[None]]
    runs_url: str | None = None

    def start(self) -> None:
        # `jupyter orchestrator worker --OrchestratorApp.worker_slots=4`: the command line sets the parent's traits
        self.orchestrator.update_config(self.config)
        ologging.configure(level=logging.INFO, fmt=self.orchestrator.log_style)
        prepared = prepare_database(self.orchestrator.database_location(), revision=None)
        try:
            self.runs_url = prepared.runs_url
            asyncio.run(self._until_stopped(prepared.app_url))
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()

    async def _until_stopped(self, url: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await self.serve(url, stop)


class WorkerCommand(_EngineCommand):
    name = "jupyter-orchestrator-worker"
    description = "Run a worker: claim queued executions and run them (notebooks on warm kernels)."

    async def serve(self, url: str, stop: asyncio.Event) -> None:
        from .worker import Worker

        app = self.orchestrator
        # runs are this user's processes too: they must not read this one's environment (URLs, keys)
        if not protect_worker_process():
            logging.getLogger("orchestrator.engine").warning("could not make the worker non-dumpable")
        worker = Worker(url, app.worker_settings(self.runs_url, Path.cwd()), app.keyring())
        await worker.start()
        try:
            await stop.wait()
        finally:
            await worker.stop(grace=self.grace_seconds)


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
