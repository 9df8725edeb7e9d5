"""The split mode as an operator runs it, for the chaos tests: a server and ``jupyter orchestrator worker``
processes on one embedded PostgreSQL, with the tools to hurt them and to look for what they leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg

from orchestrator_ext.db.embedded import superuser_url
from tests.personal_server import PersonalServer, isolated_env

FINAL = ("succeeded", "failed", "cancelled", "timed_out")
WORKER = (sys.executable, "-m", "jupyter", "orchestrator", "worker")
#: short leases, so a killed worker's runs are taken up again within seconds
WORKER_FLAGS = (
    "--OrchestratorApp.worker_slots=2",
    "--OrchestratorApp.lease_seconds=3",
    "--OrchestratorApp.heartbeat_seconds=1",
    "--OrchestratorApp.runner_preload=langgraph",
)
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {
            "cell_type": "code",
            "id": "work",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": ["import time\n", "time.sleep(0.3)\n", "print('done')"],
        }
    ],
}
SLEEPY = "def run(values):\n    import time\n    time.sleep(0.3)\n    return 1"
GRAPH = {
    "nodes": [
        {
            "id": "a",
            "type": "code",
            "config": {"source": "def run(values):\n    import time\n    time.sleep(0.3)\n    return 1"},
        },
        {"id": "b", "type": "code", "config": {"source": "def run(values):\n    return values['a'] + 1"}},
    ],
    "edges": [{"source": "a", "target": "b"}],
}


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    #: the processes it started (fork server, zygote, runs), as last seen
    children: list[psutil.Process] = field(default_factory=list)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_claiming(self, timeout: float = 240.0) -> None:
        """Until it is ready to start notebook runs (its zygote is up)."""
        deadline = time.monotonic() + timeout
        while "ready to start notebook runs" not in self.output():
            assert self.process.poll() is None, self.output()[-3000:]
            assert time.monotonic() < deadline, self.output()[-3000:]
            time.sleep(0.1)

    def kill(self) -> list[psutil.Process]:
        """kill -9, as a crash would; the processes it had started (they must die with it)."""
        with_children: list[psutil.Process] = psutil.Process(self.process.pid).children(recursive=True)
        self.process.kill()
        self.process.wait(30)
        return with_children

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Platform:
    root: Path
    server: PersonalServer
    workers: list[WorkerProcess] = field(default_factory=list)
    #: notebook and langgraph: their workflows' ids; org_id: their organization's
    workflows: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def start_worker(self) -> WorkerProcess:
        log = self.root / f"worker-{uuid.uuid4().hex[:6]}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "orchestrator",
                    "worker",
                    *WORKER_FLAGS,
                    f"--OrchestratorApp.run_dir={self.runs}",
                ],
                cwd=self.root,
                env=isolated_env(self.root, self.data_dir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(process, log)
        self.workers.append(worker)
        return worker

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(superuser_url(self.data_dir), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def submit(self, workflow_id: str, count: int) -> list[str]:
        ids = []
        for _ in range(count):
            reply = self.server.call("POST", f"/workflows/{workflow_id}/execute", {"inputs": {}, "max_attempts": 10})
            assert reply.status == 202, reply.body
            ids.append(reply.body["id"])
        return ids

    def unfinished(self, ids: list[str]) -> int:
        rows = self.sql(
            "SELECT count(*) FROM workflow_executions WHERE id = ANY(%s::uuid[]) AND finished_at IS NULL", (ids,)
        )
        return int(rows[0][0])

    def wait_holding(self, worker: WorkerProcess, timeout: float) -> None:
        """Until ``worker`` holds a running run (a worker's name is host:pid:suffix)."""
        query = "SELECT 1 FROM workflow_executions WHERE status = 'running' AND split_part(worker_id, ':', 2) = %s"
        deadline = time.monotonic() + timeout
        while not self.sql(query, (str(worker.process.pid),)):
            assert worker.process.poll() is None, worker.output()[-3000:]
            assert time.monotonic() < deadline, f"it never held a run: {worker.output()[-3000:]}"
            time.sleep(0.05)

    def wait_finished(self, ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.unfinished(ids):
            assert time.monotonic() < deadline, f"{self.unfinished(ids)} runs unfinished; {self.tail()}"
            time.sleep(0.5)

    def tail(self) -> str:
        return "\n".join(f"--- {w.log.name}\n{w.output()[-1500:]}" for w in self.workers[-2:])


def make_workflows(server: PersonalServer) -> dict[str, str]:
    """A notebook workflow and a LangGraph workflow; their organization may run 20 at once."""
    found = {}
    for framework, spec in (("notebook", {"notebook": {"content": NOTEBOOK}}), ("langgraph", GRAPH)):
        agent = server.call("POST", "/agents", {"name": f"chaos-{framework}", "framework": framework})
        assert agent.status == 201, agent.body
        workflow = server.call("POST", f"/agents/{agent.body['id']}/workflows", {"name": "chaos", "spec": spec})
        assert workflow.status == 201, workflow.body
        found[framework] = workflow.body["id"]
        found["org_id"] = agent.body["org_id"]
    return found


def ours(root: Path) -> list[psutil.Process]:
    """Living processes started for this platform: working in its folders, or run from its command lines."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if proc.info["pid"] == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        where = proc.info.get("cwd") or ""
        line = " ".join(proc.info.get("cmdline") or [])
        if where.startswith(str(root)) or str(root) in line:
            found.append(proc)
    return found


def gone(processes: list[psutil.Process], timeout: float = 15.0) -> list[psutil.Process]:
    """Those of ``processes`` still alive after ``timeout`` seconds (zombies count as dead)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in processes if _alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
