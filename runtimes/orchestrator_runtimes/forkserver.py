"""``python -m orchestrator_runtimes.forkserver SOCKET``: a fresh process per run, forked from a warm one.

Starting a Python process and importing LangGraph, CrewAI or Agno costs about
a second of CPU; forking a process that already imported them costs a few
milliseconds. The worker starts one fork server with the run environment of
:mod:`orchestrator_ext.engine.isolation` (scrubbed variables, no secrets),
which imports the frameworks (``--preload``) and listens on a Unix socket
(mode 0600, in its own private directory). Each run connects and sends its
job as one JSON line, with ``process``: ``{"workdir", "memory_mib"}``.

The connection is taken by a *spare*: a child the server forked ahead of time
(:data:`SPARES` of them), waiting in ``accept``; the server forks another as soon as one is taken,
so no fork is on a run's path. A spare runs the runtimes' tiny warm-up while
it waits, so the pages a run writes to are already its own: the run pays no
copy-on-write faults (about 2,000 of them, 6-10 ms of CPU, for a LangGraph
run). It does so at once where a CPU is free for it: fewer runs under way in
this server than the CPUs it may use, and a load average under that too (runs
one after another, each waiting for the one before: the next run is taken
within milliseconds, and a warm-up begun later would not be done). Otherwise
it warms up only once it waited :data:`WARM_AFTER_SECONDS` for a run (an idle
server), and while :data:`BUSY_RUNS` or more runs are under way only once it
waited :data:`SATURATED_WARM_AFTER_SECONDS`: a saturated machine spends its CPU
on runs, not on latency nobody waits for. The spare

* starts its own session (the worker kills the run's whole process group),
  is a child subreaper and kills everything under it when the run ends (what
  a killed run left behind is reparented to the server, which kills it:
  :mod:`.containment`),
* caps its open files (its memory is watched by the worker), moves to ``workdir`` (also
  ``HOME`` and ``TMPDIR``),
* answers ``{"pid": N}``, then speaks the runner protocol of
  :mod:`.runner` on the connection; what the run prints arrives as
  ``{"event": "log", ...}`` messages,
* runs the one job and exits. Nothing of a run survives it: the next run is a
  new fork of the untouched server (a warm-up is our own fixed graph, never
  another run's code). Unless the worker asks for reuse (an organization's
  ``runs_per_process`` > 1): then it serves that many jobs of that
  organization in turn on the same connection (:mod:`.reuse`).

The server forks only while it has a single thread (``threading.active_count``
is checked after the imports): forking a multi-threaded process can copy a
lock some other thread held.

Where runs execute under an account of their own, the worker starts the
server as that account and hands it the listening socket (``--fd``): the
socket file stays in the worker's private folder, so no run can connect to it.
The server is non-dumpable (no run, even of its own account, can read its
memory or ``/proc/<pid>/environ``, nor ptrace it), and so is every run forked
from it. It dies with its worker (a parent-death signal, and a check of its
parent every second), and every run and spare with it. The server waits for
its children itself, so their CPU time is counted in its children's times.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import os
import select
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import reuse
from .containment import StraySweeper, become_subreaper, end_descendants, reap
from .hugepages import collapse_private_memory
from .limits import apply_limits as apply_limits  # open files; memory is watched by the worker
from .runner import preload, run_job
from .runtime import load_runtime
from .tracing import PRELOAD_NAME

PR_SET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 3, 4
#: how often the server looks whether its worker is still there, in seconds
PARENT_CHECK_SECONDS = 1.0
#: a spare that no run took within this many seconds warms up (the server is idle)
WARM_AFTER_SECONDS = 0.05
#: a spare forked while the server was saturated warms up only once it waited this long (the server went idle)
SATURATED_WARM_AFTER_SECONDS = 1.0


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by its cgroup's CPU quota (``cpu.max``: a container
    limited to 2 CPUs on a larger machine sees all of the machine's in its affinity)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError, IndexError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    return max(1, cpus)


#: with as many runs under way in the server (or a load average as high), spares do not warm up at once
BUSY_RUNS = usable_cpus()
#: children waiting for runs at any time
SPARES = 2
#: the runs' database: runtimes create their tables there once, before the first fork
STATE_URL_ENV = "ORCHESTRATOR_RUNS_DATABASE_URL"


def prepare_state(names: list[str], url: str) -> None:
    """Let each preloaded runtime create what it keeps in the runs' database, once for all runs."""
    for name in names:
        if name == PRELOAD_NAME:  # not a runtime: the tracing SDK
            continue
        try:
            prepare = getattr(load_runtime(name), "prepare_state", None)
            if callable(prepare):
                prepare(url)
        except Exception as exc:  # noqa: BLE001 - each run checks again and reports its own failure
            print(f"runtime {name!r} could not prepare the runs' database: {exc}", file=sys.stderr)


