"""An organization's first n8n run, claimed while its instance is still starting, waits for it and succeeds.

Before, the run was handed no ``n8n`` integration (it is saved once the
instance is ready, 9-35 s after it begins) and failed at once with "this run
received no n8n integration". Now the server reserves the integration (its
URL, no key) before the instance starts and the worker waits for the key
(orchestrator_ext/n8n/pending.py), within the run's timeout and its cancel.
"""

from __future__ import annotations

import asyncio
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from orchestrator_ext.db.engine import sqlalchemy_url
from orchestrator_ext.db.system import system_transaction_sync
from orchestrator_ext.n8n import instances, integration, pending
from orchestrator_ext.n8n.install import Installation
from tests.conftest import Api, TestDatabase
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import exported
from tests.n8n.test_n8n_runs import execute, n8n_workflow
from tests.n8n.test_n8n_spec import n8n_spec
from tests.n8n.test_org_instances import manager_for, wait_for

pytestmark = pytest.mark.timeout(300)

RESERVED = {"n8n": {"kind": "n8n", "config": {"base_url": "http://127.0.0.1:1", "managed": "x"}, "secret": None}}
READY = {"n8n": {"kind": "n8n", "config": {"base_url": "http://127.0.0.1:1", "managed": "x"}, "secret": "key"}}


def active_run(timeout: float | None = None) -> Any:
    return types.SimpleNamespace(cancelled=asyncio.Event(), run=types.SimpleNamespace(timeout_seconds=timeout))


def reads(*answers: dict[str, Any]) -> Any:
    """``read(active)`` giving each answer in turn, then the last one again."""
    given = list(answers)

    async def read(active: Any) -> dict[str, Any]:
        return given.pop(0) if len(given) > 1 else given[0]

    return read


async def test_a_reserved_integration_is_waited_for_until_its_key_and_no_longer() -> None:
    assert await pending.when_ready(READY, reads(READY), active_run()) is READY  # nothing to wait for
    assert await pending.when_ready({}, reads({}, RESERVED, RESERVED, READY), active_run()) == READY
    started = time.monotonic()
    assert await pending.when_ready(RESERVED, reads(RESERVED), active_run(timeout=1)) == RESERVED  # its timeout
    assert 0.9 < time.monotonic() - started < 5
    cancelled = active_run()
    cancelled.cancelled.set()
    assert await pending.when_ready(RESERVED, reads(READY), cancelled) == RESERVED  # a cancel ends the wait
    unmanaged = {"n8n": {"kind": "n8n", "config": {"base_url": "https://n8n.example.org"}, "secret": None}}
    assert await pending.when_ready(unmanaged, reads(READY), active_run()) is unmanaged  # not ours to start


async def test_the_first_run_claimed_while_its_instance_starts_waits_and_succeeds(
    api: Api,
    create_agent: Any,
    create_workflow: Any,
    workers: Any,
    database: TestDatabase,
    n8n_installation: Installation,
    open_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_N8N_HOME", str(n8n_installation.home))
    user = who()
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
    engine = create_engine(sqlalchemy_url(database.admin_url))
    org_id = integration.find_org(engine, "", user)
    # the instance's start held at its last step (its owner and key) until the run was claimed: the race, every time
    claimed = threading.Event()
    provision = instances.provision.provision
    monkeypatch.setattr(instances.provision, "provision", lambda *a: claimed.wait(120) and provision(*a))
    manager = manager_for(database, open_dir / "n8n")
    try:

        def reserved() -> bool:
            with system_transaction_sync(engine) as conn:
                query = "SELECT secret_encrypted IS NULL FROM integrations WHERE org_id = :o AND name = 'n8n'"
                return bool(conn.execute(text(query), {"o": org_id}).scalar())

        await wait_for("the reserved n8n integration", reserved, 120)
        async with workers():
            execution = await execute(api, user, workflow_id, {"name": "Ada"})
            await wait_for("the run claimed", lambda: _status(engine, execution) == "running", 60)
            assert reserved()  # claimed with the integration still keyless
            claimed.set()
            run = await wait_final(api, user, execution, within=180)
        assert run["status"] == "succeeded", run.get("error")
        assert run["outputs"]["output"]["greeting"] == "Hello, Ada!"
    finally:
        claimed.set()
        await manager.stop()
        engine.dispose()


def _status(engine: Any, execution_id: str) -> str:
    with system_transaction_sync(engine) as conn:
        query = "SELECT status FROM workflow_executions WHERE id = :i"
        return str(conn.execute(text(query), {"i": execution_id}).scalar())
