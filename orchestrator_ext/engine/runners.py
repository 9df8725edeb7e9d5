"""Runner processes for framework runtimes: a fresh process for every run (unless the organization opts
into reuse: :mod:`.reuse`).

With ``runner_pool_size`` >= 1 (the default), a worker keeps a fork server
(``python -m orchestrator_runtimes.forkserver``) that has the frameworks
imported; each run is a new process forked from it (a few milliseconds instead
of a second of imports), which applies the run's memory limit and directory
itself. With 0, each run starts ``python -m orchestrator_runtimes.runner``
from scratch. Either way a run's process is in its own session (so the whole
process group can be killed at once), in a fresh directory, with the scrubbed
environment and the memory limit of :mod:`.isolation`, and runs one job.

Where runs execute under accounts of their own (:mod:`.accounts`), there is a
fork server per organization, started as that organization's account, lazily
and kept while it is used (:class:`.pool.PerAccount`): a run is only ever
forked from its own organization's server, into a directory of its account.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from .accounts import RunAccount
from .forked import FINAL_MESSAGES, ForkedRunner, RunnerGone

__all__ = ["FINAL_MESSAGES", "ForkServer", "ForkedRunner", "Runner", "RunnerGone", "RunnerPool", "start_runner"]
from .isolation import child_setup, kill_group, new_workdir, remove_workdir, run_environment, stop_process
from .pool import PerAccount
from .reuse import CHILD_IDLE_SECONDS, Kept, ReuseKey, runs_allowed
from .runs_state import StateFor, with_state
from .sweep import WATCH

log = logging.getLogger("orchestrator.engine")
READY_TIMEOUT = 120.0
MAX_LINE = 64 * 1024 * 1024
#: the longest Unix socket path the kernel takes (``sun_path`` is 108 bytes with its terminating NUL)
MAX_SOCKET_PATH = 108
#: how the fork server learns the runs' database (its runtimes create their tables once)
STATE_URL_ENV = "ORCHESTRATOR_RUNS_DATABASE_URL"


class Runner:
    """One started runner process waiting for its job."""

    def __init__(self, process: asyncio.subprocess.Process, workdir: Path, state: StateFor | None = None) -> None:
        self.process = process
        self.workdir = workdir
        self.state = state

    def kill_now(self) -> None:
        kill_group(self.process.pid)

    def killer(self) -> Callable[[], None]:
        """What ends this run: the process serves no other."""
        return self.kill_now

    async def wait_ready(self) -> None:
        line = await asyncio.wait_for(_pipe(self.process.stdout).readline(), READY_TIMEOUT)
        if json.loads(line or b"{}").get("ready") is not True:
            raise RunnerGone("the runner did not start")

    async def messages(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send the job; yield the runner's protocol messages until its result or error."""
        stdin, stdout = self.process.stdin, _pipe(self.process.stdout)
        if stdin is None:
            raise RunnerGone("the runner has no standard input")
        job = await with_state(job, self.state)
        stdin.write(json.dumps(job).encode() + b"\n")
        await stdin.drain()
        stdin.close()
        while True:
            line = await stdout.readline()
            if not line:
                raise RunnerGone(f"the runner process ended (exit status {await self.process.wait()})")
            message: dict[str, Any] = json.loads(line)
            yield message
            if FINAL_MESSAGES & message.keys():
                return

    async def stderr_lines(self) -> AsyncIterator[str]:
        stderr = _pipe(self.process.stderr)
        while line := await stderr.readline():
            yield line.decode(errors="replace")

    async def discard(self) -> None:
        await stop_process(self.process)
        remove_workdir(self.workdir)


def _pipe(stream: asyncio.StreamReader | None) -> asyncio.StreamReader:
    if stream is None:
        raise RunnerGone("the runner's output is not connected")
    return stream


def _as(account: RunAccount | None) -> dict[str, Any]:
    return account.popen_kwargs() if account is not None else {}


async def start_runner(
    preload: list[str],
    memory_mib: int,
    workdir_root: Path | None,
    account: RunAccount | None = None,
    state: StateFor | None = None,
) -> Runner:
    workdir = new_workdir(workdir_root, "runner-", account)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orchestrator_runtimes.runner",
        f"--preload={','.join(preload)}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=workdir,
        env=run_environment(workdir),
        preexec_fn=child_setup,
        start_new_session=True,
        limit=MAX_LINE,
        **_as(account),
    )
    runner = Runner(process, workdir, state)
    try:
        await runner.wait_ready()
    except BaseException:
        await runner.discard()
        raise
    return runner


