"""A real n8n for the session: installed once per machine (cached in the Jupyter data dir), started once.

``.ci/run`` runs ``jupyter orchestrator n8n install`` before the tests, so the
install here only checks the cache; on a machine without it, the first test
waits for the install (~6 min on two cores). The instance runs on the
loopback with its own data folder, owner and API key, made as
``jupyter orchestrator n8n serve`` makes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.engine.settings import WorkerSettings
from orchestrator_ext.engine.worker import Worker
from orchestrator_ext.n8n import account, process, provision
from orchestrator_ext.n8n.install import Installation, install
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, TestDatabase

WORKFLOWS = Path(__file__).parent / "workflows"


def exported(name: str) -> dict[str, Any]:
    """A workflow as n8n's "Download" writes it."""
    return json.loads((WORKFLOWS / f"{name}.json").read_text())  # type: ignore[no-any-return]


@dataclasses.dataclass
class N8n:
    """The session's n8n (``api_key`` changes when a test provisions it again)."""

    base_url: str
    api_key: str
    data_dir: Path
    running: process.N8nProcess


@pytest.fixture(scope="session")
def n8n_installation() -> Installation:
    return install(say=lambda line: None)


@pytest.fixture(scope="session")
def n8n(n8n_installation: Installation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[N8n]:
    """One n8n for the whole session (it takes 9-25 s to start)."""
    data_dir = tmp_path_factory.mktemp("n8n-data")
    running = process.start(n8n_installation, data_dir)
    try:
        process.wait_ready(running)
        key = provision.provision(running.base_url, data_dir)
        yield N8n(running.base_url, key, data_dir, running)
    finally:
        process.stop(running)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A folder n8n's accounts may pass through (the server, run as root, gives each other organization's instance
    an account of its own: its data folder must be reachable; pytest's own are 0700). Removed after, with the
    n8n accounts made for folders in it."""
    path = Path(tempfile.mkdtemp(prefix="orch-n8n-"))
    path.chmod(0o755)
    yield path
    if os.geteuid() == 0:
        for user in pwd.getpwall():
            if user.pw_name.startswith(account.PREFIX) and user.pw_dir.startswith(f"{path}/"):
                subprocess.run(["userdel", user.pw_name], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workers(database: TestDatabase) -> Callable[..., Any]:
    """``async with workers() as w:``: a worker in the test's event loop, its runs in runner processes."""

    @contextlib.asynccontextmanager
    async def running(**changes: Any) -> AsyncIterator[Worker]:
        settings = WorkerSettings(slots=2, kernel_pool_size=0, runner_pool_size=1, lease_seconds=5, heartbeat_seconds=1)
        worker = Worker(database.app_url, dataclasses.replace(settings, **changes), KeyRing.parse(TEST_KEYS))
        await worker.start()
        try:
            yield worker
        finally:
            await worker.stop(grace=1.0)

    return running
