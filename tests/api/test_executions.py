"""``/workflows/{id}/execute``, ``/executions`` and ``/executions/{id}``.

No engine runs executions yet: every execution here stays ``queued``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import pytest

from tests.conftest import GRAPH_SPEC, NOTEBOOK_SPEC, Api


def who(prefix: str = "u") -> str:
    """A user of one test only (the module shares its database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def graph_workflow(create_agent: Any, create_workflow: Any, user: str) -> dict[str, Any]:
    agent = await create_agent(user=user)
    return await create_workflow(user, agent["id"])  # type: ignore[no-any-return]


async def test_execute_queues_an_execution(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"q": "hi"}})
    assert reply.status == 202, reply.text
    execution = reply.json
    assert execution["status"] == "queued"
    assert execution["trigger"] == "api"
    assert execution["attempt"] == 0
    assert execution["version"] == 1
    assert execution["inputs"] == {"q": "hi"}
    assert (execution["outputs"], execution["error"], execution["started_at"], execution["finished_at"]) == (
        None,
        None,
        None,
        None,
    )
    assert (execution["workflow_id"], execution["agent_id"]) == (workflow["id"], workflow["agent_id"])
    assert execution["org_id"] == workflow["org_id"]
    assert reply.headers["Location"].endswith(f"/orchestrator/api/v1/executions/{execution['id']}")
    got = await api("GET", "executions", execution["id"], user=user)
    assert got.status == 200
    assert got.json == execution
    empty = await api("POST", "workflows", workflow["id"], "execute", user=user)
    assert empty.status == 202, empty.text
    assert empty.json["inputs"] == {}


async def test_execute_a_chosen_version(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    assert (await api("PUT", "workflows", workflow["id"], user=user, body={"spec": GRAPH_SPEC})).status == 200
    current = await api("POST", "workflows", workflow["id"], "execute", user=user, body={})
    assert current.json["version"] == 2
    older = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"version": 1})
    assert older.status == 202
    assert older.json["version"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": 7}, "version"),
        ({"version": 0}, "version"),
        ({"version": 2**40}, "version"),
        ({"version": "1"}, "version"),
        ({"inputs": [1, 2]}, "inputs"),
        ({"inputs": "x"}, "inputs"),
        ({"inputs": {}, "priority": 1}, "priority"),
    ],
)
async def test_execute_rejects_bad_bodies(
    api: Api, create_agent: Any, create_workflow: Any, body: dict[str, Any], field: str
) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    reply = await api("POST", "workflows", workflow["id"], "execute", user=user, raw_body=json.dumps(body))
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_notebook_inputs_must_be_parameters(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    agent = await create_agent(user=user, framework="notebook")
    workflow = await create_workflow(user, agent["id"], spec=NOTEBOOK_SPEC)
    good = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"x": 3}})
    assert good.status == 202, good.text
    bad = await api(
        "POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"x": 3, "y": 1, "zz": 2}}
    )
    assert bad.status == 422
    assert [e["field"] for e in bad.json["errors"]] == ["inputs.y", "inputs.zz"]
    assert "x, name" in bad.json["errors"][0]["message"]


async def test_idempotency_key(api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"inputs": {"b": 2, "a": 1}}
    first = await api("POST", "workflows", workflow["id"], "execute", user=user, body=body, headers=key)
    assert first.status == 202, first.text
    again = await api(
        "POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"a": 1, "b": 2}}, headers=key
    )
    assert again.status == 200, again.text
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = await api(
        "POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"a": 9}}, headers=key
    )
    assert changed.status == 409
    assert [e["field"] for e in changed.json["errors"]] == ["Idempotency-Key"]
    [(stored,)] = admin_sql("SELECT request_hash FROM workflow_executions WHERE id = %s", (first.json["id"],))
    canonical = json.dumps(
        {"inputs": {"a": 1, "b": 2}, "version": None, "workflow_id": workflow["id"]}, separators=(",", ":")
    )
    assert stored == hashlib.sha256(canonical.encode()).hexdigest()
    # without a key, every request is a new execution
    plain = [await api("POST", "workflows", workflow["id"], "execute", user=user, body=body) for _ in range(2)]
    assert plain[0].json["id"] != plain[1].json["id"]


async def test_concurrent_retries_make_one_execution(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any
) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    key = f"race-{uuid.uuid4()}"
    replies = await asyncio.gather(
        *(
            api(
                "POST",
                "workflows",
                workflow["id"],
                "execute",
                user=user,
                body={"inputs": {"n": 1}},
                headers={"Idempotency-Key": key},
            )
            for _ in range(6)
        )
    )
    assert sorted(r.status for r in replies) == [200] * 5 + [202], [r.text for r in replies]
    assert len({r.json["id"] for r in replies}) == 1
    [(count,)] = admin_sql("SELECT count(*) FROM workflow_executions WHERE idempotency_key = %s", (key,))
    assert count == 1
    # one audit row, for the request that inserted; the replays and the requests that lost the race write none
    audited = admin_sql("SELECT action FROM audit_events WHERE resource_id = %s", (replies[0].json["id"],))
    assert audited == [("execution.create",)]


