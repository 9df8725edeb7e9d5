"""A run's limits as they really are: the memory it has resident, and its open files.

An address-space limit (``RLIMIT_AS``) counts every mapping a process has,
used or not: a Jupyter kernel maps ~0.8 GB it never touches, so a 2048 MiB
address-space limit left a notebook about 1.1 GiB. The memory limit is
therefore enforced on what a run has **resident**, from outside the run
(:class:`MemoryGuard`, in the worker):

- **cgroup v2**, where the operator gives the worker a delegated cgroup2
  directory (``$ORCHESTRATOR_RUN_CGROUP``, :func:`run_cgroups`): each run's
  process goes into a child cgroup there with ``memory.max`` = the limit, no
  swap and ``memory.oom.group``; the kernel stops the whole run at the limit,
  and the worker reads its ``oom_kill`` in ``memory.events``.
- **else a watchdog**: the worker reads the resident size of the run's process
  (``/proc/<pid>/statm``) every :data:`POLL_SECONDS` and of every process
  under it (from the worker's one scan of ``/proc`` every
  :data:`RESCAN_SECONDS` for all its runs, :class:`ProcessScanner`; a run's
  process is a child subreaper, so what it started in a session of its own
  stays under it, see :mod:`.containment`), and past the limit kills them all.
  A run can go past the limit by what it allocates within one poll before it
  is stopped.

Either way the run fails with "exceeded its memory limit of N MiB
(resident: ...)". The machines this was built on run cgroup v1 (their
unified hierarchy has no ``memory`` controller): there the watchdog applies.

The resident size counts pages shared with the warm process a run was forked
from (the fork server's frameworks, the notebook zygote's IPython): they are
memory the run uses. A run's process caps its own open files
(:func:`apply_limits`), which needs no watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ErrorKind, RunError

MAX_OPEN_FILES = 4096
#: how often the watchdog reads a run's resident size, in seconds
POLL_SECONDS = 0.1
#: how often it looks again for the processes a run started (a scan of /proc costs ~15 ms here)
RESCAN_SECONDS = 1.0
MIB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def apply_limits() -> None:
    """What a run's process sets on itself before its code runs: its open files capped.

    Its memory limit is not set here (an address-space limit would count what the process maps but never
    uses): the worker enforces it on the run's resident memory (:class:`MemoryGuard`).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(MAX_OPEN_FILES, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, cap), cap))


# ---- reading /proc ------------------------------------------------------------------------------


def resident_bytes(pid: int) -> int:
    """``pid``'s resident set in bytes (``/proc/<pid>/statm``, readable even for non-dumpable processes);
    0 when it is gone."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def children_map() -> dict[int, list[int]]:
    """Every process's children, from one scan of ``/proc`` (its parent links: a run's process is a child
    subreaper, so what its processes leave behind stays under it, see :mod:`.containment`)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                data = stat.read()
            parent = int(data[data.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(name))
    return children


def subtree(children: Mapping[int, list[int]], root: int) -> set[int]:
    """Every process under ``root`` (children, their children...) in a map of :func:`children_map`."""
    found: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def descendants(root: int) -> set[int]:
    """Every process under ``root``, from a scan of ``/proc`` made now."""
    return subtree(children_map(), root)


def kill_all(pids: set[int]) -> None:
    """SIGKILL each of ``pids`` and its process group (a run's processes share its session's group)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# ---- the watchdog -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryExceeded:
    """A run stopped at its memory limit: the limit, and what it had resident."""

    limit_mib: int
    resident_mib: float

    def error(self) -> RunError:
        return RunError(
            ErrorKind.RESOURCES,
            f"the run exceeded its memory limit of {self.limit_mib} MiB (resident: {self.resident_mib:.0f} MiB "
            "when it was stopped); use less memory, or ask for a larger limit",
            limit_mib=self.limit_mib,
            resident_mib=round(self.resident_mib),
        )


class ProcessScanner:
    """The worker's view of its processes' tree, shared by every run's watchdog: one scan of ``/proc`` (in
    a thread, ~15-30 ms) per :data:`RESCAN_SECONDS` for all runs, however many there are."""

    def __init__(self, max_age: float = RESCAN_SECONDS) -> None:
        self.max_age = max_age
        self._children: dict[int, list[int]] = {}
        self._taken = float("-inf")
        self._scan: asyncio.Future[dict[int, list[int]]] | None = None

    async def children(self) -> dict[int, list[int]]:
        """The children of every process, scanned at most :attr:`max_age` seconds ago; callers that ask
        while a scan runs share it."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._taken < self.max_age:
            return self._children
        if self._scan is None:
            self._scan = asyncio.ensure_future(asyncio.to_thread(children_map))
            self._scan.add_done_callback(self._scanned)
        return await asyncio.shield(self._scan)

    def _scanned(self, scan: asyncio.Future[dict[int, list[int]]]) -> None:
        self._scan = None
        if not scan.cancelled() and scan.exception() is None:
            self._children, self._taken = scan.result(), asyncio.get_running_loop().time()


_scanners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProcessScanner] = weakref.WeakKeyDictionary()


def shared_scanner() -> ProcessScanner:
    """This event loop's (the worker's) one :class:`ProcessScanner`."""
    loop = asyncio.get_running_loop()
    scanner = _scanners.get(loop)
    if scanner is None:
        scanner = _scanners[loop] = ProcessScanner()
    return scanner


def _kill_run(tree: set[int], pid: int) -> None:
    """Kill a run's processes: those known, and any found under its process now (in a thread: a scan)."""
    kill_all(tree | descendants(pid))


