"""Warm pools: child processes started ahead, each taken by one run and then thrown away.

The kernels of notebook runs and the runner processes of framework runs share
this: ``fill`` starts them in the background up to ``size``; ``take_warm``
hands out a started one that is still alive (or None, and the caller starts
one now). The owner calls ``fill`` after each run has been recorded, not when
it takes one: starting a process costs about half a second of CPU, which
would otherwise slow down the very run that took the last one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("orchestrator.engine")
T = TypeVar("T")


class WarmPool(Generic[T]):
    def __init__(
        self,
        size: int,
        *,
        start: Callable[[], Awaitable[T]],
        alive: Callable[[T], Awaitable[bool]],
        discard: Callable[[T], Awaitable[None]],
        what: str,
    ) -> None:
        self.size = size
        self._start, self._alive, self._discard, self._what = start, alive, discard, what
        self._ready: asyncio.Queue[T] = asyncio.Queue()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def fill(self) -> None:
        """Start processes in the background until ``size`` are ready or starting."""
        while not self._closed and self._ready.qsize() + self._starting < self.size:
            self._starting += 1
            task = asyncio.create_task(self._start_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_one(self) -> None:
        try:
            started = await self._start()
        except Exception:
            log.exception("a warm %s failed to start", self._what)
            await asyncio.sleep(1.0)  # do not spin on something that cannot start
            return
        finally:
            self._starting -= 1
        if self._closed:
            await self._discard(started)
        else:
            self._ready.put_nowait(started)

    async def take_warm(self) -> T | None:
        """A started one that is still alive, or None when the pool is empty."""
        while not self._ready.empty():
            candidate = self._ready.get_nowait()
            if await self._alive(candidate):
                return candidate
            await self._discard(candidate)
        return None

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._ready.empty():
            await self._discard(self._ready.get_nowait())
