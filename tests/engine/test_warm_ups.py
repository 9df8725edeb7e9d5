"""CrewAI's and Agno's warm-ups in the fork server: the server stays single-threaded (forkable) after its own
warm-up, an idle spare runs a tiny crew and team of ours before its run comes, and a run taken by such a
spare works as in a fresh fork (the framework's own documented objects, through our runtime)."""

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

import psutil
import pytest

from tests.engine.test_forkserver import eventually, live_children

pytest.importorskip("crewai")
pytest.importorskip("agno")

#: jobs through the spares: the warm-up modules' own builders, as code-first specs name them
JOBS = {
    "crewai": ({"options": {"callable": "orchestrator_runtimes.crewai.warm:build"}}, {}),
    "agno": ({"options": {"callable": "orchestrator_runtimes.agno.warm:build"}}, {"message": "hello"}),
}


@pytest.fixture
def warm_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    path, errors = tmp_path / "runs.sock", tmp_path / "stderr"
    with open(errors, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator_runtimes.forkserver", str(path), "--preload=crewai,agno"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=tmp_path,
            start_new_session=True,
            env={**os.environ, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true"},
        )
    assert process.stdout is not None
    try:
        assert json.loads(process.stdout.readline() or b"{}") == {"ready": True}, errors.read_text()
        yield process, path, errors
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_job(path: Path, workdir: Path, framework: str) -> dict[str, Any]:
    spec, inputs = JOBS[framework]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(path))
        job = {"framework": framework, "spec": spec, "inputs": inputs, "process": {"workdir": str(workdir)}}
        conn.sendall(json.dumps(job).encode() + b"\n")
        lines = conn.makefile("rb").read().splitlines()
    return dict(json.loads(lines[-1]))


def test_spares_warm_up_crewai_and_agno_and_their_runs_work(
    warm_server: tuple[subprocess.Popen[bytes], Path, Path], tmp_path: Path
) -> None:
    server, path, _errors = warm_server
    # the server's own warm-up (Agno's team run, CrewAI's crew built) leaves it no thread. On a busy machine a
    # native thread the imports start may still be ending when it is ready (it says so on stderr and forks
    # anyway): none stays
    eventually(lambda: psutil.Process(server.pid).num_threads() == 1, within=30)
    # idle spares ran a crew: CrewAI's event threads are theirs now, not the server's
    eventually(lambda: len(live_children(server.pid)) >= 2, within=30)
    eventually(lambda: all(spare.num_threads() > 1 for spare in live_children(server.pid)), within=120)
    for framework in ("crewai", "agno", "crewai"):
        last = run_job(path, tmp_path, framework)
        assert last.get("result", {}).get("outputs", {}).get("output") == "ready", last
    # CrewAI's replay store (a SQLite file nothing reads in a run) was not written in the runs' folder
    assert not list(tmp_path.rglob("latest_kickoff_task_outputs.db"))
    eventually(lambda: psutil.Process(server.pid).num_threads() == 1, within=30)
