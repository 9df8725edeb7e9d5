"""Consecutive runs of one organization in one forked process (the organization's ``runs_per_process`` > 1).

A fork server's child normally runs one job and exits (:mod:`.forkserver`).
Where the worker asks for reuse, the job's ``process`` carries ``runs`` (how
many jobs this process may serve in all) and ``idle_seconds``: after a run's
last message and its cleanup the child says ``{"idle": true}`` and waits on the
same connection for the next job, one at a time, and exits at the worker's hang-up, after ``runs`` jobs, or when no job
came for ``idle_seconds``. The worker sends a process only jobs of the
organization (and tier) whose first job it ran: it owns the choice, the child
only obeys bounds.

Between two runs the child puts back what the fork server gave it, so that a
run starts from the same place as in a fresh process wherever that is cheap:
the environment variables (the scrubbed ones: a run's own ``os.environ``
changes, its integrations' variables included, are gone), ``sys.path``,
``sys.argv``, ``sys.stdout``/``sys.stderr``, the working directory (each run
moves to its own), and the modules a run imported from the organization's
files or its own folder (imported afresh by the next run, so an edited file
is seen). What is *not* put back, and is what a user opting in
gives up between their own runs: module globals and monkeypatches of the
installed packages, threads a run left running, memory a run leaked, files a
run wrote outside its working directory. Processes a run started are killed at
its end either way (the child is their subreaper).
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
from collections.abc import Callable
from typing import Any

#: the most jobs one process serves, whatever a job asks (the API's own cap)
MAX_RUNS = 1000
#: a process that waited this long for its next job exits (the worker stops offering it sooner)
DEFAULT_IDLE_SECONDS = 60.0
#: the longest job line read
MAX_LINE = 256 * 1024 * 1024
_serving_many = False


def serving_many() -> bool:
    """This process serves several runs (of one organization): caches a run fills are worth keeping."""
    return _serving_many


class Lines:
    """Whole lines from the connection, keeping what arrived past a newline for the next one."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def next(self, timeout: float | None) -> bytes | None:
        """The next line (without its newline); None at the peer's hang-up or after ``timeout`` seconds."""
        while b"\n" not in self.buffer:
            if timeout is not None and not select.select([self.conn], [], [], timeout)[0]:
                return None
            chunk = self.conn.recv(65536)
            if not chunk or len(self.buffer) > MAX_LINE:
                return None if not self.buffer else self._rest()
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def _rest(self) -> bytes:
        line, self.buffer = self.buffer, b""
        return line


def user_roots(job: dict[str, Any]) -> tuple[str, ...]:
    """Where a job's own code comes from: the organization's files and the run's working directory."""
    process = job.get("process") or {}
    found = (job.get("files_root"), process.get("workdir"))
    return tuple(os.path.join(str(root), "") for root in found if root)


class Baseline:
    """What the fork server gave this process, put back before each run after the first."""

    def __init__(self) -> None:
        self.environ = dict(os.environ)
        self.path = list(sys.path)
        self.argv = list(sys.argv)
        self.modules = set(sys.modules)

    def restore(self, roots: tuple[str, ...]) -> None:
        """Put the process back as it was before the first run; forget the modules the last run imported from
        ``roots`` (its organization's files, its folder)."""
        os.environ.clear()
        os.environ.update(self.environ)
        sys.path[:] = self.path
        sys.argv[:] = self.argv
        if sys.__stdout__ is not None and sys.__stderr__ is not None:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        if not roots:
            return
        for name in [name for name in sys.modules if name not in self.modules]:
            origin = getattr(sys.modules.get(name), "__file__", None)
            if isinstance(origin, str) and origin.startswith(roots):
                del sys.modules[name]  # the organization's own code: the next run imports it afresh


def quiet_output() -> None:
    """fd 1 and 2 on /dev/null between runs: a thread a run left that prints gets no error, and the next
    run's pipe is not handed fd 1 or 2 themselves by ``os.pipe``."""
    null = os.open(os.devnull, os.O_RDWR)  # fd 1 itself where the run's end closed 1 and 2
    for fd in (1, 2):
        if fd != null:
            os.dup2(null, fd)
    if null > 2:
        os.close(null)


def bounds(job: dict[str, Any]) -> tuple[int, float]:
    """How many jobs this process may serve in all, and how long it waits for the next: from the job."""
    process = job.get("process") or {}
    try:
        runs = max(1, min(int(process.get("runs", 1)), MAX_RUNS))
        idle = max(0.1, float(process.get("idle_seconds", DEFAULT_IDLE_SECONDS)))
    except (TypeError, ValueError):
        return 1, DEFAULT_IDLE_SECONDS
    return runs, idle


def serve(conn: socket.socket, send: Callable[[dict[str, Any]], None], run_one: Callable[[dict[str, Any]], int]) -> int:
    """Run the jobs of the connection, one at a time, within the bounds the first one gives: the exit status
    of the last one (0 when the worker hung up before sending any)."""
    lines = Lines(conn)
    baseline: Baseline | None = None
    roots: tuple[str, ...] = ()
    status, served, runs, idle = 0, 0, 1, DEFAULT_IDLE_SECONDS
    while served < runs:
        line = lines.next(None if served == 0 else idle)
        if line is None:
            return status
        try:
            job = json.loads(line or b"{}")
        except ValueError as exc:
            send({"error": {"kind": "internal", "message": f"unreadable job: {exc}", "retryable": False}})
            return 1
        if served == 0:
            global _serving_many
            runs, idle = bounds(job)
            baseline = Baseline() if runs > 1 else None
            _serving_many = runs > 1
        elif baseline is not None:
            baseline.restore(roots)
        roots = user_roots(job)  # before the run: it takes ``process`` out of the job
        status = run_one(job)
        served += 1
        if served < runs:
            quiet_output()
            send({"idle": True})  # after the run's cleanup (its processes ended): the worker may remove its folder
    return status
