"""A real fork server (``python -m orchestrator_runtimes.forkserver``) for tests that talk to it over its socket.

Used by tests/engine/test_forkserver.py, tests/engine/test_hugepages.py and
tests/runtimes/test_reuse_child.py: each starts one the way the worker does,
waits for its ``{"ready": true}`` line, and kills its whole process group (the
server, its spare and its children) at the end, so nothing outlives a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def running_fork_server(where: Path, *preload: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A ready fork server listening on ``where/runs.sock`` (its working directory ``where``), having imported
    ``preload`` (none: a job for an unknown runtime fails fast, through a real fork); the process and socket."""
    path = where / "runs.sock"
    flags = [f"--preload={','.join(preload)}"] if preload else []
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator_runtimes.forkserver", str(path), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=where,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline() or b"{}") == {"ready": True}
        yield process, path
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def job_messages(path: Path, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one job on a connection of its own and read every message the child answers until it closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(path))
        conn.sendall(json.dumps(job).encode() + b"\n")
        lines = conn.makefile("rb").read().splitlines()
    return [json.loads(line) for line in lines]
