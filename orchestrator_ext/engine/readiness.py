"""Which kinds of run a worker can start now: it claims only those.

A worker's processes for runs are started ahead: the notebook zygote (or warm
kernels) for notebooks, the fork server for framework runs, which imports
LangGraph, CrewAI and Agno first (seconds; half a minute on a busy machine).
A run claimed before its process is ready would hold its lease and one of its
organization's concurrency slots all that time, while another worker could
have run it. So a worker that has just started claims notebook runs once its
zygote is up, framework runs once its fork server has imported, and stops
claiming a kind again while the process for it is being replaced (it died).

Where runs execute under accounts of their own, each organization's processes
start with its first run: nothing can be ready ahead, every kind is claimed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .kernels import KernelPool
from .runners import RunnerPool

log = logging.getLogger("orchestrator.engine")

NOTEBOOK, FRAMEWORK = "notebook", "framework"
#: how long a starting worker waits for a kernel before claiming notebooks anyway (a run starts its own)
KERNEL_READY_SECONDS = 60.0


class Readiness:
    """Watches a worker's warm processes (personal mode and split mode: one of each, key None)."""

    def __init__(self, kernels: KernelPool, runners: RunnerPool, *, separate: bool, wake: Callable[[], None]) -> None:
        self.kernels, self.runners, self.separate = kernels, runners, separate
        self._wake = wake
        self._ready: set[str] = set()
        self._waiting: dict[str, asyncio.Task[None]] = {}
        self._began = time.monotonic()

    def kinds(self) -> list[str] | None:
        """The kinds to claim now: None for every kind, else a list (empty: claim nothing yet)."""
        if self.separate:
            return None
        if FRAMEWORK in self._ready and not self._fork_server_alive():
            self._ready.discard(FRAMEWORK)  # it died: its replacement must import first
        if NOTEBOOK in self._ready and not self._zygote_alive():
            self._ready.discard(NOTEBOOK)
        for kind in (NOTEBOOK, FRAMEWORK):
            if kind not in self._ready and kind not in self._waiting:
                self._waiting[kind] = asyncio.create_task(self._wait_for(kind), name=f"ready-{kind}")
        if self._ready == {NOTEBOOK, FRAMEWORK}:
            return None
        return sorted(self._ready)

    async def close(self) -> None:
        for task in self._waiting.values():
            task.cancel()
        await asyncio.gather(*self._waiting.values(), return_exceptions=True)

    async def _wait_for(self, kind: str) -> None:
        try:
            await (self._kernel_ready() if kind == NOTEBOOK else self._fork_server_ready())
        except Exception:  # a process that cannot start: its runs fail and are retried, as before
            log.warning("the %s process did not start; claiming %s runs anyway", kind, kind, exc_info=True)
        finally:
            self._waiting.pop(kind, None)
        self._ready.add(kind)
        log.info("ready to start %s runs (%.2f s after the worker started)", kind, time.monotonic() - self._began)
        self._wake()

    async def _kernel_ready(self) -> None:
        """Until a python3 notebook would start at once: the zygote has imported IPython (zygote engine),
        or a warm kernel waits (kernel engine; none are kept: at once)."""
        if self.kernels.python is not None:
            # under the zygote's lock, held until the zygote says it is ready (ready() is true before)
            await asyncio.to_thread(self.kernels.zygotes.get(None).ensure_sync)
            return
        deadline = time.monotonic() + KERNEL_READY_SECONDS
        while not self.kernels.is_ready(None) and time.monotonic() < deadline:  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.05)

    async def _fork_server_ready(self) -> None:
        if self.runners.size > 0:  # else every run starts a runner of its own: nothing to wait for
            self.runners.fill()
            await self.runners.servers.get(None).ensure()  # returns once the server said it is ready

    def _fork_server_alive(self) -> bool:
        server = self.runners.servers.peek(None) if self.runners.size > 0 else None
        return server is None or server.process is None or server.process.returncode is None

    def _zygote_alive(self) -> bool:
        zygote = self.kernels.zygotes.peek(None) if self.kernels.python is not None else None
        return zygote is None or zygote.process is None or zygote.process.poll() is None
