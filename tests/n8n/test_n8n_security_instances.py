"""Other organizations' n8n instances never run as the server's own account.

A server that is not root cannot give an organization's n8n an account of its
own: it refuses the instance, and the organization's run fails at once saying
why (not after its timeout, not as "Error in workflow"). The cap and the idle
stop: test_n8n_instance_cap.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from orchestrator_ext.db.engine import sqlalchemy_url
from orchestrator_ext.n8n import instances, integration
from orchestrator_ext.n8n.instances import OrgInstances
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api, TestDatabase
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import exported
from tests.n8n.test_n8n_runs import execute, n8n_workflow
from tests.n8n.test_n8n_spec import n8n_spec

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def engine(database: TestDatabase) -> Iterator[Engine]:
    made = create_engine(sqlalchemy_url(database.admin_url))
    yield made
    made.dispose()


def refusal(engine: Engine, org_id: uuid.UUID) -> str | None:
    """What the organization's n8n integration says about its refusal (None: not refused)."""
    with engine.connect() as conn:
        config = conn.execute(
            text("SELECT config FROM integrations WHERE org_id = :o AND kind = 'n8n'"), {"o": org_id}
        ).scalar()
    return None if config is None else config.get("refused")


async def test_a_server_not_run_as_root_refuses_other_organizations_an_instance_and_their_runs_say_why(
    api: Api,
    create_agent: Any,
    create_workflow: Any,
    workers: Any,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(instances, "as_root", lambda: False)  # the personal mode, under its owner's account
    owner, other = who(), who()
    await n8n_workflow(api, create_agent, create_workflow, owner, n8n_spec(exported("greet")))
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, other, n8n_spec(exported("greet")))
    owner_org, other_org = (integration.find_org(engine, "", user) for user in (owner, other))
    orgs = OrgInstances(tmp_path / "orgs", tmp_path, engine, KeyRing.parse(TEST_KEYS))
    try:
        await orgs.start_wanted(owner_org)
        assert orgs.running == {}
        assert orgs._starting == {}
        assert not (tmp_path / "orgs").exists()  # no folder, no process for it
        assert refusal(engine, owner_org) is None  # the owner's is the manager's, never refused here
        said = refusal(engine, other_org)
        assert said is not None
        assert "root" in said
        assert "Register an n8n instance of your own" in said
        listed = await api("GET", "integrations", user=other)
        assert [i["config"]["refused"] for i in listed.json["items"] if i["name"] == "n8n"] == [said]
        async with workers():
            run = await wait_final(api, other, await execute(api, other, workflow_id, {"name": "Ada"}), within=30)
        assert run["status"] == "failed", run
        assert run["error"]["kind"] == "configuration"
        assert "no n8n instance for this organization" in run["error"]["message"]
        assert said in run["error"]["message"]
    finally:
        await orgs.stop()
