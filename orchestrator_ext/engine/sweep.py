"""Nothing of a run survives its fork server or zygote being killed, and nothing of a killed worker stays.

A run executes as its organization's account (team mode) or the pods' fixed
uid (``uid:<N>``), the same account as the fork server or notebook zygote it
was forked from. Runs are child subreapers and die with their parent
(``orchestrator_runtimes.containment``), but a run may SIGKILL its own server
(same account): the run then dies by its parent-death signal, and what it had
started (a double-forked, ``setsid`` process) is reparented to init, under no
subreaper of ours, still running as the organization's account, able to read
its later runs' folders.

So the worker watches each server started as a run account (a pidfd, on one
thread of its own, :class:`Watch`): as soon as one ends, for whatever reason,
every process of that account whose parent is init (the only way a process of
a run account leaves the worker's tree) is stopped, then killed with all under
it (:func:`sweep_account`), round after round until none is left for a moment
(the server's runs die by their parent-death signal meanwhile; a process stopped
cannot fork, so a stray forking to escape is caught within a few rounds). A
process of that account under a live worker (its servers, their runs, another
worker's) has a parent: it is never touched.

In the personal mode runs share the worker's own account with every process of
the person's: there the strays are the processes of that account that work in
the worker's runs' folders, have no terminal and are not under the worker
(:func:`strays_within`). A run there may also stop the worker itself; and one
that forks without executing a program is not dumpable, so only a root worker
can see its folder.

At its start a worker also removes the socket-link folders (``/tmp/orch-k-*``,
:func:`.kernels.socket_base`) of workers that were killed, and sweeps the run
accounts' orphans a killed worker's servers left (:func:`at_start`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import select
import signal
import stat
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path

from orchestrator_runtimes.limits import subtree

from ..db.handles import process_start
from .accounts import ACCOUNT_PREFIX, UID_PREFIX, WORKER_FOLDER, RunAccount, RunAccounts
from .isolation import remove_workdir

log = logging.getLogger("orchestrator.engine")
#: how long a sweep goes on looking once nothing was found (runs dying by their parent-death signal meanwhile)
QUIET_SECONDS = 0.3
#: the longest a sweep goes on, in seconds
SWEEP_SECONDS = 5.0
#: the socket-link folders of :func:`.kernels.socket_base`, and how old one must be to be judged (a new one
#: gets its link a moment after its folder is made)
LINKS = "orch-k-*"
LINK_AGE_SECONDS = 60.0


def _processes() -> dict[int, tuple[int, int]]:
    """Every live process's parent and controlling terminal (0: none), from one scan of ``/proc`` (zombies
    left out: they hold nothing)."""
    found: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
                if fields[0] not in (b"Z", b"X"):
                    found[int(name)] = (int(fields[1]), int(fields[4]))
    return found


def _children(processes: dict[int, tuple[int, int]]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    return children


def real_uid(pid: int) -> int | None:
    """``pid``'s real uid (``/proc/<pid>``'s owner is root for a non-dumpable process: its status says)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    return None


def strays(uids: Collection[int], keep: Collection[int] = ()) -> set[int]:
    """The processes of a real uid among ``uids`` whose parent is init (not ``keep``: a worker that is itself
    pid 1 has its servers there), with everything under them."""
    children = _children(_processes())
    roots = {pid for pid in children.get(1, ()) if pid not in keep and real_uid(pid) in uids}
    return roots.union(*(subtree(children, pid) for pid in roots))


def strays_within(folder: Path, *, dead_workers: bool = False) -> set[int]:
    """The personal mode's: processes of this account that are not under this process (the worker: its
    servers, their runs, the person's kernels), have no terminal (a person's shell that entered a run's folder
    has), and work in ``folder`` (the worker's runs' folders; with ``dead_workers``, the runs' root, in the
    folder of a worker that is gone), with everything under them. A process that is not dumpable (forked,
    not executed, from a run) shows its folder to root only: the others miss it."""
    processes = _processes()
    children = _children(processes)
    mine = subtree(children, os.getpid())
    roots = set()
    for pid, (_, terminal) in processes.items():
        if pid in mine or pid == os.getpid() or terminal:
            continue
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if _within(cwd, folder, dead_workers) and real_uid(pid) == os.getuid():
                roots.add(pid)
    return roots.union(*(subtree(children, pid) for pid in roots))


def _within(cwd: str, folder: Path, dead_workers: bool) -> bool:
    inside = cwd.startswith(f"{folder}/")
    if not inside or not dead_workers:
        return inside
    worker = cwd[len(f"{folder}/") :].split("/")[0]
    pid, _, start = worker[len(WORKER_FOLDER) :].partition("-")
    return worker.startswith(WORKER_FOLDER) and pid.isdigit() and str(process_start(int(pid))) != start


def _signal(pids: Collection[int], number: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)


def sweep_account(uids: Collection[int], keep: Collection[int] = ()) -> set[int]:
    """Kill every stray of ``uids`` (:func:`strays`, :func:`sweep`): the pids killed."""
    return sweep(lambda: strays(uids, keep), "uid " + ", ".join(str(uid) for uid in sorted(uids)))


