"""Framework runs end to end: REST → queue → worker → runner process → LangGraph on the real local model.

The model is the real SmolLM2-135M-Instruct server (``local_model``); the
assertions are on structure (steps, routing, tokens, states), never on wording.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.api.test_metrics import sample, scrape
from tests.conftest import Api, PgCluster
from tests.engine.conftest import FINAL, wait_final, who
from tests.personal_server import start_personal_server, wait_postgres_stopped

APPROVAL_SPEC: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "draft", "type": "model", "config": {"prompt": "Write one short line about {topic}.", "max_tokens": 24}},
        {"id": "check", "type": "router"},
        {"id": "approve", "type": "human_approval", "config": {"question": "Publish this? {draft}"}},
        {"id": "publish", "type": "code", "config": {"source": "def run(values):\n    return 'published'"}},
        {"id": "reject", "type": "code", "config": {"source": "def run(values):\n    return 'rejected'"}},
        {"id": "too_short", "type": "code", "config": {"source": "def run(values):\n    return 'empty draft'"}},
        {"id": "end", "type": "output"},
    ],
    "edges": [
        {"source": "start", "target": "draft"},
        {"source": "draft", "target": "check"},
        {"source": "check", "target": "approve", "condition": "len(draft) > 0"},
        {"source": "check", "target": "too_short"},
        {"source": "approve", "target": "publish", "condition": "approve.approved == true"},
        {"source": "approve", "target": "reject"},
        {"source": "publish", "target": "end"},
        {"source": "reject", "target": "end"},
        {"source": "too_short", "target": "end"},
    ],
}


@pytest.fixture(scope="module")
def runs_db(pg_cluster: PgCluster) -> str:
    """The runs' database (checkpoints), as the embedded server provisions it: pgvector included."""
    name = pg_cluster.new_database()
    with psycopg.connect(pg_cluster.admin_url(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return pg_cluster.admin_url(name)


async def add_model(api: Api, user: str, model: dict[str, Any], name: str = "local-model") -> None:
    body = {"name": name, "kind": "openai-compatible", "config": model["config"]}
    reply = await api("POST", "integrations", user=user, body=body)
    assert reply.status == 201, reply.text


async def langgraph_workflow(api: Api, create_agent: Any, create_workflow: Any, user: str, spec: Any) -> str:
    agent = await create_agent(user=user, framework="langgraph")
    workflow = await create_workflow(user, agent["id"], spec=spec)
    return str(workflow["id"])


async def wait_status(api: Api, user: str, execution_id: str, wanted: set[str], within: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        reply = await api("GET", "executions", execution_id, user=user)
        if reply.json["status"] in wanted:
            return reply.json  # type: ignore[no-any-return]
        assert reply.json["status"] not in FINAL - wanted, reply.json
        assert time.monotonic() < deadline, f"still {reply.json['status']}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(("approved", "taken"), [(True, "publish"), (False, "reject")])
async def test_langgraph_waits_for_a_human_and_resumes_from_its_checkpoint_on_another_worker(
    api: Api,
    workers: Any,
    create_agent: Any,
    create_workflow: Any,
    local_model: dict[str, Any],
    runs_db: str,
    approved: bool,
    taken: str,
    jp_fetch: Any,
) -> None:
    user = who()
    await add_model(api, user, local_model)
    workflow_id = await langgraph_workflow(api, create_agent, create_workflow, user, APPROVAL_SPEC)

    async with workers(state_url=runs_db, runner_pool_size=1):
        reply = await api("POST", "workflows", workflow_id, "execute", user=user, body={"inputs": {"topic": "tea"}})
        assert reply.status == 202, reply.text
        execution_id = reply.json["id"]
        waiting = await wait_status(api, user, execution_id, {"waiting"})
    # every worker is gone: only the checkpoint in PostgreSQL remembers where the run stopped
    assert waiting["waiting_for"]["node"] == "approve"
    assert waiting["waiting_for"]["question"].startswith("Publish this?")
    assert [s["node"] for s in waiting["outputs"]["steps"]] == ["start", "draft", "check"]
    draft = waiting["outputs"]["steps"][1]
    assert draft["model_calls"] == 1
    assert draft["prompt_tokens"] > 0
    assert draft["completion_tokens"] > 0

    reply = await api("POST", "executions", execution_id, "resume", user=user, body={"answer": {"approved": approved}})
    assert reply.status == 202, reply.text
    assert reply.json["status"] == "queued"
    again = await api("POST", "executions", execution_id, "resume", user=user, body={"answer": {"approved": True}})
    assert again.status == 409  # already answered: nothing changes

    async with workers(state_url=runs_db, runner_pool_size=1):
        run = await wait_final(api, user, execution_id, within=90)
    assert run["status"] == "succeeded", run
    nodes = [step["node"] for step in run["outputs"]["steps"]]
    assert nodes == ["start", "draft", "check", "approve", taken, "end"]
    assert run["outputs"]["output"] == ("published" if approved else "rejected")
    assert run["outputs"]["values"]["approve"] == {"approved": approved}
    # the draft was not written twice: the resumed attempt went on from the checkpoint
    assert run["outputs"]["usage"]["model_calls"] == 1
    assert run["outputs"]["usage"]["total_tokens"] == draft["total_tokens"]
    assert run["attempt"] == 2

    events = await api("GET", "executions", execution_id, "events", user=user)
    statuses = [line for line in events.text.splitlines() if line.startswith("data:") and '"status"' in line]
    assert any('"waiting"' in line for line in statuses)

    # the framework's figures reach Prometheus
    text = (await scrape(jp_fetch, user)).body.decode()
    assert sample(text, "orchestrator_runtime_model_calls_total", framework="langgraph") >= 1
    assert sample(text, "orchestrator_runtime_tokens_total", framework="langgraph", kind="prompt") > 0
    assert sample(text, "orchestrator_runtime_steps_total", framework="langgraph") >= 6


async def test_a_waiting_run_can_be_cancelled_and_only_a_waiting_run_resumed(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, local_model: dict[str, Any], runs_db: str
) -> None:
    user = who()
    await add_model(api, user, local_model)
    workflow_id = await langgraph_workflow(api, create_agent, create_workflow, user, APPROVAL_SPEC)
    async with workers(state_url=runs_db, runner_pool_size=1):
        reply = await api("POST", "workflows", workflow_id, "execute", user=user, body={"inputs": {"topic": "x"}})
        execution_id = reply.json["id"]
        await wait_status(api, user, execution_id, {"waiting"})
    # an answer PostgreSQL cannot store is refused, and the run keeps waiting
    nul = await api("POST", "executions", execution_id, "resume", user=user, body={"answer": {"note": "a\u0000b"}})
    assert nul.status == 422, nul.text
    assert nul.json["errors"][0]["field"].startswith("answer")
    assert (await api("GET", "executions", execution_id, user=user)).json["status"] == "waiting"
    cancelled = await api("POST", "executions", execution_id, "cancel", user=user)
    assert cancelled.status == 200
    assert cancelled.json["status"] == "cancelled"
    assert "waited" in cancelled.json["error"]["message"]
    refused = await api("POST", "executions", execution_id, "resume", user=user, body={"answer": True})
    assert refused.status == 409
    assert refused.json["errors"][0]["field"] == "status"
    other = await api("POST", "executions", execution_id, "resume", user=who(), body={"answer": True})
    assert other.status == 404  # another tenant's run is invisible


async def test_errors_of_framework_runs_have_their_kinds(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, run_to_end: Any, runs_db: str
) -> None:
    user = who()
    simple = {
        "nodes": [{"id": "ask", "type": "model", "config": {"prompt": "hi"}}],
        "edges": [],
    }
    # no model integration at all
    no_model = await langgraph_workflow(api, create_agent, create_workflow, user, simple)
    # a model server nobody listens on
    reply = await api(
        "POST",
        "integrations",
        user=user,
        body={
            "name": "nowhere",
            "kind": "openai-compatible",
            "config": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        },
    )
    assert reply.status == 201, reply.text
    unreachable = await langgraph_workflow(
        api, create_agent, create_workflow, user, {**simple, "options": {"model": "nowhere"}}
    )
    tool_raises = await langgraph_workflow(
        api,
        create_agent,
        create_workflow,
        user,
        {"nodes": [{"id": "calc", "type": "tool", "config": {"tool": "calculator", "args": {"expression": "1/0"}}}]},
    )
    code_raises = await langgraph_workflow(
        api,
        create_agent,
        create_workflow,
        user,
        {"nodes": [{"id": "boom", "type": "code", "config": {"source": "def run(values):\n    raise KeyError('k')"}}]},
    )
    async with workers(state_url=runs_db, runner_pool_size=1):
        missing = await run_to_end(user, unreachable)
        tool = await run_to_end(user, tool_raises)
        code = await run_to_end(user, code_raises)
    assert missing["status"] == "failed"
    assert missing["error"]["kind"] == "model"
    assert "127.0.0.1:9" in missing["error"]["message"]
    assert "unreachable" in missing["error"]["message"]
    assert tool["error"]["kind"] == "tool"
    assert "calculator" in tool["error"]["message"]
    assert code["error"]["kind"] == "code"
    assert "boom" in code["error"]["message"]
    # the first model integration became the organization's default: remove it to see the configuration error
    listed = await api("GET", "integrations", user=user)
    for item in listed.json["items"]:
        assert (await api("DELETE", "integrations", item["id"], user=user)).status == 204
    async with workers(state_url=runs_db, runner_pool_size=1):
        none = await run_to_end(user, no_model)
    assert none["error"]["kind"] == "configuration"
    assert "openai-compatible" in none["error"]["message"]


async def test_the_validator_names_the_node_at_fault(api: Api, create_agent: Any) -> None:
    user = who()
    agent = await create_agent(user=user, framework="langgraph")
    spec = {
        "nodes": [
            {"id": "a", "type": "model", "config": {}},
            {"id": "b", "type": "tool", "config": {"tool": "no_such_tool"}},
        ],
        "edges": [{"source": "a", "target": "b", "condition": "len(a) >"}],
    }
    reply = await api("POST", "workflows", "validate", user=user, body={"framework": "langgraph", "spec": spec})
    assert reply.status == 200, reply.text
    fields = {problem["field"] for problem in reply.json["errors"]}
    assert {"spec.nodes.0.config.prompt", "spec.nodes.1.config.tool", "spec.edges.0.condition"} <= fields
    saved = await api("POST", "agents", agent["id"], "workflows", user=user, body={"name": "bad", "spec": spec})
    assert saved.status == 422
    assert "spec.nodes.0.config.prompt" in {e["field"] for e in saved.json["errors"]}


def test_a_waiting_run_resumes_after_every_process_restarted(local_model: dict[str, Any], tmp_path: Path) -> None:
    """The API server, its worker, the scheduler and the embedded PostgreSQL all stop while a run waits;
    a new server on the same data resumes it from its checkpoint."""
    root, data = tmp_path / "server", tmp_path / "data"
    root.mkdir()
    first = start_personal_server(root, data)
    try:
        body = {"name": "default", "kind": "openai-compatible", "config": local_model["config"]}
        assert first.call("POST", "/integrations", body).status == 201
        agent = first.call("POST", "/agents", {"name": "writer", "framework": "langgraph"})
        workflow = first.call("POST", f"/agents/{agent.body['id']}/workflows", {"name": "a", "spec": APPROVAL_SPEC})
        assert workflow.status == 201, workflow.body
        run = first.call("POST", f"/workflows/{workflow.body['id']}/execute", {"inputs": {"topic": "tea"}})
        execution = f"/executions/{run.body['id']}"
        deadline = time.monotonic() + 120
        while first.call("GET", execution).body["status"] != "waiting":
            assert time.monotonic() < deadline, first.call("GET", execution).body
            time.sleep(0.2)
    finally:
        assert first.stop(signal.SIGTERM) == 0
    wait_postgres_stopped(first.pgdata)

    second = start_personal_server(root, data)
    try:
        waiting = second.call("GET", execution)
        assert waiting.body["status"] == "waiting"
        resumed = second.call("POST", f"{execution}/resume", {"answer": {"approved": True}})
        assert resumed.status == 202, resumed.body
        deadline = time.monotonic() + 120
        while (done := second.call("GET", execution).body)["status"] not in FINAL:
            assert time.monotonic() < deadline, done
            time.sleep(0.2)
        assert done["status"] == "succeeded", done
        assert [s["node"] for s in done["outputs"]["steps"]] == ["start", "draft", "check", "approve", "publish", "end"]
        assert done["outputs"]["usage"]["model_calls"] == 1  # the draft came from the checkpoint, not a new call
    finally:
        second.stop(signal.SIGTERM)
        wait_postgres_stopped(second.pgdata)
