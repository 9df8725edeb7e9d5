"""Forked run processes kept for an organization's next run (its ``runs_per_process`` > 1).

By default each framework run gets a fresh process forked from the fork server
and used once: about 31 ms of CPU a run on this machine, most of it the fork's
copy-on-write faults and Python on cold caches (docs/executions.md). An
organization that opts in (``PATCH /organizations/{id}`` with
``runs_per_process``: N) lets one forked process serve up to N of its runs, one
at a time, as Celery's ``worker_max_tasks_per_child`` or gunicorn's
``max_requests`` do. After a run ends with its last message (not killed: a
cancel, a timeout or the memory guard kill the process, and the run in it only)
the worker keeps the process's connection here, under the run's organization
and tier, and the next run of the same organization and tier on this worker
takes it. A process is never offered to another key, so it never serves two
organizations, nor two tiers. It is let go (the connection closed, so it
exits) after N runs, when its resident size passed :data:`RECYCLE_FRACTION` of
the run memory limit, when it sat unused :data:`IDLE_SECONDS`, or with its
fork server. At most ``parked`` processes wait at once (the worker's slots:
as many as it runs at a time); parking one more closes the one waiting the
longest.

Where the operator confines runs in cgroups (``ORCHESTRATOR_RUN_CGROUP``), each
run's group is killed at its end, so there is no reuse there: every run is a
fresh process, whatever the setting.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from orchestrator_runtimes.limits import resident_bytes, run_cgroups

#: a kept process is not offered after this many idle seconds (it exits by itself after :data:`CHILD_IDLE_SECONDS`)
IDLE_SECONDS = 30.0
CHILD_IDLE_SECONDS = 2 * IDLE_SECONDS
#: a process whose resident size passed this share of the run memory limit is not kept: its next run would
#: start near the limit the memory guard kills at
RECYCLE_FRACTION = 0.5
MIB = 1024 * 1024


@dataclass(frozen=True)
class ReuseKey:
    """Who may share a process: one organization on one tier (its limits), at one ``runs_per_process`` (a
    changed setting or tier is not served by the processes kept under the old one: they are let go)."""

    org: str
    tier: str
    runs: int = 1


class KeptProcess(Protocol):
    pid: int | None

    def connected(self) -> bool: ...

    async def close(self) -> None: ...


def runs_allowed(asked: int) -> int:
    """The runs one process may serve: the organization's setting, 1 where runs are confined in cgroups."""
    if asked <= 1 or run_cgroups() is not None:
        return 1
    return asked


def fits(pid: int | None, memory_mib: int) -> bool:
    """The process may serve another run: its resident size is under :data:`RECYCLE_FRACTION` of the limit."""
    if pid is None:
        return False
    if memory_mib <= 0:
        return True
    return resident_bytes(pid) < memory_mib * MIB * RECYCLE_FRACTION


class Kept:
    """One fork server's processes waiting for their organization's next run."""

    def __init__(self, close: Callable[[KeptProcess], Awaitable[None]] | None = None, parked: int = 2) -> None:
        self._idle: dict[ReuseKey, list[tuple[KeptProcess, float]]] = {}
        self.parked = max(1, parked)
        self._close = close or (lambda process: process.close())

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._idle.values())

    async def park(self, key: ReuseKey, process: KeptProcess) -> None:
        """Keep ``process`` for ``key``'s next run; past :attr:`parked` waiting, the one waiting longest goes."""
        self._idle.setdefault(key, []).append((process, time.monotonic()))
        while len(self) > self.parked:
            oldest = min(self._idle, key=lambda other: self._idle[other][0][1])
            waiting = self._idle[oldest]
            gone, _ = waiting.pop(0)
            if not waiting:
                del self._idle[oldest]
            await self._close(gone)

    async def take(self, key: ReuseKey) -> KeptProcess | None:
        """The most recently parked live process of ``key`` (its caches the warmest); stale ones, and those its
        organization kept under another tier or setting, are closed."""
        for other in [other for other in self._idle if other.org == key.org and other != key]:
            for process, _ in self._idle.pop(other):
                await self._close(process)
        waiting = self._idle.get(key, [])
        now, taken = time.monotonic(), None
        while waiting and taken is None:
            process, since = waiting.pop()
            if now - since < IDLE_SECONDS and process.connected():
                taken = process
            else:
                await self._close(process)
        await self.expire()
        return taken

    async def expire(self) -> None:
        """Drop every process idle past :data:`IDLE_SECONDS` or gone already (of any key): the worker calls it
        at each run's start, so a child that exited by itself is not kept, its pid long after its end."""
        now = time.monotonic()
        for key, waiting in list(self._idle.items()):
            fresh = []
            for process, since in waiting:
                if now - since < IDLE_SECONDS and process.connected():
                    fresh.append((process, since))
                else:
                    await self._close(process)
            if fresh:
                self._idle[key] = fresh
            else:
                del self._idle[key]

    async def close(self) -> None:
        idle, self._idle = self._idle, {}
        for waiting in idle.values():
            for process, _ in waiting:
                with contextlib.suppress(Exception):
                    await self._close(process)
