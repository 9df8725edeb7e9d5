"""``POST /workflows/{id}/sync-from-n8n``: a workflow edited on the instance comes back as our next version."""

from __future__ import annotations

from typing import Any

from orchestrator_runtimes.n8n.api import N8nApi

from tests.conftest import Api
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import N8n, exported
from tests.n8n.test_n8n_runs import add_instance, execute, n8n_workflow
from tests.n8n.test_n8n_spec import n8n_spec

#: the edit a person makes in n8n's editor: the Code node answers differently
EDITED_CODE = "const body = $input.first().json.body;\nreturn [{ json: { greeting: `Hi there, ${body.name}.` } }];"


def edit_on_the_instance(n8n: N8n, workflow_id: str) -> None:
    """What saving in n8n's editor does to our copy, through n8n's public REST API."""
    client = N8nApi(n8n.base_url, n8n.api_key)
    copy = next(w for w in client.workflows() if w["name"] == f"Greet [orchestrator {workflow_id}]")
    saved = client.workflow(str(copy["id"]))
    for node in saved["nodes"]:
        if node["name"] == "Greet":
            node["parameters"]["jsCode"] = EDITED_CODE
    body = {key: saved[key] for key in ("name", "nodes", "connections")}
    client.update_workflow(str(copy["id"]), {**body, "settings": {"executionOrder": "v1"}})


async def test_a_workflow_edited_on_the_instance_syncs_as_a_new_version_and_runs(
    api: Api, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n
) -> None:
    user = who()
    await add_instance(api, user, n8n)
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
    nothing_yet = await api("POST", "workflows", workflow_id, "sync-from-n8n", user=user)
    assert nothing_yet.status == 409, nothing_yet.text
    assert nothing_yet.headers["Content-Type"].startswith("application/problem+json")
    assert "run it once" in nothing_yet.json["detail"]
    async with workers():
        first = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Ada"}), within=90)
        assert first["status"] == "succeeded", first
        unchanged = await api("POST", "workflows", workflow_id, "sync-from-n8n", user=user)
        assert unchanged.status == 200, unchanged.text
        assert unchanged.json["version"] == 1  # the instance's copy is the workflow as it is: no new version
        edit_on_the_instance(n8n, workflow_id)
        synced = await api("POST", "workflows", workflow_id, "sync-from-n8n", user=user)
        assert synced.status == 200, synced.text
        assert synced.json["version"] == 2
        assert synced.headers["Etag"] == '"2"'
        pulled = synced.json["spec"]["nodes"][0]["config"]["workflow"]
        nodes = {node["name"]: node for node in pulled["nodes"]}
        assert nodes["Greet"]["parameters"]["jsCode"] == EDITED_CODE
        # as the person sees it in the editor: the webhook's own path, no header of ours
        assert nodes["Webhook"]["parameters"]["path"] == "orchestrator-greet"
        assert nodes["Respond to Webhook"]["parameters"]["options"] == {}
        assert pulled["name"] == "Greet"
        versions = await api("GET", "workflows", workflow_id, "versions", user=user)
        assert [v["comment"] for v in versions.json["items"]][:1] == ["synced from n8n"]
        again = await wait_final(api, user, await execute(api, user, workflow_id, {"name": "Ada"}), within=90)
    assert again["status"] == "succeeded", again
    assert again["outputs"]["output"] == {"greeting": "Hi there, Ada."}


async def test_other_tenants_get_404_and_other_frameworks_409(
    api: Api, create_agent: Any, create_workflow: Any, n8n: N8n
) -> None:
    user, stranger = who(), who()
    await add_instance(api, user, n8n)
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(exported("greet")))
    hidden = await api("POST", "workflows", workflow_id, "sync-from-n8n", user=stranger)
    assert hidden.status == 404, hidden.text
    missing = await api("POST", "workflows", "not-a-uuid", "sync-from-n8n", user=user)
    assert missing.status == 404
    graph = await create_workflow(user, (await create_agent(user=user))["id"])
    other = await api("POST", "workflows", graph["id"], "sync-from-n8n", user=user)
    assert other.status == 409, other.text
    assert other.headers["Content-Type"].startswith("application/problem+json")
    assert "not n8n" in other.json["detail"]
    anonymous = await api("POST", "workflows", workflow_id, "sync-from-n8n", user=None)
    assert anonymous.status in (401, 403)
