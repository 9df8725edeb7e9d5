"""At most a few organizations' n8n instances at once, and idle ones stopped.

The cap and the idle stop are checked on instances whose n8n is a ``sleep``
process (starting real ones would cost ~1 GB and ~20 s each): the server's own
bookkeeping, its database and its integrations are the real ones. A module of
its own, so its database holds no other test's organizations: an organization
with an n8n agent and no instance yet is one that wants an instance, and would
take one of the two places.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from orchestrator_ext.n8n import instances, integration, process
from orchestrator_ext.n8n.instances import OrgInstances
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api
from tests.engine.conftest import who
from tests.n8n.conftest import exported
from tests.n8n.test_n8n_runs import execute, n8n_workflow
from tests.n8n.test_n8n_security_instances import engine as engine
from tests.n8n.test_n8n_security_instances import refusal
from tests.n8n.test_n8n_spec import n8n_spec

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sleeping_n8n(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Instances whose n8n is a ``sleep`` in its own process group, ready at once, provisioned with a dummy key;
    no account made (that and a real n8n: test_org_instances.py, test_n8n_account.py)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(install: Any, data_dir: Path, port: int = 0, **kwargs: Any) -> process.N8nProcess:
        sleeping = subprocess.Popen(["sleep", "300"], start_new_session=True)
        started.append(sleeping)
        return process.N8nProcess(sleeping, f"http://127.0.0.1:{port}", data_dir, data_dir / "n8n.log")

    def provisioned(self: OrgInstances, org_id: uuid.UUID, name: str, base_url: str, data_dir: Path) -> None:
        integration.save(self.engine, self.keyring, org_id, base_url, "dummy-key", managed=name)

    async def own_account(self: OrgInstances, org_id: uuid.UUID, name: str, data_dir: Path, db: Any) -> Any:
        return db, None

    monkeypatch.setattr(instances, "as_root", lambda: True)
    monkeypatch.setattr(instances.process, "start", start)
    monkeypatch.setattr(instances.process, "wait_ready", lambda started: 0.0)
    monkeypatch.setattr(OrgInstances, "_provision", provisioned)
    monkeypatch.setattr(OrgInstances, "_account", own_account)
    yield started
    for sleeping in started:
        sleeping.kill()
        sleeping.wait()


async def poll(orgs: OrgInstances) -> None:
    """One look of the server's (every second in production), and the starts it began."""
    await orgs.start_wanted(None)
    await asyncio.gather(*orgs._starting.values())


async def test_instances_beyond_the_cap_are_refused_while_all_are_busy_and_idle_ones_stop(
    api: Api,
    create_agent: Any,
    create_workflow: Any,
    engine: Engine,
    tmp_path: Path,
    sleeping_n8n: list[subprocess.Popen[bytes]],
) -> None:
    users = [who() for _ in range(3)]
    flows = {
        user: await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
        for user in users[:2]
    }
    a, b = (integration.find_org(engine, "", user) for user in users[:2])
    queued = {user: await execute(api, user, flows[user], {"name": "x"}) for user in users[:2]}  # no worker: they wait
    orgs = OrgInstances(tmp_path / "orgs", tmp_path, engine, KeyRing.parse(TEST_KEYS), max_instances=2)
    assert orgs.idle_seconds == 900.0  # the default: 15 minutes
    try:
        await poll(orgs)
        assert set(orgs.running) == {a, b}
        flows[users[2]] = await n8n_workflow(api, create_agent, create_workflow, users[2], n8n_spec(exported("greet")))
        c = integration.find_org(engine, "", users[2])
        await poll(orgs)  # a third organization wants one while both have runs: refused, saying why
        assert set(orgs.running) == {a, b}
        assert "at most 2 n8n instances at once (ORCHESTRATOR_N8N_MAX_INSTANCES)" in str(refusal(engine, c))
        cancelled = await api("POST", "executions", queued[users[0]], "cancel", user=users[0])
        assert cancelled.status == 200, cancelled.text
        await poll(orgs)  # a's instance has no run now: c's refusal ends (its next run takes that place)
        assert refusal(engine, c) is None
        first_a = orgs.running[a].process
        queued[users[2]] = await execute(api, users[2], flows[users[2]], {"name": "x"})
        await poll(orgs)
        assert set(orgs.running) == {b, c}  # a's, longest without a run, stopped for it
        assert first_a.poll() is not None
        for user in users[1:]:
            assert (await api("POST", "executions", queued[user], "cancel", user=user)).status == 200
        orgs.idle_seconds = 0.3
        await asyncio.sleep(0.4)
        stopping = [orgs.running[b].process, orgs.running[c].process]
        await poll(orgs)  # no run for longer than the idle time: both stopped
        assert orgs.running == {}
        assert all(sleeping.poll() is not None for sleeping in stopping)
        queued[users[1]] = await execute(api, users[1], flows[users[1]], {"name": "x"})
        await poll(orgs)  # b's next run starts b's again, on the same port (its integration stays right)
        assert set(orgs.running) == {b}
        assert integration.stored(engine, KeyRing.parse(TEST_KEYS), b)[0] == orgs.running[b].base_url  # type: ignore[index]
    finally:
        await orgs.stop()
        for user, run_id in queued.items():
            await api("POST", "executions", run_id, "cancel", user=user)


def test_the_hub_service_is_handed_the_cap_and_the_idle_time() -> None:
    """JupyterHub starts its ``orchestrator-n8n`` service with the service's ``environment`` only: hub_config/team.py
    adds the cap and the idle time where the hub has them set (.env.example), and the service's process reads them."""
    hub = {instances.MAX_ENV: "2", instances.IDLE_ENV: "60", "ORCHESTRATOR_OTHER": "x", "HOME": "/root"}
    handed = instances.service_environment(hub)
    assert handed == {instances.MAX_ENV: "2", instances.IDLE_ENV: "60"}
    assert instances.service_environment({instances.MAX_ENV: ""}) == {}  # unset: the service's default
    read = (
        "from orchestrator_ext.n8n.instances import IDLE_ENV, MAX_ENV, setting; "
        "print(int(setting(MAX_ENV, 4)), setting(IDLE_ENV, 900.0))"
    )
    environment = {"PATH": "/usr/bin:/bin", **handed}
    service = subprocess.run([sys.executable, "-c", read], env=environment, capture_output=True, text=True, timeout=60)
    assert service.returncode == 0, service.stderr
    assert service.stdout.split() == ["2", "60.0"]
