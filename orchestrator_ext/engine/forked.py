"""One framework run's process as the worker sees it: a child of the fork server, on a Unix connection.

A child serves one run, or, where its organization opted in (:mod:`.reuse`),
several of that organization's runs in turn on the same connection: each run
gets its own working directory (made by the worker, removed after the run),
its own ``pid`` answer, protocol messages and log, and a kill of the process
group ends the run in it (and the process: the next run gets another).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from .isolation import kill_group, remove_workdir
from .reuse import fits
from .runs_state import StateFor, with_state

#: the runner protocol's last message of a run is one of these
FINAL_MESSAGES = frozenset({"result", "error", "waiting"})


class RunnerGone(RuntimeError):
    """The runner process ended without a result (killed, or it crashed)."""


class ForkedRunner:
    """One run's process, forked by the fork server; the same interface as :class:`.runners.Runner`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        workdir: Path,
        memory_mib: int,
        done: Callable[[], None] = lambda: None,
        state: StateFor | None = None,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.state = state
        self.workdir = workdir
        self.memory_mib = memory_mib
        self.pid: int | None = None
        self._done: Callable[[], None] | None = done
        #: how many runs this process may serve in all, and how many it has
        self.runs, self.served, self.idle_seconds = 1, 0, 60.0
        #: where the worker keeps it for the next run of its organization (None: used once)
        self.keep: Callable[[ForkedRunner], None] | None = None
        self.finished = self.killed = False

    def kill_now(self) -> None:
        self.killed = True
        kill_group(self.pid)

    def connected(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def next_run(self, workdir: Path, done: Callable[[], None]) -> ForkedRunner:
        """This kept process, for one more run in ``workdir``."""
        self.workdir, self._done, self.finished = workdir, done, False
        return self

    async def messages(self, job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        process = {
            "workdir": str(self.workdir),
            "memory_mib": self.memory_mib,
            "runs": self.runs,
            "idle_seconds": self.idle_seconds,
        }
        job = await with_state(job, self.state)
        self.writer.write(json.dumps({**job, "process": process}).encode() + b"\n")
        await self.writer.drain()
        while True:
            line = await self.reader.readline()
            if not line:
                raise RunnerGone("the run's process ended without a result")
            message: dict[str, Any] = json.loads(line)
            if "pid" in message:
                self.pid = int(message["pid"])
                continue
            if FINAL_MESSAGES & message.keys():
                self.finished, self.served = True, self.served + 1
            yield message
            if self.finished:
                return

    async def stderr_lines(self) -> AsyncIterator[str]:
        """Nothing: a forked run's output arrives as ``log`` messages."""
        return
        yield  # pragma: no cover - makes this an (empty) async generator

    async def discard(self) -> None:
        """The run is over: keep the process for the organization's next run where it may serve one,
        else end it."""
        keep = self.keep
        reusable = self.finished and not self.killed and self.served < self.runs and self.connected()
        if keep is not None and reusable and fits(self.pid, self.memory_mib):
            remove_workdir(self.workdir)
            self._release()
            keep(self)
            return
        await self.close()
        remove_workdir(self.workdir)
        self._release()

    async def close(self) -> None:
        """End the process (the connection closed: a kept one waiting for a job exits at once)."""
        kill_group(self.pid)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def _release(self) -> None:
        if self._done is not None:
            self._done()
            self._done = None
