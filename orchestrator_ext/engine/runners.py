"""Warm runner processes for framework runtimes (``python -m orchestrator_runtimes.runner``).

Each runner is started ahead of time with its frameworks already imported and
waits for exactly one job; it runs in its own session (so the whole process
group can be killed at once), in a fresh directory, with the scrubbed
environment and the memory limit of :mod:`.isolation`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .isolation import limiter, new_workdir, remove_workdir, run_environment
from .pool import WarmPool

log = logging.getLogger("orchestrator.engine")
READY_TIMEOUT = 120.0
MAX_LINE = 64 * 1024 * 1024


class RunnerGone(RuntimeError):
    """The runner process ended without a result (killed, or it crashed)."""


class Runner:
    """One started runner process waiting for its job."""

    def __init__(self, process: asyncio.subprocess.Process, workdir: Path) -> None:
        self.process = process
        self.workdir = workdir

    def kill_now(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def wait_ready(self) -> None:
        line = await asyncio.wait_for(_pipe(self.process.stdout).readline(), READY_TIMEOUT)
        if json.loads(line or b"{}").get("ready") is not True:
            raise RunnerGone("the runner did not start")

    async def messages(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Send the job; yield the runner's protocol messages until its result or error."""
        stdin, stdout = self.process.stdin, _pipe(self.process.stdout)
        if stdin is None:
            raise RunnerGone("the runner has no standard input")
        stdin.write(json.dumps(job).encode() + b"\n")
        await stdin.drain()
        stdin.close()
        while True:
            line = await stdout.readline()
            if not line:
                raise RunnerGone(f"the runner process ended (exit status {await self.process.wait()})")
            message: dict[str, Any] = json.loads(line)
            yield message
            if "result" in message or "error" in message:
                return

    async def stderr_lines(self) -> AsyncIterator[str]:
        stderr = _pipe(self.process.stderr)
        while line := await stderr.readline():
            yield line.decode(errors="replace")

    async def discard(self) -> None:
        self.kill_now()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 5)
        remove_workdir(self.workdir)


def _pipe(stream: asyncio.StreamReader | None) -> asyncio.StreamReader:
    if stream is None:
        raise RunnerGone("the runner's output is not connected")
    return stream


async def start_runner(preload: list[str], memory_mib: int, workdir_root: Path | None) -> Runner:
    workdir = new_workdir(workdir_root, "runner-")
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
        preexec_fn=limiter(memory_mib),
        start_new_session=True,
        limit=MAX_LINE,
    )
    runner = Runner(process, workdir)
    try:
        await runner.wait_ready()
    except BaseException:
        await runner.discard()
        raise
    return runner


class RunnerPool(WarmPool[Runner]):
    """``size`` runners started ahead, their frameworks imported; a run takes one and uses it once."""

    def __init__(self, size: int, preload: list[str], memory_mib: int, workdir_root: Path | None = None) -> None:
        self.preload = preload
        self.memory_mib = memory_mib
        self.workdir_root = workdir_root
        super().__init__(
            size,
            start=lambda: start_runner(preload, memory_mib, workdir_root),
            alive=_alive,
            discard=Runner.discard,
            what="runner",
        )

    async def take(self) -> Runner:
        return await self.take_warm() or await start_runner(self.preload, self.memory_mib, self.workdir_root)


async def _alive(runner: Runner) -> bool:
    return runner.process.returncode is None