async def test_start_answer_and_audit_row(api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any) -> None:
    """The run as POST answers it is the run as GET reads it (nested and non-ASCII inputs kept exactly),
    and its audit row names the caller and the version, written with it."""
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    inputs = {"text": "caf\u00e9 \u2603 'quoted' %s", "nested": {"list": [1, 2.5, None, True]}, "n": -3}
    started = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": inputs})
    assert started.status == 202, started.text
    read = await api("GET", "executions", started.json["id"], user=user)
    assert read.json == started.json
    assert started.json["inputs"] == inputs
    [(action, details, actor, org_id)] = admin_sql(
        "SELECT a.action, a.details, a.actor_user_id, a.org_id FROM audit_events a WHERE a.resource_id = %s",
        (started.json["id"],),
    )
    [(created_by,)] = admin_sql("SELECT created_by FROM workflow_executions WHERE id = %s", (started.json["id"],))
    assert (action, details, actor, str(org_id)) == ("execution.create", {"version": 1}, created_by, workflow["org_id"])


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
async def test_invalid_idempotency_keys(api: Api, create_agent: Any, create_workflow: Any, key: str) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    reply = await api(
        "POST", "workflows", workflow["id"], "execute", user=user, body={}, headers={"Idempotency-Key": key}
    )
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == ["Idempotency-Key"]


async def test_list_filters_and_pages(api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any) -> None:
    user = who()
    one = await graph_workflow(create_agent, create_workflow, user)
    two = await graph_workflow(create_agent, create_workflow, user)
    made = []
    for workflow in (one, two, one, two, one):
        reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={})
        made.append(reply.json)
    newest_first = [e["id"] for e in reversed(made)]

    pages: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await api("GET", "executions", user=user, params=params)
        assert page.status == 200, page.text
        pages.extend(e["id"] for e in page.json["items"])
        if page.json["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page.json["next_cursor"]}
    assert pages == newest_first

    by_workflow = await api("GET", "executions", user=user, params={"workflow_id": one["id"]})
    assert [e["id"] for e in by_workflow.json["items"]] == [made[4]["id"], made[2]["id"], made[0]["id"]]
    by_agent = await api("GET", "executions", user=user, params={"agent_id": two["agent_id"]})
    assert [e["id"] for e in by_agent.json["items"]] == [made[3]["id"], made[1]["id"]]
    by_org = await api("GET", "executions", user=user, params={"org_id": one["org_id"], "status": "queued"})
    assert [e["id"] for e in by_org.json["items"]] == newest_first
    admin_sql("UPDATE workflow_executions SET status = 'failed' WHERE id = %s", (made[1]["id"],))
    failed = await api("GET", "executions", user=user, params={"status": "failed"})
    assert [e["id"] for e in failed.json["items"]] == [made[1]["id"]]
    assert (await api("GET", "executions", user=user, params={"status": "running"})).json["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"workflow_id": "nope"}, "workflow_id"),
        ({"limit": 0}, "limit"),
        ({"cursor": "###"}, "cursor"),
    ],
)
async def test_list_rejects_bad_query(api: Api, params: dict[str, Any], field: str) -> None:
    reply = await api("GET", "executions", user=who(), params=params)
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_executions_outlive_their_agent(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    execution = (await api("POST", "workflows", workflow["id"], "execute", user=user, body={})).json
    assert (await api("DELETE", "agents", workflow["agent_id"], user=user)).status == 204
    got = await api("GET", "executions", execution["id"], user=user)
    assert got.status == 200
    assert got.json == execution
    listed = await api("GET", "executions", user=user, params={"workflow_id": workflow["id"]})
    assert [e["id"] for e in listed.json["items"]] == [execution["id"]]
    late = await api("POST", "workflows", workflow["id"], "execute", user=user, body={})
    assert late.status == 404


async def test_other_tenant_sees_404(api: Api, create_agent: Any, create_workflow: Any) -> None:
    owner, intruder = who("owner"), who("intruder")
    workflow = await graph_workflow(create_agent, create_workflow, owner)
    execution = (await api("POST", "workflows", workflow["id"], "execute", user=owner, body={})).json
    assert (await api("GET", "executions", execution["id"], user=intruder)).status == 404
    assert (await api("POST", "workflows", workflow["id"], "execute", user=intruder, body={})).status == 404
    assert (await api("GET", "executions", user=intruder)).json["items"] == []
    foreign_org = await api("GET", "executions", user=intruder, params={"org_id": workflow["org_id"]})
    assert foreign_org.status == 404
    assert (await api("GET", "executions", "12345", user=owner)).status == 404
    assert (await api("POST", "workflows", "12345", "execute", user=owner, body={})).status == 404


async def test_viewer_reads_but_cannot_execute(
    api: Api, create_org: Any, add_member: Any, create_agent: Any, create_workflow: Any
) -> None:
    owner, viewer = who("owner"), who("viewer")
    org = await create_org(user=owner)
    await add_member(owner, org["id"], viewer, "viewer")
    agent = await create_agent(user=owner, org_id=org["id"])
    workflow = await create_workflow(owner, agent["id"])
    execution = (await api("POST", "workflows", workflow["id"], "execute", user=owner, body={})).json
    assert (await api("GET", "executions", execution["id"], user=viewer)).status == 200
    listed = await api("GET", "executions", user=viewer, params={"org_id": org["id"]})
    assert [e["id"] for e in listed.json["items"]] == [execution["id"]]
    refused = await api("POST", "workflows", workflow["id"], "execute", user=viewer, body={})
    assert refused.status == 403, refused.text


async def test_execution_keeps_the_request_correlation_id(api: Api, create_agent: Any, create_workflow: Any) -> None:
    agent = await create_agent(user="corr")
    workflow = await create_workflow("corr", agent["id"])
    run = await api(
        "POST", "workflows", workflow["id"], "execute", user="corr", body={}, headers={"X-Request-ID": "trace-42"}
    )
    assert run.status == 202, run.text
    assert run.json["correlation_id"] == "trace-42"
    listed = await api("GET", "executions", user="corr", params={"workflow_id": workflow["id"]})
    assert listed.json["items"][0]["correlation_id"] == "trace-42"
