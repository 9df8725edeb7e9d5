"""A run's events on their way to ``execution_events``: buffered, batched, capped.

Log lines arrive in bursts (a notebook that prints in a loop); one INSERT per
line would make the database the bottleneck. :class:`EventWriter` collects the
events of every run of a worker and writes them in one statement every
``interval`` seconds. Each run's log is capped at ``max_log_bytes`` (UTF-8): it
keeps its first ``max_log_bytes``, even of one oversized chunk, drops the rest,
and its last line says how many bytes were cut (the executed notebook keeps its
own, separately capped, copy of the outputs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from .queue import Queue

log = logging.getLogger("orchestrator.engine")


class EventWriter:
    """Batches events of all runs of a worker into one INSERT per interval."""

    def __init__(self, queue: Queue, interval: float = 0.02) -> None:
        self.queue = queue
        self.interval = interval
        self._pending: list[dict[str, Any]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: one flush at a time: a flush that finds nothing pending must still wait for a batch that another
        #: flush took and is writing, so that "flushed" means "in the database" (a run's last log lines
        #: before its final status)
        self._writing = asyncio.Lock()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def add(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        self._wakeup.set()

    async def flush(self) -> None:
        """Write what is pending now (retried until the database takes it); returns once every event added
        before the call is written, including a batch another flush was writing."""
        async with self._writing:
            await self._write_pending()

    @contextlib.asynccontextmanager
    async def taken(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Every event pending now, taken out to be written in the same statement as a run's end (one round
        trip, not two); put back for the next flush when that write fails. Other flushes wait meanwhile, so
        "flushed" still means "in the database"."""
        async with self._writing:
            batch, self._pending = self._pending, []
            try:
                yield batch
            except BaseException:
                self._pending[:0] = batch
                raise

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.queue.append_events(batch)
            except (psycopg.OperationalError, OSError):
                self._pending[:0] = batch
                log.warning("could not write %d run events; retrying", len(batch), exc_info=True)
                await asyncio.sleep(0.5)
            except psycopg.Error:  # e.g. the run's organization was deleted meanwhile
                await self._write_one_by_one(batch)

    async def _write_one_by_one(self, batch: list[dict[str, Any]]) -> None:
        """A batch holds the events of every run on this worker: one the database refuses must not take
        the others (another tenant's among them) with it, so each is tried alone and only the refused is lost."""
        dropped = 0
        for row in batch:
            try:
                await self.queue.append_events([row])
            except (psycopg.OperationalError, OSError):
                self._pending.append(row)
            except psycopg.Error:
                dropped += 1
                log.warning("dropped a run event the database refused (run %s)", row.get("execution_id"), exc_info=True)
        if dropped:
            log.warning("dropped %d of %d run events the database refused", dropped, len(batch))

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(self.interval)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class RunEvents:
    """The events of one attempt of one run."""

    def __init__(
        self, writer: EventWriter, execution_id: uuid.UUID, org_id: uuid.UUID, attempt: int, max_log_bytes: int
    ) -> None:
        self.writer = writer
        self.key = {"execution_id": str(execution_id), "org_id": str(org_id), "attempt": attempt}
        self.max_log_bytes = max_log_bytes
        self.logged = 0
        self.truncated = False
        #: bytes of output dropped past the cap
        self.cut = 0
        self.reported = False

    def log(self, stream: str, text: str, **where: Any) -> None:
        if not text:
            return
        if self.truncated:
            self.cut += len(text.encode("utf-8", "replace"))
            return
        data = text.encode("utf-8", "replace")
        if self.logged + len(data) > self.max_log_bytes:
            self.truncated = True
            text = data[: self.max_log_bytes - self.logged].decode("utf-8", "ignore")  # never half a character
            data, self.cut = text.encode("utf-8"), len(data) - len(text.encode("utf-8"))
            if not text:
                return
        self.logged += len(data)
        self.writer.add({**self.key, "kind": "log", "data": {"stream": stream, "text": text, **where}})

    def finish(self) -> None:
        """The attempt ended: a log that was cut says, in its last line, by how much."""
        if self.truncated and not self.reported:
            self.reported = True
            text = (
                f"\n[log truncated: {self.cut} bytes cut after the first {self.max_log_bytes} bytes; "
                "the executed notebook keeps its own copy of the outputs]\n"
            )
            self.writer.add({**self.key, "kind": "log", "data": {"stream": "stderr", "text": text}})

    def step(self, data: dict[str, Any]) -> None:
        self.writer.add({**self.key, "kind": "step", "data": data})
