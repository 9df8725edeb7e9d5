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
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from .isolation import ProcessRef, remove_workdir
from .reuse import fits
from .runs_state import StateFor, with_state

#: the runner protocol's last message of a run is one of these
FINAL_MESSAGES = frozenset({"result", "error", "waiting"})
#: how long a process to be kept may take to end a run's processes after its last message
IDLE_WAIT_SECONDS = 5.0


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
        #: the process itself, not its pid: the pid may name another process once this one exited
        self.ref: ProcessRef | None = None
        self._done: Callable[[], None] | None = done
        #: how many runs this process may serve in all, and how many it has
        self.runs, self.served, self.idle_seconds = 1, 0, 60.0
        #: where the worker keeps it for the next run of its organization (None: used once)
        self.keep: Callable[[ForkedRunner], Awaitable[None]] | None = None
        self.finished = self.killed = False
        #: which run the process serves now: bumped when it is released, so a kill meant for a run that ended
        #: never reaches the next one (:meth:`killer`)
        self.turn = 0

    def kill_now(self) -> None:
        self.killed = True
        if self.ref is not None:
            self.ref.kill_group()

    def killer(self) -> Callable[[], None]:
        """What ends the run it serves now (and the process); nothing once that run released it."""
        turn = self.turn

        def kill() -> None:
            if self.turn == turn:
                self.kill_now()

        return kill

    def connected(self) -> bool:
        """The process is there and its connection open: it may take another job."""
        if self.reader.at_eof() or self.writer.is_closing() or _hung_up(self.writer):
            return False
        return self.ref is None or not self.ref.exited()

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
                if self.ref is None or self.ref.pid != self.pid:
                    self.ref = ProcessRef(self.pid)  # now, while the process that sent it runs its job
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
        if keep is not None and reusable and await self._idle() and fits(self.pid, self.memory_mib):
            remove_workdir(self.workdir)
            self._release()
            self.turn += 1
            await keep(self)
            return
        await self.close()
        remove_workdir(self.workdir)
        self._release()

    async def _idle(self) -> bool:
        """The process ended the run's processes and waits for a job (its ``idle`` message): only now are the
        run's folder removed and the process kept. False where it does not say so in :data:`IDLE_WAIT_SECONDS`."""
        try:
            async with asyncio.timeout(IDLE_WAIT_SECONDS):
                while line := await self.reader.readline():
                    if json.loads(line).get("idle") is True:
                        return True
        except (TimeoutError, OSError, ValueError, AttributeError):
            return False
        return False

    async def close(self) -> None:
        """End the process (the connection closed: a kept one waiting for a job exits at once). One that
        exited already, its connection at its end, is not signalled: its pid may be another process's."""
        if self.ref is not None:
            if not _hung_up(self.writer):
                self.ref.kill_group()
            self.ref.close()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    def _release(self) -> None:
        if self._done is not None:
            self._done()
            self._done = None


def _hung_up(writer: asyncio.StreamWriter) -> bool:
    """The process's end of the connection is closed (it exited): a non-blocking peek reads its end of file."""
    transport_socket = writer.get_extra_info("socket")
    if transport_socket is None or writer.is_closing():
        return True
    peek = socket.socket(fileno=transport_socket.fileno())
    try:
        return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        peek.detach()  # the transport's descriptor: not closed here
