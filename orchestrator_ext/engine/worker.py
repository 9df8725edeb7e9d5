"""A worker: claims runs from the queue, runs each in its own child process, records how they end.

Loops, each a task: *claim* (while a slot is free: as many runs as slots are
free, in one round trip; woken by ``NOTIFY orchestrator_queue``, else every
``poll_seconds``), *heartbeat* (renews the
leases of the runs it holds; a run it no longer holds is stopped and not
recorded), *reap* (puts back in the queue the runs whose worker stopped
renewing: any worker can take them up), and *listen* (``NOTIFY
orchestrator_cancel`` stops a run within a second). Completion is recorded
once per attempt, retried until the database takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import socket
import uuid
from typing import Any

import psycopg
from orchestrator_runtimes import RunError
from orchestrator_runtimes.runtime import ErrorKind

from .. import tracing
from ..n8n import pending as n8n_pending
from ..observability.metrics import WORKER_APPLICATION_NAME
from ..security.crypto import KeyRing
from . import runs_state, sweep
from .accounts import RunAccount, RunAccounts, closed_socket, runs_root, sweep_orphans, worker_folder
from .attempts import FAILED, ActiveRun, Attempts, Limits, Outcome
from .ending import Ending
from .events import EventWriter
from .handing import Handing
from .isolation import protect_worker_process
from .kernels import KernelPool
from .queue import ClaimedRun, Queue
from .readiness import Readiness
from .runners import RunnerPool
from .settings import WorkerSettings

log = logging.getLogger("orchestrator.engine")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs executions from the queue until stopped."""

    def __init__(self, url: str, settings: WorkerSettings, keyring: KeyRing | None, name: str | None = None) -> None:
        self.url = url
        self.settings = settings
        self.keyring = keyring
        self.name = name or worker_name()
        self.queue = Queue(url, size=4)
        self.writer = EventWriter(self.queue)
        self.accounts = RunAccounts(settings.run_accounts)
        if self.accounts.separate:  # runs' folders under a folder others may enter but not list
            settings.workdir_root = runs_root(settings.workdir_root)
            self.accounts.homes = settings.workdir_root / "homes"
            closed = closed_socket(settings.state_url) if settings.state_url else None
            if closed is not None:
                log.warning("runs get no runs' database: its socket is in %s, closed to their accounts", closed)
                settings.state_url = None
        # the runs' folders of this worker, in a folder named after it: the next worker to start removes it
        # if this one is killed (see sweep_orphans)
        self.folder = worker_folder(settings.workdir_root, shared=self.accounts.separate)
        self.kernels = KernelPool(
            settings.kernel_pool_size,
            settings.memory_mib,
            self.folder,
            commands=settings.kernel_commands,
            limit=settings.account_pools,
            idle_seconds=settings.account_idle_seconds,
            engine=settings.notebook_engine,
        )
        self.runners = RunnerPool(
            settings.runner_pool_size,
            [*settings.preload, *tracing.runner_preload()],
            settings.memory_mib,
            self.folder,
            settings.state_url,
            limit=settings.account_pools,
            idle_seconds=settings.account_idle_seconds,
            state=runs_state.provider(settings.state_server, keyring),  # each organization's runs' database
            parked=settings.slots,  # processes kept for an organization's next run: as many as run at once
        )
        self.readiness = Readiness(self.kernels, self.runners, separate=self.accounts.separate, wake=self._wake_up)
        limits = Limits(settings.memory_mib, settings.max_output_bytes, settings.default_timeout_seconds)
        self.attempts = Attempts(
            self.kernels,
            self.runners,
            limits,
            state_url=settings.state_url,
            files_root=str(settings.files_root) if settings.files_root else None,
        )
        self.handing = Handing(self.queue, keyring, settings)
        self.ending = Ending(self.queue, self.writer, self.name, settings)
        self.active: dict[uuid.UUID, ActiveRun] = {}
        self._slots = asyncio.Semaphore(settings.slots)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._lifecycle = asyncio.Lock()  # a stop asked while the worker starts waits for start() to give up
        self._checks: set[asyncio.Task[None]] = set()  # cancel notifications being checked against the row
        self._runs: set[asyncio.Task[None]] = set()
        self._unfinished: list[ClaimedRun] = []

    async def start(self) -> None:
        """Start claiming. The worker holds the database URL and the keys: it makes itself non-dumpable
        first (in-process in the personal mode too), and checks it may switch to the runs' accounts."""
        async with self._lifecycle:
            await self._start()

    async def _start(self) -> None:
        if not protect_worker_process():
            log.warning("could not make the worker non-dumpable: its runs may read its memory")
        self.accounts.check()
        for orphan in sweep_orphans(self.folder.parent):
            log.info("removed %s: the runs' folders of a worker that died", orphan)
        await sweep.at_start(self.accounts, self.folder)  # what a killed worker left running (sweep.py)
        await self.queue.open()
        if self._stopping.is_set():  # stopped while starting (a SIGTERM at start-up): start nothing more
            return
        self.writer.start()
        if not self.accounts.separate:  # else each organization's are started on its first run
            self.kernels.fill()
            self.runners.fill()
        # the claim loop first: stop() waits for it before anything else
        for loop in (self._claim_loop, self._heartbeat_loop, self._reap_loop, self._listen_loop):
            task = asyncio.create_task(loop(), name=f"worker-{loop.__name__}")
            task.add_done_callback(_report_crash)
            self._loops.append(task)
        tiers = ", ".join(self.settings.tiers) or "every tier"
        log.info("worker %s started: %d slots, runs of %s", self.name, self.settings.slots, tiers)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running runs finish for ``grace`` seconds, then stop them (they are retried)."""
        self._stopping.set()
        self._wake.set()
        async with self._lifecycle:  # a start under way gives up first
            await self._stop(grace)

    async def _stop(self, grace: float) -> None:
        # the claim loop (none if stopped while starting): no run starts after this
        await asyncio.gather(*self._loops[:1], return_exceptions=True)
        if self._runs:
            await asyncio.wait(set(self._runs), timeout=grace)
        for active in list(self.active.values()):
            active.cancel(lost=True)  # not recorded as cancelled: handed back to the queue below
        await asyncio.gather(*self._runs, return_exceptions=True)
        for run in self._unfinished:
            with contextlib.suppress(psycopg.Error, OSError):
                await self.queue.release(run, self.name)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await self.writer.close()
        await asyncio.gather(self.readiness.close(), self.kernels.close(), self.runners.close())
        await self.queue.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        log.info("worker %s stopped", self.name)

    # ---- claiming ------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while await self._free_slot():
            free = 1 + await self._take_free_slots()  # every slot free now: claimed in one round trip
            kinds = self.readiness.kinds()  # only what this worker can start now (see readiness.py)
            if kinds == []:
                self._give_back_slots(free)
                await self._idle(self.settings.poll_seconds)
                continue
            asked = tracing.clock()  # the claim's span starts here (0: tracing off)
            try:
                tiers = list(self.settings.tiers)
                runs = await self.queue.claim_many(self.name, self.settings.lease_seconds, tiers, free, kinds)
            except (psycopg.Error, OSError):
                self._give_back_slots(free)
                log.warning("claim failed; the database may be restarting", exc_info=True)
                await self._idle(1.0)
                continue
            self._give_back_slots(free - len(runs))
            for run in runs:
                task = asyncio.create_task(self._execute(run, asked), name=f"run-{run.id}")
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
            if len(runs) < free:  # the queue has nothing more this worker may take now: until woken
                await self._idle(self.settings.poll_seconds)

    async def _take_free_slots(self) -> int:
        """Take every other slot free now (the claim loop holds one already): how many. An acquire of a
        semaphore that is not locked does not wait."""
        taken = 0
        while not self._slots.locked():
            await self._slots.acquire()
            taken += 1
        return taken

    def _give_back_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _wake_up(self) -> None:
        self._wake.set()

    async def _free_slot(self) -> bool:
        """Wait for a free slot and take it; False once the worker is stopping."""
        acquiring = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            return False
        if self._stopping.is_set():
            self._slots.release()
            return False
        return True

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    # ---- one run -------------------------------------------------------------

    async def _execute(self, run: ClaimedRun, asked: int = 0) -> None:
        traced = tracing.begin_run(run, self.name, asked)  # in the trace of the POST that queued it
        events = tracing.run_events(self.writer, run.id, run.org_id, run.attempt, self.settings.max_log_bytes)
        active = ActiveRun(run, events)
        self.active[run.id] = active
        log.info("run %s attempt %d started", run.id, run.attempt, extra={"correlation_id": run.correlation_id})
        key, account = self.accounts.pool_key(run.org_id), None
        try:
            try:
                account = await self.accounts.for_org(run.org_id)
                integrations = await self._integrations(active, claimed=True)
                if run.framework == "n8n":  # its organization's instance may still be starting: wait (n8n/pending.py)
                    integrations = await n8n_pending.when_ready(integrations, self._integrations, active)
                outcome = await self._attempts_for(key, account).run(active, integrations)
            except Exception as exc:  # the database or the key ring, before the run could start
                log.exception("run %s could not start", run.id)
                message = f"the run could not start: {type(exc).__name__}: {exc}"
                outcome = Outcome(FAILED, error=RunError(ErrorKind.INTERNAL, message, retryable=True))
            traced.outcome(outcome.status, outcome.error.kind.value if outcome.error else None)
            if not active.lost:
                await self._record(run, outcome)  # its log complete when its end is: written with it
            else:
                await self.writer.flush()
                if self._stopping.is_set():
                    self._unfinished.append(run)
        finally:
            traced.end()
            self.active.pop(run.id, None)
            try:
                await active.let_go()  # its process gone or kept: only then may another run take the slot
            finally:
                self._slots.release()
                self._wake.set()
                # refill once the run is recorded: a kernel starting (half a second of CPU) would slow the run down
                self._refill(key, account, run.framework)

    def _attempts_for(self, key: str | None, account: RunAccount | None) -> Attempts:
        """The attempts of one organization's run: kernels and runners from its own pools, as its account."""
        if not self.accounts.separate:
            return self.attempts
        attempts = copy.copy(self.attempts)
        attempts.kernels = self.kernels.for_org(key, account)
        attempts.runners = self.runners.for_org(key, account)
        return attempts

    def _refill(self, key: str | None, account: RunAccount | None, framework: str) -> None:
        """Warm processes for the next run: all of them in the personal mode; else those of the kind this
        organization just used (a notebook's kernels, a framework's fork server)."""
        if self._stopping.is_set() or (self.accounts.separate and account is None):
            return
        if not self.accounts.separate or framework == "notebook":
            self.kernels.fill(key, account)
        if not self.accounts.separate or framework != "notebook":
            self.runners.fill(key, account)

    async def _integrations(self, active: ActiveRun, claimed: bool = False) -> dict[str, dict[str, Any]]:
        """The integrations this run receives (:mod:`.handing`)."""
        return await self.handing.for_run(active, claimed)

    async def _record(self, run: ClaimedRun, outcome: Outcome) -> None:
        """Record how the attempt ended (:mod:`.ending`)."""
        await self.ending.record(run, outcome)

    # ---- leases, cancellation, lost runs --------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            ids = list(self.active)
            if not ids:
                continue
            try:
                held = await self.queue.heartbeat(self.name, ids, self.settings.lease_seconds)
            except (psycopg.Error, OSError):
                log.warning("heartbeat failed; the database may be restarting", exc_info=True)
                continue
            for execution_id in ids:
                active = self.active.get(execution_id)
                if active is None:
                    continue
                if execution_id not in held:
                    log.warning("run %s is no longer held by this worker; stopping it", execution_id)
                    active.cancel(lost=True)
                elif held[execution_id]:
                    active.cancel()

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reap_seconds)
            try:
                for row in await self.queue.requeue_lost(self.settings.lost_attempts):
                    log.warning("run %s lost its worker: now %s", row["id"], row["status"])
            except (psycopg.Error, OSError):
                log.debug("reaping failed; the database may be restarting", exc_info=True)

    async def _listen_loop(self) -> None:
        while True:
            try:
                # named, so that the server's metrics count the live workers (orchestrator_workers_connected)
                name = f"{WORKER_APPLICATION_NAME}:{self.name}"[:63]
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name=name
                ) as conn:
                    await conn.execute("LISTEN orchestrator_queue")
                    await conn.execute("LISTEN orchestrator_cancel")
                    self._wake.set()  # notifications may have been missed while disconnected
                    async for note in conn.notifies():
                        self._notified(note.channel, note.payload)
            except (psycopg.Error, OSError):
                log.debug("the notification connection dropped; reconnecting", exc_info=True)
                await asyncio.sleep(1.0)

    def _notified(self, channel: str, payload: str) -> None:
        if channel == "orchestrator_queue":
            self._wake.set()
            return
        with contextlib.suppress(ValueError):
            run_id = uuid.UUID(payload)
            if run_id in self.active:  # a hint: only the run's row says it is cancelled (any NOTIFY is one)
                check = asyncio.get_running_loop().create_task(self._cancel_if_requested(run_id))
                self._checks.add(check)
                check.add_done_callback(self._checks.discard)

    async def _cancel_if_requested(self, run_id: uuid.UUID) -> None:
        with contextlib.suppress(psycopg.Error, OSError):
            if await self.queue.cancel_requested(run_id) and (active := self.active.get(run_id)) is not None:
                log.info("run %s cancelled by request", run_id)
                active.cancel()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("worker loop %s crashed", task.get_name(), exc_info=task.exception())
