"""Every process the platform starts dies with the process that started it, start-up included: a SIGTERM
while ``jupyter orchestrator`` (personal mode) is still starting leaves neither its embedded PostgreSQL nor
its local model server running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from orchestrator_ext import local_model
from tests.chaos.platform import gone
from tests.personal_server import free_port, isolated_env, postgres_running_on, wait_postgres_stopped


def model_servers(server: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in server.children(recursive=True):
        try:
            if "llama_cpp.server" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_sigterm_during_start_leaves_nothing_running(tmp_path: Path) -> None:
    with_model = local_model.installed()  # the dev install has it (CI); else the test stops at PostgreSQL
    data = tmp_path / "data"
    command = [sys.executable, "-m", "jupyter", "orchestrator", "--no-browser", f"--port={free_port()}"]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, f"--OrchestratorApp.local_model={with_model}"],
            cwd=tmp_path,
            env=isolated_env(tmp_path, data),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = psutil.Process(process.pid)
    deadline = time.monotonic() + 240
    started: list[psutil.Process] = []

    def mid_start() -> bool:
        """PostgreSQL is up and (with the model) the model server is starting: the server is not serving yet."""
        if not postgres_running_on(data / "pgdata"):
            return False
        started[:] = model_servers(server) if with_model else []
        return bool(started) or not with_model

    while not mid_start():
        assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    process.wait(120)
    assert wait_postgres_stopped(data / "pgdata", 60) == [], "PostgreSQL outlived the server stopped while starting"
    assert gone(started, 30) == [], "the local model server outlived the server stopped while starting"
