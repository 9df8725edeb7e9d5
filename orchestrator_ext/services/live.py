"""Live run events for the server: one ``LISTEN orchestrator_events`` connection, many subscribers.

Every row inserted into ``execution_events`` sends ``NOTIFY orchestrator_events``
with its execution's id. The server holds one listening connection (opened on
the first subscription, reopened after a database restart) and wakes the
event streams of that execution; they then read the new rows themselves, with
the caller's own permissions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator

import psycopg

log = logging.getLogger("orchestrator.live")
CHANNEL = "orchestrator_events"


class EventHub:
    """Wakes subscribers when their execution has new events."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._subscribers: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._everything: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def subscribe(self, execution_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set whenever ``execution_id`` gets new rows (and after a reconnection)."""
        self._ensure_listening()
        woken = asyncio.Event()
        self._subscribers[execution_id].add(woken)
        try:
            yield woken
        finally:
            waiting = self._subscribers.get(execution_id)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._subscribers[execution_id]

    @contextlib.contextmanager
    def subscribe_all(self) -> Iterator[asyncio.Event]:
        """An event set whenever any execution gets new rows: the organization-wide streams read theirs."""
        self._ensure_listening()
        woken = asyncio.Event()
        self._everything.add(woken)
        try:
            yield woken
        finally:
            self._everything.discard(woken)

    def _ensure_listening(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen(), name="orchestrator-event-hub")

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake_all()  # events may have arrived while we were not listening
                    async for note in conn.notifies():
                        self._wake(note.payload)
            except (psycopg.Error, OSError):
                log.warning("the live events connection dropped; reconnecting", exc_info=True)
                await asyncio.sleep(1.0)

    def _wake(self, payload: str) -> None:
        try:
            execution_id = uuid.UUID(payload)
        except ValueError:
            return
        for woken in self._subscribers.get(execution_id, ()):
            woken.set()
        for woken in self._everything:
            woken.set()

    def _wake_all(self) -> None:
        for waiting in (*self._subscribers.values(), self._everything):
            for woken in waiting:
                woken.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