#: the runner protocol's last messages: the worker stops reading after one of them
FINAL_PREFIXES = ('{"result"', '{"error"', '{"waiting"')


class Channel:
    """The protocol side of the connection: whole JSON lines, from any thread.

    While ``holding``, the run's last message is kept back, and :meth:`release` sends it once
    everything the run printed has been forwarded: the worker stops reading at that message, so
    lines printed just before it would otherwise be lost."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.holding = False
        self._held: list[str] = []

    def write(self, text: str) -> int:
        if self.holding and text.startswith(FINAL_PREFIXES):
            self._held.append(text)
            return len(text)
        data = text.encode("utf-8")
        with self._lock:
            self._conn.sendall(data)
        return len(text)

    def release(self) -> None:
        self.holding = False
        held, self._held = self._held, []
        for text in held:
            self.write(text)

    def flush(self) -> None:
        return None


def _send(channel: Channel, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, default=str, allow_nan=False) + "\n")


def _prctl(option: int, value: int) -> int:
    if not sys.platform.startswith("linux"):
        return -1
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0))


def make_non_dumpable() -> bool:
    """No other process of this account may read this one's memory or ``/proc/<pid>/environ``, nor
    ptrace it; inherited by forked children. True when it took (Linux)."""
    return _prctl(PR_SET_DUMPABLE, 0) == 0 and _prctl(PR_GET_DUMPABLE, 0) == 0


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """SIGKILL (or ``signum``: SIGTERM lets a server stop what it started) this process when its parent
    dies (set after any change of account: that clears it)."""
    _prctl(PR_SET_PDEATHSIG, signum)


def _forward_output(read_fd: int, channel: Channel) -> None:
    """Lines the run prints (fd 1 and 2) become ``log`` events."""
    with os.fdopen(read_fd, "rb") as pipe:
        for raw in pipe:
            text = raw.decode("utf-8", "replace")
            _send(channel, {"event": "log", "data": {"stream": "stderr", "text": text}})


def child(conn: socket.socket) -> int:
    """The runs of a taken spare, in the forked child: one, or (the worker asks for reuse) several of one
    organization in turn (:mod:`.reuse`). The exit status of the last."""
    channel = Channel(conn)
    return reuse.serve(conn, lambda message: _send(channel, message), lambda job: _run_one(job, channel))


def _run_one(job: dict[str, Any], channel: Channel) -> int:
    """One run: its own directory, output pipe and log forwarding; everything it started ends with it."""
    process = job.pop("process", {}) or {}
    workdir = Path(str(process.get("workdir") or Path.cwd()))
    os.chdir(workdir)
    os.environ.update(HOME=str(workdir), TMPDIR=str(workdir / "tmp"))
    apply_limits()
    _send(channel, {"pid": os.getpid()})
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forwarder = threading.Thread(target=_forward_output, args=(read_fd, channel), daemon=True)
    forwarder.start()
    channel.holding = True
    try:
        status = run_job(job, channel)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.close(1)
        os.close(2)
        end_descendants()  # nothing the run started outlives it (nor holds its output pipe open)
        forwarder.join(timeout=2)  # everything printed is forwarded (unless a child still holds the pipe)
        channel.release()
    return status


def _listener(path: Path | None, fd: int | None) -> socket.socket:
    """The socket runs connect to: one the worker made and handed over (``fd``), else bound here."""
    if fd is not None:
        return socket.socket(fileno=fd)
    if path is None:
        raise SystemExit("the fork server needs a socket path or --fd")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(128)
    return listener


def warm(names: list[str], listener: socket.socket | None = None) -> None:
    """Run each runtime's tiny warm-up: what a run writes to (reference counts, LangGraph's caches) is then
    this process's own, so the run that follows does not pay the copy-on-write faults of a fresh fork. A
    runtime's ``warm_up_run`` (a spare's: it may start threads) is preferred to its ``warm_up`` (the server's
    too). Stops between runtimes once a run waits on ``listener``: the run goes first."""
    for name in names:
        if listener is not None and select.select([listener], [], [], 0)[0]:
            return
        with contextlib.suppress(Exception):
            runtime = load_runtime(name)
            warm_up = getattr(runtime, "warm_up_run", None) or getattr(runtime, "warm_up", None)
            if callable(warm_up):
                warm_up()


def spare(listener: socket.socket, taken: int, names: list[str], warm_after: float | None) -> int:
    """A forked child waiting for the next run: it takes the next connection itself (no fork on the
    run's path). It warms up first when no run comes within ``warm_after`` seconds (None: never, the
    CPU is better spent on runs). The exit status."""
    os.setsid()  # the run's own session: the worker kills its whole process group
    die_with_parent()
    become_subreaper()  # what the run starts stays under it, to be killed at its end
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.dup2(2, 1)  # until the run's pipe replaces them: nothing reaches the server's protocol stdout
    conn = _next_connection(listener, warm_after, names)
    os.write(taken, struct.pack("=i", os.getpid()))  # the server forks the next spare now
    os.close(taken)
    listener.close()
    conn.settimeout(None)
    return child(conn)


def _next_connection(listener: socket.socket, warm_after: float | None, names: list[str]) -> socket.socket:
    """Accept on the listener the spares share. It stays non-blocking (a file status flag all of them
    share: no spare changes it), so a spare that loses the race to another waits again."""
    while True:
        readable, _, _ = select.select([listener], [], [], warm_after)
        if not readable:  # waited warm_after seconds: the server is idle
            warm(names, listener)
            warm_after = None
            continue
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            continue
        return conn


class Spares:
    """The fork server's side: :data:`SPARES` children forked ahead, each replaced as soon as it is taken
    (or dies): runs arriving together are taken at once, in parallel.

    The server waits for its children itself (``SIGCHLD`` is not ignored), so the CPU time of every run
    is counted in its children's times (``/proc/<pid>/stat``), which benchmarks read."""

    def __init__(self, listener: socket.socket, names: list[str]) -> None:
        self.listener, self.names = listener, names
        listener.setblocking(False)
        self.taken_r, self.taken_w = os.pipe()
        self.waiting: set[int] = set()
        #: the spares and runs forked and not yet ended: any other child is left by a killed run
        self.forked: set[int] = set()
        self.sweeper = StraySweeper()

    def warm_after(self) -> float | None:
        """When a spare forked now warms up: at once where a CPU is free for it, after :data:`WARM_AFTER_SECONDS`
        where the machine is loaded but this server is not, after :data:`SATURATED_WARM_AFTER_SECONDS` (the server
        went idle) while :data:`BUSY_RUNS` runs are under way."""
        under_way = len(self.forked - self.waiting)  # taken and not ended (processes kept for reuse included)
        if under_way >= BUSY_RUNS:
            return SATURATED_WARM_AFTER_SECONDS
        try:
            loaded = os.getloadavg()[0] >= BUSY_RUNS  # the machine's (a container's host's): the others' runs too
        except OSError:
            loaded = False
        return WARM_AFTER_SECONDS if loaded else 0.0

    def fork(self) -> None:
        warm_after = self.warm_after()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (measured through the engine's tests)
            os.close(self.taken_r)
            status = 1
            try:
                status = spare(self.listener, self.taken_w, self.names, warm_after)
            finally:
                os._exit(status)
        self.waiting.add(pid)
        self.forked.add(pid)

    def serve(self, alive: Callable[[], bool]) -> None:
        for _ in range(SPARES):
            self.fork()
        while alive():
            readable, _, _ = select.select([self.taken_r], [], [], PARENT_CHECK_SECONDS)
            ended = {pid for pid, _ in reap()}  # first: a run that ended is not under way when a spare is forked
            self.forked -= ended - self.waiting
            if readable:
                data = os.read(self.taken_r, 4096)
                for (pid,) in struct.iter_unpack("=i", data[: len(data) - len(data) % 4]):
                    if pid in self.waiting:
                        self.waiting.discard(pid)
                        self.fork()
            ended |= {pid for pid, _ in reap()}
            for pid in ended & self.waiting:  # a spare died before it was taken (killed): another
                self.waiting.discard(pid)
                self.fork()
            self.forked -= ended
            self.sweeper.after(ended, self.forked)  # a run killed from outside leaves its processes here: killed


def serve(path: Path | None, names: list[str], fd: int | None = None) -> None:
    parent = os.getppid()
    die_with_parent()
    if not make_non_dumpable():  # pragma: no cover - not Linux
        print("fork server: could not make this process non-dumpable", file=sys.stderr)
    preload(names)
    state_url = os.environ.get(STATE_URL_ENV)
    if state_url:
        prepare_state(names, state_url)
    # what is imported now is shared with every run: keep the collector from writing to (and so copying) it
    gc.collect()
    gc.freeze()
    collapse_private_memory()  # one page-table entry per 2 MiB to copy at each fork, not 512 (hugepages.py)
    threads = threading.active_count()
    if threads > 1:  # pragma: no cover - a framework that starts threads on import
        print(f"fork server: {threads} threads after the imports; forking anyway", file=sys.stderr)
    listener = _listener(path, fd)
    become_subreaper()
    print(json.dumps({"ready": True}), flush=True)
    # the worker died before the parent-death signal was set: stop
    Spares(listener, names).serve(lambda: os.getppid() == parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("socket", nargs="?", help="the Unix socket to listen on")
    parser.add_argument("--fd", type=int, help="a listening Unix socket handed over by the worker, instead")
    parser.add_argument("--preload", default="", help="comma-separated runtimes to import before forking")
    args = parser.parse_args(argv)
    names = [name for name in args.preload.split(",") if name]
    serve(Path(args.socket) if args.socket else None, names, args.fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
