"""Engine fixtures: real workers (in the test's event loop, or as processes) on the module's database."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.engine.settings import WorkerSettings
from orchestrator_ext.engine.worker import Worker
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api, TestDatabase

FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def notebook(*sources: str, parameters: str | None = None) -> dict[str, Any]:
    """An nbformat 4 notebook of code cells (the first tagged ``parameters`` when given)."""
    cells = []
    if parameters is not None:
        cells.append(_cell(parameters, tags=["parameters"]))
    cells.extend(_cell(source) for source in sources)
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": cells,
    }


def _cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": uuid.uuid4().hex[:8],
        "metadata": {"tags": tags} if tags else {},
        "execution_count": None,
        "outputs": [],
        "source": source,
    }


def who(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def worker_settings() -> WorkerSettings:
    return WorkerSettings(slots=2, kernel_pool_size=1, runner_pool_size=0, lease_seconds=5, heartbeat_seconds=1)


@pytest.fixture
def workers(database: TestDatabase, worker_settings: WorkerSettings) -> Callable[..., Any]:
    """``async with workers() as w:`` runs a worker in the test's own event loop (where the server runs)."""

    @contextlib.asynccontextmanager
    async def running(**changes: Any) -> AsyncIterator[Worker]:
        settings = dataclasses.replace(worker_settings, **changes)
        worker = Worker(database.app_url, settings, KeyRing.parse(TEST_KEYS))
        await worker.start()
        try:
            yield worker
        finally:
            await worker.stop(grace=1.0)

    return running


@pytest.fixture
def notebook_workflow(api: Api, create_agent: Any, create_workflow: Any) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A notebook agent's workflow running ``nb``; returns the workflow."""

    async def make(user: str, nb: dict[str, Any], **spec: Any) -> dict[str, Any]:
        agent = await create_agent(user=user, framework="notebook")
        return await create_workflow(user, agent["id"], spec={"notebook": {"content": nb}, **spec})  # type: ignore[no-any-return]

    return make


@pytest.fixture
def run_to_end(api: Api) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Execute a workflow and wait for the execution's final state."""

    async def run(user: str, workflow_id: str, within: float = 60.0, **body: Any) -> dict[str, Any]:
        reply = await api("POST", "workflows", workflow_id, "execute", user=user, body={"inputs": {}, **body})
        assert reply.status == 202, reply.text
        return await wait_final(api, user, reply.json["id"], within)

    return run


async def wait_final(api: Api, user: str, execution_id: str, within: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        reply = await api("GET", "executions", execution_id, user=user)
        assert reply.status == 200, reply.text
        if reply.json["status"] in FINAL:
            return reply.json  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"still {reply.json['status']} after {within} s"
        await asyncio.sleep(0.05)


class WorkerProcess:
    """``jupyter orchestrator worker`` (or ``scheduler``) as its own process, on the test database."""

    def __init__(self, database: TestDatabase, tmp: Path, command: str = "worker", **traits: Any) -> None:
        self.log = tmp / f"{command}-{uuid.uuid4().hex[:6]}.log"
        env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": database.app_url,
            "ORCHESTRATOR_ENCRYPTION_KEYS": TEST_KEYS,
            "ORCHESTRATOR_DATA_DIR": str(tmp / "data"),
        }
        flags = [
            f"--{name}={value}" if "." in name else f"--OrchestratorApp.{name}={value}"
            for name, value in traits.items()
        ]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "orchestrator", command, *flags],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_started(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while " started" not in self.output():
            assert self.process.poll() is None, f"exited: {self.output()[-3000:]}"
            assert time.monotonic() < deadline, f"not started: {self.output()[-3000:]}"
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9, as a crash would (its kernels notice their parent is gone and exit)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def processes(database: TestDatabase, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(command: str = "worker", **traits: Any) -> WorkerProcess:
        process = WorkerProcess(database, tmp_path, command, **traits)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder any account can write (a run's kernel may run under an account of its own): runs leave marks
    there that a later attempt of the same run sees."""
    path = Path(tempfile.mkdtemp(prefix="orch-shared-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
