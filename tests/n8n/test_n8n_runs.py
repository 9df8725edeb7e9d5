"""n8n workflows run as executions, end to end: REST → queue → worker → runner → a real n8n.

The workflows are n8n's own export format (tests/n8n/workflows): a Webhook
trigger, Code nodes, Respond to Webhook, Wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError
from sqlalchemy import create_engine

from orchestrator_ext.db.engine import sqlalchemy_url
from orchestrator_ext.n8n import integration, provision
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api, TestDatabase
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import N8n, exported
from tests.n8n.test_n8n_spec import n8n_spec


async def add_instance(api: Api, user: str, n8n: N8n, name: str = "n8n") -> None:
    body = {"name": name, "kind": "n8n", "config": {"base_url": n8n.base_url}, "secret": n8n.api_key}
    reply = await api("POST", "integrations", user=user, body=body)
    assert reply.status == 201, reply.text


async def n8n_workflow(api: Api, create_agent: Any, create_workflow: Any, user: str, spec: dict[str, Any]) -> str:
    agent = await create_agent(user=user, framework="n8n")
    workflow = await create_workflow(user, agent["id"], spec=spec)
    return str(workflow["id"])


async def execute(api: Api, user: str, workflow_id: str, inputs: dict[str, Any]) -> str:
    reply = await api("POST", "workflows", workflow_id, "execute", user=user, body={"inputs": inputs})
    assert reply.status == 202, reply.text
    return str(reply.json["id"])


async def test_webhook_code_respond_runs_with_inputs_and_answers(
    api: Api, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n
) -> None:
    user = who()
    await add_instance(api, user, n8n)
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
    async with workers():
        run = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Ada"}), within=90)
        assert run["status"] == "succeeded", run
        assert run["outputs"]["output"] == {"greeting": "Hello, Ada!", "letters": 3}
        steps = run["outputs"]["steps"]
        assert [step["node"] for step in steps] == ["Webhook", "Greet", "Respond to Webhook"]
        assert steps[0]["output"][0]["body"] == {"name": "Ada"}
        assert steps[1]["output"] == [{"greeting": "Hello, Ada!", "letters": 3}]
        assert run["outputs"]["framework"] == "n8n"
        # the second run finds the workflow on the instance as it is: same n8n workflow, not a copy
        again = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Grace"}), within=60)
        assert again["outputs"]["output"]["greeting"] == "Hello, Grace!"
        assert again["outputs"]["n8n_workflow_id"] == run["outputs"]["n8n_workflow_id"]
    events = await api("GET", "executions", run["id"], "events", user=user)
    assert events.status == 200, events.text


async def test_a_failing_code_node_fails_the_run_naming_the_node(
    api: Api, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n
) -> None:
    user = who()
    await add_instance(api, user, n8n)
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("fail")))
    async with workers():
        run = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Ada"}), within=90)
    assert run["status"] == "failed", run
    error = run["error"]
    assert error["kind"] == "code"
    assert error["node"] == "Check Name"
    assert "n8n node 'Check Name' failed" in error["message"]
    assert "no greeting for Ada" in error["message"]
    assert "Error in workflow" not in error["message"]


async def test_cancel_stops_the_n8n_execution(
    api: Api, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n
) -> None:
    user = who()
    await add_instance(api, user, n8n)
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("slow")))
    client = N8nApi(n8n.base_url, n8n.api_key)
    async with workers():
        execution_id = await execute(api, user, workflow_id, {"name": "Ada"})
        n8n_id = await running_in_n8n(client, "Slow", within=60)
        reply = await api("POST", "executions", execution_id, "cancel", user=user)
        assert reply.status in (200, 202), reply.text
        run = await wait_final(api, user, execution_id, within=30)
    assert run["status"] == "cancelled", run
    deadline = time.monotonic() + 20
    while (status := client.execution(n8n_id, include_data=False)["status"]) == "running":
        assert time.monotonic() < deadline, "n8n's execution still runs after the cancel"
        await asyncio.sleep(0.2)
    assert status == "canceled"


async def running_in_n8n(client: N8nApi, name: str, within: float) -> str:
    """The id of the running n8n execution of our workflow named ``name``."""
    deadline = time.monotonic() + within
    while True:
        ours = [w for w in client.workflows() if str(w.get("name", "")).startswith(f"{name} [orchestrator ")]
        for workflow in ours:
            found = client.executions(str(workflow["id"]), "running")
            if found:
                return str(found[0]["id"])
        assert time.monotonic() < deadline, "the run did not start in n8n"
        await asyncio.sleep(0.2)


async def test_serve_provisions_again_and_runs_use_the_saved_integration(
    api: Api, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n, database: TestDatabase
) -> None:
    """What `jupyter orchestrator n8n serve` does at each start: log in as the owner, replace the API key, save it
    encrypted as the organization's 'n8n' integration; a run decrypts it and runs."""
    user = who()
    assert (await api("GET", "users", "me", user=user)).status == 200  # the personal organization exists
    old_key, n8n.api_key = n8n.api_key, provision.provision(n8n.base_url, n8n.data_dir)
    assert n8n.api_key != old_key
    with pytest.raises(N8nApiError) as refused:
        N8nApi(n8n.base_url, old_key).workflows()
    assert refused.value.status == 401
    engine = create_engine(sqlalchemy_url(database.admin_url))
    try:
        org_id = integration.find_org(engine, "", user)
        first = integration.save(engine, KeyRing.parse(TEST_KEYS), org_id, n8n.base_url, n8n.api_key)
        # with the owner's login for the hub's editor proxy (serve --service-prefix): kept, never shown
        editor = ("/services/orchestrator/", "owner@example.org", "Owner-password-1")
        again = integration.save(engine, KeyRing.parse(TEST_KEYS), org_id, n8n.base_url, n8n.api_key, editor=editor)
        assert again == first
    finally:
        engine.dispose()
    listed = await api("GET", "integrations", user=user, params={"kind": "n8n"})
    assert [(i["name"], i["has_secret"]) for i in listed.json["items"]] == [("n8n", True)]
    assert "editor" not in listed.json["items"][0]["config"]
    assert editor[2] not in listed.text
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
    async with workers():
        run = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Lin"}), within=90)
    assert run["status"] == "succeeded", run
    assert run["outputs"]["output"]["greeting"] == "Hello, Lin!"