class ForkServer:
    """``python -m orchestrator_runtimes.forkserver``, as ``account`` (None: the worker's own): started on
    first use, restarted when it dies.

    The worker binds the socket runs are requested on, in a folder of its own, and hands the server the
    listening descriptor: runs (the server's own account) cannot reach that folder, so only the worker
    asks for forks. The server's home is a folder of its account's."""

    def __init__(
        self,
        preload: list[str],
        memory_mib: int,
        workdir_root: Path | None,
        state_url: str | None = None,
        account: RunAccount | None = None,
        state: StateFor | None = None,
        org: str | None = None,
        parked: int = 2,
    ) -> None:
        self.preload, self.memory_mib, self.workdir_root = preload, memory_mib, workdir_root
        #: one runs' database for all organizations, else ``state`` gives each its own (``org``: this one's)
        self.state_url = state_url
        self.state, self.org = state, org
        self.account = account
        self.process: asyncio.subprocess.Process | None = None
        self.home: Path | None = None
        self.control: Path | None = None
        #: runs forked from this server that have not been discarded yet (they die with it)
        self.in_flight = 0
        #: its children kept for their organization's next run (:mod:`.reuse`)
        self.kept = Kept(parked=parked)
        self._lock = asyncio.Lock()
        self._stderr: asyncio.Task[None] | None = None
        #: a descriptor of ``control`` where its path is too long for a socket address (:attr:`socket`)
        self._control_fd: int | None = None

    @property
    def socket(self) -> Path:
        """The runs' socket, by an address short enough for ``sun_path`` (107 bytes): where the folder's own
        path is longer (a deep ``run_dir``), through this process's descriptor of the folder."""
        if self.control is None:
            raise RunnerGone("the fork server is not started")
        path = self.control / "runs.sock"
        if len(os.fsencode(path)) < MAX_SOCKET_PATH:
            return path
        if self._control_fd is None:
            self._control_fd = os.open(self.control, os.O_PATH | os.O_DIRECTORY)
        return Path(f"/proc/self/fd/{self._control_fd}/runs.sock")

    async def ensure(self) -> Path:
        async with self._lock:
            if self.process is None or self.process.returncode is not None:
                await self._stop()
                await self._start()
            return self.socket

    async def _start(self) -> None:
        self.control = new_workdir(self.workdir_root, "forkserver-")
        self.home = new_workdir(self.workdir_root, "forkhome-", self.account)
        # its runtimes make their tables once: in the one shared runs' database, or its organization's own
        url = self.state_url or (await self.state(self.org) if self.state and self.org else None)
        environment = run_environment(self.home, {STATE_URL_ENV: url} if url else None)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(self.socket))
            listener.listen(128)
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "orchestrator_runtimes.forkserver",
                f"--fd={listener.fileno()}",
                f"--preload={','.join(self.preload)}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.home,
                env=environment,
                preexec_fn=child_setup,
                start_new_session=True,
                pass_fds=(listener.fileno(),),
                **_as(self.account),
            )
        WATCH.server(self.process.pid, self.account, self.workdir_root)  # its runs' strays die with it (sweep.py)
        self._stderr = asyncio.create_task(_log_lines(_pipe(self.process.stderr)))
        line = await asyncio.wait_for(_pipe(self.process.stdout).readline(), READY_TIMEOUT)
        if json.loads(line or b"{}").get("ready") is not True:
            await self._stop()
            raise RunnerGone("the fork server did not start")
        who = f" as {self.account.name or self.account.uid}" if self.account is not None else ""
        log.info("fork server ready%s (%s)", who, ", ".join(self.preload) or "no frameworks preloaded")

    async def connect(self, key: ReuseKey | None = None, runs: int = 1) -> ForkedRunner:
        """A process for one run: one ``key`` kept from its last run (:mod:`.reuse`), else a new fork."""
        # take() drops the stale ones of every key; a run without reuse still drops the others' (reuse.py)
        kept = await self.kept.take(key) if key is not None else None
        if key is None:
            await self.kept.expire()
        if isinstance(kept, ForkedRunner):
            self.in_flight += 1
            return kept.next_run(new_workdir(self.workdir_root, "run-", self.account), self._finished)
        for attempt in (1, 2):
            path = await self.ensure()
            try:
                reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE)
            except OSError:
                if attempt == 2:
                    raise
                await self._restart()
                continue
            self.in_flight += 1
            workdir = new_workdir(self.workdir_root, "run-", self.account)
            runner = ForkedRunner(reader, writer, workdir, self.memory_mib, self._finished, self.state)
            if key is not None and key.runs > 1:  # kept for the organization's next run (reuse.py)
                runner.runs, runner.idle_seconds, runner.keep = runs, CHILD_IDLE_SECONDS, self._keeper(key)
            return runner
        raise RunnerGone("the fork server cannot be reached")  # pragma: no cover - the loop returns or raises

    def _keeper(self, key: ReuseKey) -> Callable[[ForkedRunner], Awaitable[None]]:
        return lambda runner: self.kept.park(key, runner)

    def _finished(self) -> None:
        self.in_flight -= 1

    async def _restart(self) -> None:
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        await self.kept.close()
        if self.process is not None:
            await stop_process(self.process)
            self.process = None
        if self._stderr is not None:
            self._stderr.cancel()
            self._stderr = None
        if self._control_fd is not None:
            os.close(self._control_fd)
            self._control_fd = None
        for folder in (self.home, self.control):
            if folder is not None:
                remove_workdir(folder)
        self.home = self.control = None

    async def close(self) -> None:
        async with self._lock:
            await self._stop()


