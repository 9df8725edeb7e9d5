"""``python -m orchestrator_runtimes.zygote --fd N``: a python3 notebook kernel per run, forked from a warm one.

Starting a kernel costs about half a second (the interpreter, IPython,
ipykernel, ZeroMQ); forking an interpreter that has all of that imported and
an IPython shell built (:class:`.ipyshell.Shell`) costs a few milliseconds.
The worker starts one zygote per organization (as that organization's account,
with the run environment and limits of ``orchestrator_ext.engine.isolation``)
and keeps the other end of its control socket (``--fd``, a socket pair: no
file anyone could connect to). For each notebook run the worker sends one end
of a new socket pair over it; the zygote forks, and the child

* starts its own session (the worker kills the run's whole process group on
  cancel or timeout), has itself killed when the zygote dies (which dies with
  the worker: parent-death signals both), and is non-dumpable like the zygote;
* is a child subreaper, and kills every process under it when it ends: nothing
  a cell starts (in a session of its own, or double-forked) outlives the run
  (:mod:`.containment`);
* reads ``{"workdir"}``, moves there (also ``HOME`` and
  ``TMPDIR``; papermill used directly sends its own ``environ`` instead),
  caps its open files with the helper every run process uses
  (:func:`.limits.apply_limits`; its memory is watched by the worker) and
  answers ``{"pid": N}``;
* then serves requests, one JSON line each: ``{"execute": {"code", "silent",
  "store_history"}}`` answered by the cell's Jupyter messages (``stream``,
  ``display_data``, ``execute_result``, ``error``, ...) and a last line
  ``{"reply": <execute_reply content>}``; ``{"kernel_info": {}}`` answered by
  ``{"reply": <kernel_info content>}``. It exits when the worker hangs up.

The zygote stops when the worker closes the control socket, or dies. It is a
subreaper too: what a run killed from outside (cancel, timeout, memory limit)
had started is reparented to it, and it kills those processes, which it did not
fork, after a child of its ended (:func:`.containment.sweep_strays`).

No run reuses a child: the next run is a new fork of the untouched zygote.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from .containment import StraySweeper, become_subreaper, end_descendants, reap
from .forkserver import PARENT_CHECK_SECONDS, die_with_parent, make_non_dumpable
from .hugepages import collapse_private_memory
from .ipyshell import Shell, encode
from .limits import apply_limits
from .oversized import fit

#: the messages sent along with the next one rather than alone
HELD = ('{"msg_type": "status"', '{"msg_type": "execute_input"')
#: the longest line a child sends unless the worker's first line says its own (``max_message``): the worker
#: reads at most 16 MiB a line; a longer output (a large image, a Plotly figure with its data) is replaced
#: by a note saying its size and this limit (:func:`.oversized.fit`), never sent to end the run as a dead kernel
MAX_MESSAGE = 16 * 1024 * 1024 - 64 * 1024


def _lines(conn: socket.socket) -> Any:
    """The requests on ``conn``, one decoded JSON line at a time, until the worker hangs up."""
    with conn.makefile("rb") as reader:
        for raw in reader:
            if raw.strip():
                yield json.loads(raw)


def child(conn: socket.socket, shell: Shell) -> int:
    """One run's kernel, in the forked child: the exit status."""
    os.setsid()
    die_with_parent()
    become_subreaper()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    lock = threading.Lock()
    held: list[bytes] = []
    limit = [MAX_MESSAGE]  # the worker's own, once its first line says it

    def write(line: str) -> None:
        # a cell's status and execute_input go with its next message: one wake-up of the worker for a
        # trivial cell instead of four (their headers keep the time they were sent)
        data = fit(line.encode("utf-8"), limit[0])
        with lock:
            if line.startswith(HELD):
                held.append(data)
                return
            conn.sendall(b"".join([*held, data]))
            held.clear()

    requests = _lines(conn)
    process = next(requests, None)
    if process is None:
        return 0
    if isinstance(process.get("max_message"), int):
        limit[0] = process["max_message"]
    workdir = Path(str(process.get("workdir") or Path.cwd()))
    os.chdir(workdir)
    if "environ" in process:  # papermill used directly: the caller's own environment, as its kernels get
        os.environ.clear()
        os.environ.update(process["environ"])
    else:
        os.environ.update(HOME=str(workdir), TMPDIR=str(workdir / "tmp"))
    apply_limits()
    shell.attach(write, workdir)
    write(encode({"pid": os.getpid()}))
    for request in requests:
        if "execute" in request:
            job = request["execute"]
            reply = shell.execute(
                str(job.get("code", "")),
                silent=bool(job.get("silent", False)),
                store_history=bool(job.get("store_history", True)),
            )
        else:
            reply = shell.kernel_info()
        write(encode({"reply": reply}))
        if shell.shell.exit_now:  # exit() or quit() in a cell, as a kernel would stop
            break
    return 0


def serve(fd: int) -> None:
    """Build the shell, then fork a child per connection until the worker goes away."""
    parent = os.getppid()
    die_with_parent()
    if not make_non_dumpable():  # pragma: no cover - not Linux
        print("zygote: could not make this process non-dumpable", file=sys.stderr)
    shell = Shell()
    # what is built now is shared with every run: keep the collector from writing to (and so copying) it
    gc.collect()
    gc.freeze()
    collapse_private_memory()  # each run's fork copies one page-table entry per 2 MiB (hugepages.py)
    threads = threading.active_count()
    if threads > 1:  # pragma: no cover - an import that starts threads
        print(f"zygote: {threads} threads after the imports; forking anyway", file=sys.stderr)
    control = socket.socket(fileno=fd)
    control.settimeout(PARENT_CHECK_SECONDS)
    become_subreaper()  # what a run killed from outside leaves behind comes here, to be killed
    print(json.dumps({"ready": True}), flush=True)
    runs: set[int] = set()
    sweeper = StraySweeper()
    while os.getppid() == parent:  # the worker died before the parent-death signal was set: stop
        try:
            message, fds, _, _ = socket.recv_fds(control, 1, 1)
        except TimeoutError:
            message, fds = b"-", []
        if not message:  # the worker closed its end: it is gone
            break
        if fds:
            runs.add(fork_run(socket.socket(fileno=fds[0]), control, shell))
        ended = {pid for pid, _ in reap()}
        runs -= ended
        sweeper.after(ended, runs)  # a run killed from outside leaves what it started here: killed


def fork_run(conn: socket.socket, control: socket.socket, shell: Shell) -> int:
    """Fork the child that serves one run on ``conn``: its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (measured through the engine's tests)
        control.close()
        status = 1
        try:
            status = child(conn, shell)
        finally:
            with contextlib.suppress(BaseException):
                end_descendants()
            os._exit(status)
    conn.close()
    return pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fd", type=int, required=True, help="the control socket the worker sends runs' sockets on")
    args = parser.parse_args(argv)
    serve(args.fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
