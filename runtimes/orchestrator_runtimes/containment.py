"""Nothing a run starts outlives it: a run's process keeps its descendants, and they die with the run.

A cell or a graph node may start a process that leaves the run's process group
(``Popen(..., start_new_session=True)``) or its parent (a double fork). Killing
the run's group misses it, a parent-death signal is not inherited by
grandchildren, and an orphan has no parent link back to the run. Such a
process would keep the run's account (an organization's), and so could read
later runs' folders of that organization.

So, on Linux:

* a run's process (the forked child of the fork server or of the notebook
  zygote) is a **child subreaper** (:func:`become_subreaper`): what its
  processes leave orphaned is reparented to it, not to init, so every process
  the run started stays under it (and under the worker's memory watchdog);
* when the run ends by itself it kills everything under it before it exits
  (:func:`end_descendants`: one ``waitpid`` when it started nothing);
* the fork server and the zygote are subreapers too: when a run's process is
  killed (cancel, timeout, memory limit), what it had started is reparented to
  them, and :func:`sweep_strays` kills every child of theirs that is not a
  process they forked (with all under it) the next time they look (within
  about a second and a half of a child of theirs ending: :class:`StraySweeper`).

Where the operator delegates a cgroup2 directory (:mod:`.limits`), the run's
cgroup is also killed whole (``cgroup.kill``) at its end.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Collection

from .limits import children_map, subtree

PR_SET_CHILD_SUBREAPER = 36
#: how many times a run's end looks again for processes started while it killed the others
ROUNDS = 50
#: the least time between two sweeps of a server's strays, in seconds (its loop turns at least once a second)
SWEEP_SECONDS = 0.5


def become_subreaper() -> bool:
    """Orphans among this process's descendants are reparented to it (not to init): True when it took."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def reap() -> list[tuple[int, int]]:
    """Wait for this process's children that ended (pid and wait status each), without blocking."""
    ended: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, status))


def _has_children() -> bool:
    """Whether this process has a child still running (those that ended are waited for)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def kill(pids: Collection[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def end_descendants() -> None:
    """SIGKILL every process under this one (a subreaper's: its whole tree) and wait for them: the end of
    a run. Costs one ``waitpid`` when the run left nothing running."""
    me = os.getpid()
    for _ in range(ROUNDS):
        if not _has_children():
            return
        kill(subtree(children_map(), me))
        time.sleep(0.01)  # killed ones are reaped by the next look; what they forked meanwhile is killed then


def children_of(pid: int) -> list[int] | None:
    """``pid``'s children, from ``/proc/<pid>/task/*/children`` without a scan of ``/proc``; None where the
    kernel has no such file (built without ``CONFIG_PROC_CHILDREN``)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as children:
                found.extend(int(child) for child in children.read().split())
        except FileNotFoundError:
            return None
        except OSError:
            continue
    return found


def sweep_strays(forked: Collection[int]) -> set[int]:
    """Kill the children of this process that it did not fork itself (``forked``), with everything under
    them: processes a killed run left behind, reparented to this subreaper. The pids killed."""
    me = os.getpid()
    direct = children_of(me)
    if direct is not None and all(pid in forked for pid in direct):
        return set()  # nothing left behind: no scan of /proc
    children = children_map()
    strays = {pid for pid in children.get(me, ()) if pid not in forked}
    for pid in list(strays):
        strays |= subtree(children, pid)
    kill(strays)
    return strays


class StraySweeper:
    """When a fork server or zygote sweeps (:func:`sweep_strays`): after a child of its ended, at most once
    per ``every`` seconds (a scan of ``/proc`` costs 15-30 ms: runs ending back to back share one)."""

    def __init__(self, every: float = SWEEP_SECONDS) -> None:
        self.every = every
        self.due = False
        self.last = float("-inf")

    def after(self, ended: Collection[int], forked: Collection[int]) -> None:
        """Call on each turn of the server's loop with the children that ``ended`` since the last one."""
        self.due = self.due or bool(ended)
        if self.due and time.monotonic() - self.last >= self.every:
            self.due, self.last = False, time.monotonic()
            sweep_strays(forked)