async def _log_lines(stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        log.warning("fork server: %s", line.decode(errors="replace").rstrip())


class RunnerPool:
    """Where framework runs get their process: their organization's fork server (``size`` >= 1), else a
    new runner each. Without run accounts there is one fork server (key None)."""

    def __init__(
        self,
        size: int,
        preload: list[str],
        memory_mib: int,
        workdir_root: Path | None = None,
        state_url: str | None = None,
        *,
        limit: int = 4,
        idle_seconds: float = 600.0,
        state: StateFor | None = None,
        parked: int = 2,
    ) -> None:
        self.size = size
        #: the most processes each fork server keeps waiting for their organization's next run (reuse.py)
        self.parked = parked
        self.preload = preload
        self.memory_mib = memory_mib
        self.workdir_root = workdir_root
        self.state_url = state_url
        #: each organization's own runs' database (:mod:`.runs_state`), given to its runs in their job
        self.state = state
        self.accounts: dict[str | None, RunAccount | None] = {}
        self.servers: PerAccount[ForkServer] = PerAccount(
            self._server_for,
            ForkServer.close,
            busy=lambda server: server.in_flight > 0,
            limit=limit,
            idle_seconds=idle_seconds,
        )
        self._starting: dict[str | None, asyncio.Task[Path]] = {}
        self.key: str | None = None

    def for_org(self, key: str | None, account: RunAccount | None) -> RunnerPool:
        """This pool as the runs of ``key``'s organization see it (they run as ``account``)."""
        self.accounts[key] = account
        view = copy.copy(self)
        view.key = key
        return view

    def _server_for(self, key: str | None) -> ForkServer:
        account = self.accounts.get(key)
        # key: an organization's id where each has a server of its own (its account), else None (one for all)
        return ForkServer(
            self.preload, self.memory_mib, self.workdir_root, self.state_url, account, self.state, key, self.parked
        )

    def fill(self, key: str | None = None, account: RunAccount | None = None) -> None:
        """Have ``key``'s fork server started (in the background) before its next run needs it."""
        if self.size <= 0:
            return
        self.accounts[key] = account
        server = self.servers.get(key)
        starting = self._starting.get(key)
        if starting is None or starting.done():
            task = asyncio.create_task(server.ensure())
            task.add_done_callback(_report_start)
            self._starting[key] = task

    async def take(self, org: str | None = None, tier: str = "", runs: int = 1) -> Runner | ForkedRunner:
        """A process for one run of this view's organization (``org``), as its account: one kept from its
        organization's last run on the same tier where it allows ``runs`` > 1 per process."""
        if self.size > 0:
            runs = runs_allowed(runs)
            key = ReuseKey(org, tier, runs) if org is not None else None
            return await self.servers.get(self.key).connect(key, runs)
        account = self.accounts.get(self.key)
        return await start_runner(self.preload, self.memory_mib, self.workdir_root, account, self.state)

    async def close(self) -> None:
        for task in self._starting.values():
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        await self.servers.close()


def _report_start(task: asyncio.Task[Path]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the fork server failed to start", exc_info=task.exception())