def sweep(find: Callable[[], set[int]], what: str) -> set[int]:
    """Stop every process ``find`` finds until no new one appears, kill them all, and look again until none
    was found for :data:`QUIET_SECONDS` (at most :data:`SWEEP_SECONDS`): the pids killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + SWEEP_SECONDS
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < QUIET_SECONDS:
        stopped: set[int] = set()
        while time.monotonic() < deadline:  # stopped, they cannot fork: what one forked meanwhile is found next
            new = find() - stopped
            if not new:
                break
            _signal(new, signal.SIGSTOP)
            stopped |= new
        _signal(stopped, signal.SIGKILL)
        if stopped:
            killed |= stopped
            quiet_since = time.monotonic()
        time.sleep(0.02)
    if killed:
        log.warning("killed %d process(es) of %s left running outside any run: %s", len(killed), what, sorted(killed))
    return killed


class Watch:
    """Sweeps a server's strays as soon as it ends: those of its run account (:func:`strays`), or in the
    personal mode those working in its runs' folders (:func:`strays_within`). One thread, polling the
    servers' pidfds; started with the first server watched. It also knows the worker's other processes of
    run accounts (:meth:`own`: kernels), which a worker that is pid 1 (a container's) finds among its
    children, as it finds the strays it must kill."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: pidfd: the pid, and what to sweep when it ends (None: nothing)
        self._watched: dict[int, tuple[int, Callable[[], set[int]] | None]] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    def server(self, pid: int, account: RunAccount | None, folder: Path | None = None) -> None:
        """Watch server ``pid``, started as ``account`` (None: the worker's own, and its runs work in
        ``folder``)."""
        if account is not None:
            uid = account.uid
            self._watch(pid, lambda: strays({uid}, self.known() if os.getpid() == 1 else ()))
        elif folder is not None:
            self._watch(pid, lambda: strays_within(folder))

    def own(self, pid: int | None, account: RunAccount | None) -> None:
        """``pid`` (started as ``account``) is the worker's: never a stray, nothing swept when it ends."""
        if account is not None and pid is not None:
            self._watch(pid, None)

    def _watch(self, pid: int, find: Callable[[], set[int]] | None) -> None:
        if not hasattr(os, "pidfd_open"):  # pragma: no cover - Linux before 5.3
            return
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            if find is not None:
                threading.Thread(target=self._sweep, args=(find, pid), daemon=True).start()
            return
        with self._lock:
            self._watched[pidfd] = (pid, find)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="orchestrator-sweep", daemon=True)
                self._thread.start()
        os.write(self._wake_w, b"w")

    def known(self) -> set[int]:
        """The worker's processes of run accounts that are still running."""
        with self._lock:
            return {pid for pid, _ in self._watched.values()}

    def _loop(self) -> None:
        while True:
            poller = select.poll()  # not select(): a worker may hold more than 1024 descriptors
            with self._lock:
                for fd in (self._wake_r, *self._watched):
                    poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    os.read(self._wake_r, 512)
                    continue
                with self._lock:
                    pid, find = self._watched.pop(fd, (0, None))
                os.close(fd)
                if find is not None:
                    self._sweep(find, pid)

    @staticmethod
    def _sweep(find: Callable[[], set[int]], server: int) -> None:
        try:
            killed = sweep(find, f"the ended server {server}")
        except Exception:  # a sweep that failed must not end the watch of the other servers
            log.exception("sweeping what server %d's runs left failed", server)
            return
        if os.getpid() == 1:  # they were this process's children: reaped here, or they stay zombies
            time.sleep(0.1)
            for pid in killed:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)


#: the worker process's watch (one for all its workers: its servers are its children)
WATCH = Watch()


def run_account_uids(accounts: RunAccounts) -> set[int]:
    """The uids runs of this worker's mode execute as: ``uid:<N>``'s, or every ``orch-`` organization
    account of the team mode (not n8n's, ``orch-n8n-``); none in the personal mode."""
    if not accounts.separate:
        return set()
    if accounts.setting.startswith(UID_PREFIX):
        return {int(accounts.setting[len(UID_PREFIX) :])}
    return {
        entry.pw_uid
        for entry in pwd.getpwall()
        if entry.pw_name.startswith(ACCOUNT_PREFIX) and len(entry.pw_name) == len(ACCOUNT_PREFIX) + 12
    }


def sweep_links(tmp: Path = Path("/tmp")) -> list[Path]:  # noqa: S108  # nosec B108 - where socket_base makes them
    """Remove this account's socket-link folders that lead to a killed worker's folder (``worker-<pid>-<start>``
    of a process that is gone), or nowhere (that folder was removed since). The folders removed."""
    removed = []
    for folder in tmp.glob(LINKS):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            if info.st_uid != os.geteuid() or not stat.S_ISDIR(info.st_mode):
                continue
            if time.time() - info.st_mtime < LINK_AGE_SECONDS or _alive_target(folder / "w"):
                continue
            remove_workdir(folder)
            removed.append(folder)
    return removed


def _alive_target(link: Path) -> bool:
    """Whether ``link`` leads to a run's folder that exists, of a worker that still runs."""
    target = Path(os.readlink(link)) if link.is_symlink() else None
    if target is None or not target.exists():
        return False
    for part in target.parts:
        pid, _, start = part[len(WORKER_FOLDER) :].partition("-")
        if part.startswith(WORKER_FOLDER) and pid.isdigit():
            return str(process_start(int(pid))) == start
    return True


async def at_start(accounts: RunAccounts, folder: Path | None = None) -> None:
    """A worker's start (its runs' folder ``folder``): the socket links and the strays a killed worker left
    (of the run accounts; in the personal mode, in the folders of dead workers beside ``folder``)."""
    for link in await asyncio.to_thread(sweep_links):
        log.info("removed %s: the socket links of a worker that died", link)
    uids = run_account_uids(accounts)
    if uids:
        await asyncio.to_thread(sweep_account, uids)
    elif folder is not None and not accounts.separate:
        find = lambda: strays_within(folder.parent, dead_workers=True)  # noqa: E731
        await asyncio.to_thread(sweep, find, f"the workers that died in {folder.parent}")
