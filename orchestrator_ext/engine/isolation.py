"""What every run's child process gets: a scrubbed environment, its own directory, limits.

A run never inherits the worker's environment: only the variables in
:data:`PASSED_THROUGH` (locale, paths a kernel needs) cross, so no database
URL, encryption key or hub token reaches user code; no file descriptor
crosses either (``close_fds``, the default of every launcher used here). Each
run gets a fresh working directory, owned by the account it runs as
(:mod:`.accounts`), and its process (and everything it starts) a cap on open
files set before ``exec`` and a parent-death signal, so it dies with its
worker. Its memory limit is on what it has resident, watched from the worker
(:class:`orchestrator_runtimes.limits.MemoryGuard`), not an address-space
limit: that would count the ~0.8 GB a kernel maps and never uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path

from orchestrator_runtimes.forkserver import die_with_parent, make_non_dumpable
from orchestrator_runtimes.limits import apply_limits

from .accounts import RunAccount

#: the only variables of the worker's environment a run sees
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX")


def run_environment(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a run started in ``workdir``: passed-through variables, a private HOME and tmp."""
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir / "tmp"),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        JUPYTER_PLATFORM_DIRS="1",
        MPLBACKEND="Agg",
        # frameworks must not phone home or wait on a network from inside a run
        CREWAI_DISABLE_TELEMETRY="true",
        CREWAI_TRACING_ENABLED="false",
        AGNO_TELEMETRY="false",
        LANGCHAIN_TRACING_V2="false",
        LANGSMITH_TRACING="false",
    )
    env.update(extra or {})
    return env


def new_workdir(root: Path | None, prefix: str, account: RunAccount | None = None) -> Path:
    """A fresh private directory for one run (mode 0700), with its own ``tmp``, owned by ``account``
    (None: this process's account)."""
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    (path / "tmp").mkdir(mode=0o700)
    if account is not None:  # the mode is set first: changing it afterwards would need CAP_FOWNER
        account.give(path / "tmp")
        account.give(path)
    return path


def remove_workdir(path: Path) -> None:
    """Remove a run's directory: two ``rmdir`` where the run left it empty (most do; ``rmtree`` walks it with
    descriptors, several times the system calls), else the whole tree."""
    try:
        os.rmdir(path / "tmp")
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def kill_group(pid: int | None) -> None:
    """SIGKILL a run's whole process group (each run is started in a session of its own, so whatever it
    started goes too): for cancel, timeout and the end. One already gone, or none yet, is nothing to do."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class ProcessRef:
    """A process another one forked (a fork server's child), held by a pidfd (Linux >= 5.3): unlike its pid,
    which the kernel may give a later process once this one is reaped, the pidfd never names another process,
    so a kept child that exited on its own is never signalled through a reused pid (in team mode the worker
    is root: that could kill another organization's run). Where pidfds are missing, the process's start
    time (field 22 of ``/proc/<pid>/stat``) read when the pid arrived tells the same."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd: int | None = None
        self.started: bytes | None = None
        try:
            self.fd = os.pidfd_open(pid)
        except ProcessLookupError:
            pass  # gone already: exited() is True
        except OSError:
            self.started = _start_time(pid)

    def exited(self) -> bool:
        """It ended (a zombie too): its pid may be another process's any moment."""
        if self.fd is not None:
            poll = select.poll()
            poll.register(self.fd, select.POLLIN)
            return bool(poll.poll(0))
        return self.started is None or _start_time(self.pid) != self.started

    def kill_group(self) -> None:
        """:func:`kill_group` of this process's group while the process is still there (its pid, and so its
        group's id, is then still its own); nothing once it ended."""
        if not self.exited():
            kill_group(self.pid)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.started = None  # exited() from now on: nothing is signalled through a closed handle


def _start_time(pid: int) -> bytes | None:
    """When process ``pid`` started (clock ticks after boot), None where there is none or it is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in (b"Z", b"X") else fields[19]  # fields after the name start at field 3


async def stop_process(process: asyncio.subprocess.Process, grace_seconds: float = 5.0) -> None:
    """:func:`kill_group` of ``process``, then reap it (at most ``grace_seconds``: a process stuck in the
    kernel is left to init rather than hang the worker)."""
    kill_group(process.pid)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), grace_seconds)


def child_setup() -> None:
    """The ``preexec_fn`` of a run's process (kernel, zygote, runner, fork server): caps its open files and has it
    killed when the worker dies. It runs after the switch to the run's account (which would clear the latter).
    Memory is not limited here: the worker's MemoryGuard watches what the run's processes really use."""
    apply_limits()  # the same limits as a forked run's
    die_with_parent()


def protect_worker_process() -> bool:
    """Make this process non-dumpable: processes of the same user (the runs of the personal mode) cannot
    read its memory or ``/proc/<pid>/environ``, where the database URL and the keys are, nor ptrace it.
    Every worker calls it, in-process or not. True when it took (Linux)."""
    return make_non_dumpable()
