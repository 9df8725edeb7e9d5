"""Other organizations' n8n instances: started by the server when wanted, stopped with it.

An organization (not the owner's) makes an n8n agent: its instance starts, its
``n8n`` integration appears, a run succeeds on it. The platform stops: the
instance stops. A run of that organization is queued while its instance is
not running: the instance starts again (same folder, port and key), and the
run, which waits for it, succeeds.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import create_engine

from orchestrator_ext.db.engine import sqlalchemy_url
from orchestrator_ext.n8n import integration
from orchestrator_ext.n8n.database import name_for
from orchestrator_ext.n8n.install import Installation
from orchestrator_ext.n8n.manager import N8nManager
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api, TestDatabase
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import exported
from tests.n8n.test_n8n_runs import execute, n8n_workflow
from tests.n8n.test_n8n_spec import n8n_spec

pytestmark = pytest.mark.timeout(300)


def manager_for(database: TestDatabase, data_dir: Path) -> N8nManager:
    """The server's n8n manager, its owner someone with no organization here (only other organizations' run)."""
    manager = N8nManager(data_dir, database.admin_url, KeyRing.parse(TEST_KEYS), f"nobody-{uuid.uuid4().hex[:6]}")
    manager.poll = 0.2
    manager.start("on-demand")
    return manager


async def wait_for(what: str, check: Any, within: float) -> Any:
    deadline = time.monotonic() + within
    while not (found := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, f"{what} not within {within:g} s"
        await asyncio.sleep(0.25)
    return found


async def test_an_organizations_n8n_starts_on_demand_and_stops_with_the_platform(
    api: Api,
    create_agent: Any,
    create_workflow: Any,
    workers: Any,
    database: TestDatabase,
    n8n_installation: Installation,
    open_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_N8N_HOME", str(n8n_installation.home))  # the session's Jupyter data dir is not
    user = who()
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
    engine = create_engine(sqlalchemy_url(database.admin_url))
    keys = KeyRing.parse(TEST_KEYS)
    org_id = integration.find_org(engine, "", user)
    manager = manager_for(database, open_dir / "n8n")
    try:
        # an n8n agent and no instance yet: it starts at once, its integration saved before any run
        saved = await wait_for(
            "the organization's n8n integration", lambda: integration.stored(engine, keys, org_id), 180
        )
        assert manager.running is None  # not the owner's
        first = manager.orgs.running[org_id]
        assert saved[0] == first.base_url
        assert first.data_dir.parent == open_dir / "n8n" / "orgs"
        if os.geteuid() == 0:  # under an account of its own, owning its folder: not the server's
            owner = first.data_dir.stat().st_uid
            assert psutil.Process(first.process.pid).uids().real == owner != 0
        async with workers():
            run = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Ada"}), within=120)
        assert run["status"] == "succeeded", run.get("error")
        assert run["outputs"]["output"]["greeting"] == "Hello, Ada!"
    finally:
        await manager.stop()
    assert first.process.poll() is not None  # stopped with the platform
    queued = await execute(api, user, workflow_id, {"name": "Grace"})  # its instance is not running now
    again = manager_for(database, open_dir / "n8n")
    try:
        async with workers():
            run = await wait_final(api, user, queued, within=180)
        assert run["status"] == "succeeded", run.get("error")
        assert run["outputs"]["output"]["greeting"] == "Hello, Grace!"
        assert again.orgs.running[org_id].base_url == first.base_url  # its port kept: the integration stays right
        listed = await api("GET", "integrations", user=user)
        managed = [i["config"].get("managed") for i in listed.json["items"] if i["name"] == "n8n"]
        assert managed == [name_for(str(org_id))]  # its own database and role, by the organization's name
        second = again.orgs.running[org_id]
    finally:
        await again.stop()
        engine.dispose()
    assert second.process.poll() is not None
