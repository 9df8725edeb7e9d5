"""The worker's event writer: a flush returns only once every event added before it is in the database,
even while the background loop is writing a batch it took (a run's last log lines before its final status)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from orchestrator_ext.engine.events import EventWriter
from orchestrator_ext.engine.queue import Queue


class SlowQueue:
    """Takes batches of events; the first write waits until the test lets it go."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.first_started = asyncio.Event()
        self.release_first = asyncio.Event()

    async def append_events(self, batch: list[dict[str, Any]]) -> None:
        if not self.first_started.is_set():
            self.first_started.set()
            await self.release_first.wait()
        self.written.extend(batch)


def test_a_flush_waits_for_the_batch_the_loop_is_writing() -> None:
    async def scenario() -> list[str]:
        queue = SlowQueue()
        writer = EventWriter(cast(Queue, queue), interval=0)
        writer.start()
        writer.add({"kind": "log", "n": 1})
        await queue.first_started.wait()  # the loop took the log line and is writing it
        flushed = asyncio.create_task(writer.flush())
        await asyncio.sleep(0.05)
        order = ["flush returned" if flushed.done() else "flush waiting"]
        queue.release_first.set()
        await flushed
        order.append(f"written {len(queue.written)}")
        await writer.close()
        return order

    assert asyncio.run(scenario()) == ["flush waiting", "written 1"]