class MemoryGuard:
    """One run's memory limit, from the worker: :meth:`wait` returns once it had to stop the run.

    In a child cgroup of :func:`run_cgroups` where the operator delegates one (the kernel enforces
    ``memory.max``), else by the watchdog over the resident size of the run's processes (their tree from
    the worker's one :class:`ProcessScanner`).

    ``pid_of`` says the run's process id when known (a forked run says it after its start). The guard
    sleeps first: a run shorter than one poll costs nothing.
    """

    def __init__(
        self,
        memory_mib: int,
        pid_of: Callable[[], int | None],
        *,
        interval: float = POLL_SECONDS,
        scanner: ProcessScanner | None = None,
    ) -> None:
        self.memory_mib = memory_mib
        self.pid_of = pid_of
        self.interval = interval
        self.scanner = scanner

    async def wait(self) -> RunError:
        """The run's error once it had to be stopped (its processes killed): past its limit, or a limit that
        could not be set up; never without a limit."""
        if self.memory_mib <= 0:
            await asyncio.Event().wait()
        try:
            parent = run_cgroups()
            stopped = await (self._in_cgroup(parent) if parent is not None else self._watch())
        except OSError as exc:
            message = f"the run's memory limit could not be set up in {CGROUP_ENV}: {exc}"
            return RunError(ErrorKind.CONFIGURATION, message)
        return stopped.error()

    async def _in_cgroup(self, parent: Path) -> MemoryExceeded:
        """The run's process in a child cgroup of ``parent`` with ``memory.max``: the kernel stops it there."""
        pid = self.pid_of()
        while pid is None:
            await asyncio.sleep(0.01)  # a forked run says its pid before its code starts: move it first
            pid = self.pid_of()
        group = confine(parent, f"run-{pid}", pid, self.memory_mib)
        try:
            while True:
                await asyncio.sleep(self.interval)
                stopped = stopped_in(group, self.memory_mib)
                if stopped is not None:
                    return stopped
        finally:
            release(group)

    async def _watch(self) -> MemoryExceeded:
        limit = self.memory_mib * MIB
        scanner = self.scanner or shared_scanner()
        while True:
            await asyncio.sleep(self.interval)
            pid = self.pid_of()
            if pid is None:
                continue
            tree = {pid} | subtree(await scanner.children(), pid)
            resident = sum(resident_bytes(member) for member in tree)
            if resident > limit:
                await asyncio.to_thread(_kill_run, tree, pid)
                return MemoryExceeded(self.memory_mib, resident / MIB)


def process_id(holder: object) -> int | None:
    """The process id of a run's kernel or runner (``.pid``, else ``.process.pid``), None until known."""
    pid = getattr(holder, "pid", None)
    if pid is None:
        pid = getattr(getattr(holder, "process", None), "pid", None)
    return pid if isinstance(pid, int) else None


# ---- cgroup v2, where the operator delegates one ------------------------------------------------

#: a cgroup2 directory given to the worker for its runs (``memory`` in its ``cgroup.controllers``, no
#: process of its own): each run gets a child there with ``memory.max``, instead of the watchdog
CGROUP_ENV = "ORCHESTRATOR_RUN_CGROUP"


def run_cgroups(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The delegated cgroup2 directory runs go into (``$ORCHESTRATOR_RUN_CGROUP``), its ``memory``
    controller turned on for its children; None (the watchdog) when it is not set. A directory that cannot
    serve fails the runs (:class:`OSError`), not a silent fallback: the operator asked for it."""
    value = environ.get(CGROUP_ENV, "").strip()
    if not value:
        return None
    parent = Path(value)
    if "memory" not in (parent / "cgroup.controllers").read_text().split():
        raise OSError(f"{value} has no memory controller delegated (its cgroup.controllers)")
    if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
        (parent / "cgroup.subtree_control").write_text("+memory")
    return parent


def confine(parent: Path, name: str, pid: int, memory_mib: int) -> Path:
    """Move ``pid`` (and so what it starts later) into a new child cgroup stopped at ``memory_mib``, with no
    swap and the whole group killed together; its directory."""
    group = parent / name
    group.mkdir(exist_ok=True)
    (group / "memory.max").write_text(str(memory_mib * MIB))
    for setting, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
        with contextlib.suppress(OSError):  # a kernel without swap accounting
            (group / setting).write_text(value)
    (group / "cgroup.procs").write_text(str(pid))
    return group


def stopped_in(group: Path, memory_mib: int) -> MemoryExceeded | None:
    """The kernel stopped the run of ``group`` at its limit (an ``oom_kill`` in ``memory.events``)."""
    try:
        events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
        peak = int((group / "memory.peak").read_text()) if (group / "memory.peak").exists() else 0
    except (OSError, ValueError):
        return None
    if int(events.get("oom_kill", "0")) == 0:
        return None
    return MemoryExceeded(memory_mib, max(peak, memory_mib * MIB) / MIB)


def release(group: Path, tries: int = 20) -> None:
    """Kill what is left in ``group`` and remove it once empty (retried for a few seconds)."""
    with contextlib.suppress(OSError):
        (group / "cgroup.kill").write_text("1")
    try:
        group.rmdir()
    except FileNotFoundError:
        return
    except OSError:
        if tries > 0:
            with contextlib.suppress(RuntimeError):  # no loop: the group stays for the operator to see
                asyncio.get_running_loop().call_later(0.25, release, group, tries - 1)
