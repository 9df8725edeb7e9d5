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
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

log = logging.getLogger("orchestrator.engine")
T = TypeVar("T")
P = TypeVar("P")


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

    @property
    def ready(self) -> int:
        """How many started processes wait to be taken (a worker claims notebook runs once one does)."""
        return self._ready.qsize()

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


class PerAccount(Generic[P]):
    """One pool (of warm kernels, or a fork server) per organization, so that nothing started for one
    organization's runs is ever handed to another's: made on first use, the least recently used closed
    beyond ``limit``, and any left unused for ``idle_seconds`` closed.

    A pool that ``busy`` says is in use (a fork server with runs in flight: they die with it) is kept
    even beyond the limit, and closed later. Key None is the one pool of the personal mode.
    """

    def __init__(
        self,
        make: Callable[[str | None], P],
        close: Callable[[P], Coroutine[Any, Any, None]],
        *,
        busy: Callable[[P], bool] = lambda pool: False,
        limit: int = 4,
        idle_seconds: float = 600.0,
    ) -> None:
        self._make, self._close, self._busy = make, close, busy
        self.limit, self.idle_seconds = max(1, limit), idle_seconds
        self._pools: OrderedDict[str | None, tuple[P, float]] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, key: str | None) -> P:
        """The pool of ``key``, made now if it has none; it becomes the most recently used."""
        entry = self._pools.pop(key, None)
        pool = entry[0] if entry is not None else self._make(key)
        self._pools[key] = (pool, time.monotonic())
        self._evict()
        return pool

    def peek(self, key: str | None) -> P | None:
        entry = self._pools.get(key)
        return entry[0] if entry is not None else None

    def keys(self) -> list[str | None]:
        return list(self._pools)

    def _evict(self) -> None:
        now = time.monotonic()
        for key, (pool, used) in list(self._pools.items())[:-1]:  # never the one just used
            over = len(self._pools) > self.limit or now - used > self.idle_seconds
            if over and not self._busy(pool):
                del self._pools[key]
                log.info(
                    "closing the warm processes of %s (%s)",
                    key,
                    "idle" if now - used > self.idle_seconds else "least recently used",
                )
                task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._close(pool))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        pools = [pool for pool, _ in self._pools.values()]
        self._pools.clear()
        await asyncio.gather(*(self._close(pool) for pool in pools), *self._closing, return_exceptions=True)
