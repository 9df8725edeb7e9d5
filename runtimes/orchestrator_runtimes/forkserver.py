"""``python -m orchestrator_runtimes.forkserver SOCKET``: a fresh process per run, forked from a warm one.

Starting a Python process and importing LangGraph, CrewAI or Agno costs about
a second of CPU; forking a process that already imported them costs a few
milliseconds. The worker starts one fork server with the run environment of
:mod:`orchestrator_ext.engine.isolation` (scrubbed variables, no secrets),
which imports the frameworks (``--preload``) and listens on a Unix socket
(mode 0600, in its own private directory). Each run connects and sends its
job as one JSON line, with ``process``: ``{"workdir", "memory_mib"}``. The
server forks; the child

* starts its own session (the worker kills the run's whole process group),
* lowers its address-space limit to ``memory_mib``, moves to ``workdir`` (also
  ``HOME`` and ``TMPDIR``),
* answers ``{"pid": N}``, then speaks the runner protocol of
  :mod:`.runner` on the connection; what the run prints arrives as
  ``{"event": "log", ...}`` messages,
* runs the one job and exits. Nothing of a run survives it: the next run is a
  new fork of the untouched server.

The server forks only while it has a single thread (``threading.active_count``
is checked after the imports): forking a multi-threaded process can copy a
lock some other thread held.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from .runner import preload, run_job
from .runtime import load_runtime

MAX_OPEN_FILES = 4096
#: the runs' database: runtimes create their tables there once, before the first fork
STATE_URL_ENV = "ORCHESTRATOR_RUNS_DATABASE_URL"


def prepare_state(names: list[str], url: str) -> None:
    """Let each preloaded runtime create what it keeps in the runs' database, once for all runs."""
    for name in names:
        try:
            prepare = getattr(load_runtime(name), "prepare_state", None)
            if callable(prepare):
                prepare(url)
        except Exception as exc:  # noqa: BLE001 - each run checks again and reports its own failure
            print(f"runtime {name!r} could not prepare the runs' database: {exc}", file=sys.stderr)


class Channel:
    """The protocol side of the connection: whole JSON lines, from any thread."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        with self._lock:
            self._conn.sendall(data)
        return len(text)

    def flush(self) -> None:
        return None


def _send(channel: Channel, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, default=str, allow_nan=False) + "\n")


def _read_line(conn: socket.socket, limit: int = 256 * 1024 * 1024) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk or size > limit:
            break
    return b"".join(chunks).split(b"\n", 1)[0]


def apply_limits(memory_mib: int) -> None:
    """Cap this process's address space (``memory_mib``; 0: no cap) and its open files; for a run's process."""
    if memory_mib > 0:
        size = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(MAX_OPEN_FILES, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, cap), cap))


def _forward_output(read_fd: int, channel: Channel) -> None:
    """Lines the run prints (fd 1 and 2) become ``log`` events."""
    with os.fdopen(read_fd, "rb") as pipe:
        for raw in pipe:
            text = raw.decode("utf-8", "replace")
            _send(channel, {"event": "log", "data": {"stream": "stderr", "text": text}})


def child(conn: socket.socket) -> int:
    """One run, in the forked child: the exit status."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    channel = Channel(conn)
    try:
        job = json.loads(_read_line(conn) or b"{}")
    except ValueError as exc:
        _send(channel, {"error": {"kind": "internal", "message": f"unreadable job: {exc}", "retryable": False}})
        return 1
    process = job.pop("process", {}) or {}
    workdir = Path(str(process.get("workdir") or Path.cwd()))
    os.chdir(workdir)
    os.environ.update(HOME=str(workdir), TMPDIR=str(workdir / "tmp"))
    apply_limits(int(process.get("memory_mib") or 0))
    _send(channel, {"pid": os.getpid()})
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    forwarder = threading.Thread(target=_forward_output, args=(read_fd, channel), daemon=True)
    forwarder.start()
    try:
        status = run_job(job, channel)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.close(1)
        os.close(2)
        forwarder.join(timeout=2)
    return status


def serve(path: Path, names: list[str]) -> None:
    preload(names)
    state_url = os.environ.get(STATE_URL_ENV)
    if state_url:
        prepare_state(names, state_url)
    # what is imported now is shared with every run: keep the collector from writing to (and so copying) it
    gc.collect()
    gc.freeze()
    threads = threading.active_count()
    if threads > 1:  # pragma: no cover - a framework that starts threads on import
        print(f"fork server: {threads} threads after the imports; forking anyway", file=sys.stderr)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(128)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the runs
    print(json.dumps({"ready": True}), flush=True)
    while True:
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (measured through the engine's tests)
            listener.close()
            status = 1
            try:
                status = child(conn)
            finally:
                os._exit(status)
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("socket", help="the Unix socket to listen on")
    parser.add_argument("--preload", default="", help="comma-separated runtimes to import before forking")
    args = parser.parse_args(argv)
    serve(Path(args.socket), [name for name in args.preload.split(",") if name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
