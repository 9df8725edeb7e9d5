"""A run costs the worker few round trips: its claim brings the integrations it is handed, and its end is
written with the events still waiting (its last log lines and steps). Neither may change what a run gets or
what is recorded: the integrations are the ones a separate read gives, and an event the database refuses
loses only itself, never the run's end."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from orchestrator_ext.engine.attempts import SUCCEEDED, ActiveRun, Outcome
from orchestrator_ext.engine.events import RunEvents
from orchestrator_ext.engine.settings import WorkerSettings
from orchestrator_ext.engine.worker import Worker
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import GRAPH_SPEC, TEST_KEYS, Api, TestDatabase
from tests.engine.conftest import notebook, who
from tests.engine.test_notebook_runs import sse_events
from tests.engine.test_queue_order import enqueue

MODEL = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}


@contextlib.asynccontextmanager
async def idle_worker(database: TestDatabase) -> AsyncIterator[Worker]:
    """A worker whose queue is open but which claims nothing by itself: the test claims for it."""
    settings = WorkerSettings(slots=1, kernel_pool_size=0, runner_pool_size=0)
    worker = Worker(database.app_url, dataclasses.replace(settings), KeyRing.parse(TEST_KEYS))
    await worker.queue.open()
    try:
        yield worker
    finally:
        await worker.queue.close()


async def add_integration(api: Api, user: str, name: str, kind: str = "openai-compatible", secret: str = "") -> None:
    body: dict[str, Any] = {"name": name, "kind": kind, "config": MODEL if kind == "openai-compatible" else {}}
    if secret:
        body["secret"] = secret
    reply = await api("POST", "integrations", user=user, body=body)
    assert reply.status == 201, reply.text


SPECS: list[dict[str, Any]] = [
    {},  # names nothing: a framework run still gets its organization's default model
    {"integrations": ["search", "missing"]},
    {"integrations": ["search"], "options": {"model": "second"}},
    {"nodes": [{"id": "a", "kind": "llm", "config": {"model": "second", "manager_model": "first"}}]},
    {"integrations": "search"},  # not a list: the worker reads the names it finds, whatever the claim looked for
    {"integrations": [7, "search"]},
]


@pytest.mark.parametrize("framework", ["langgraph", "notebook"])
async def test_the_claim_hands_the_integrations_a_separate_read_gives(
    api: Api, database: TestDatabase, create_agent: Any, admin_sql: Any, framework: str
) -> None:
    user = who("i")
    await add_integration(api, user, "first", secret="first-secret")
    await add_integration(api, user, "second", secret="second-secret")
    await add_integration(api, user, "search", kind="tool", secret="tool-secret")
    await add_integration(api, user, "unused", kind="tool", secret="never-handed")
    agent = await create_agent(user=user, framework=framework)
    async with idle_worker(database) as worker:
        for extra in SPECS:
            base = {"notebook": {"content": notebook("1")}} if framework == "notebook" else GRAPH_SPEC
            reply = await api(
                "POST", "agents", agent["id"], "workflows", user=user, body={"name": who("w"), "spec": base}
            )
            assert reply.status == 201, reply.text
            # the spec as stored, whatever the API would accept: the claim reads what is there
            _store_spec(database, reply.json["id"], {**base, **extra})
            (run_id,) = await enqueue(api, user, reply.json["id"], 1)
            run = await worker.queue.claim(worker.name, 30)
            assert run is not None
            assert str(run.id) == run_id
            claimed, read = ActiveRun(run, _events(worker, run)), ActiveRun(run, _events(worker, run))
            handed = await worker._integrations(claimed, claimed=True)
            assert handed == await worker._integrations(read), extra
            assert claimed.default_model == read.default_model, extra
            assert "unused" not in handed
            await worker.queue.finish(run, worker.name, SUCCEEDED, {}, None, None)
    if framework == "langgraph":
        assert handed["first"]["secret"] == "first-secret"  # the default model (the oldest)
        assert handed["search"]["secret"] == "tool-secret"


async def test_the_claim_spares_the_read(api: Api, database: TestDatabase, create_agent: Any) -> None:
    user = who("j")
    await add_integration(api, user, "first", secret="s")
    agent = await create_agent(user=user, framework="langgraph")
    reply = await api(
        "POST", "agents", agent["id"], "workflows", user=user, body={"name": who("w"), "spec": GRAPH_SPEC}
    )
    assert reply.status == 201, reply.text
    await enqueue(api, user, reply.json["id"], 1)
    async with idle_worker(database) as worker:
        run = await worker.queue.claim(worker.name, 30)
        assert run is not None

        async def no_read(*_: Any, **__: Any) -> Any:
            raise AssertionError("the claim brought the integrations: no read needed")

        worker.queue.integrations = no_read  # type: ignore[method-assign]
        handed = await worker._integrations(ActiveRun(run, _events(worker, run)), claimed=True)
        assert handed["first"]["secret"] == "s"


@contextlib.asynccontextmanager
async def claimed_run(api: Api, database: TestDatabase, notebook_workflow: Any, user: str) -> AsyncIterator[Any]:
    """An idle worker holding one notebook run of ``user``'s (claimed, not started): ``(worker, run)``."""
    workflow = await notebook_workflow(user, notebook("1"))
    await enqueue(api, user, workflow["id"], 1)
    async with idle_worker(database) as worker:
        run = await worker.queue.claim(worker.name, 30)
        assert run is not None
        yield worker, run


async def test_the_end_is_written_with_the_pending_events_in_one_statement(
    api: Api, database: TestDatabase, notebook_workflow: Any
) -> None:
    user = who("k")
    async with claimed_run(api, database, notebook_workflow, user) as (worker, run):
        events = _events(worker, run)
        events.log("stdout", "the last line\n")
        events.step({"node": "end"})
        separate: list[Any] = []
        real_append = worker.queue.append_events

        async def counted(rows: list[dict[str, Any]]) -> None:
            separate.append(rows)
            await real_append(rows)

        worker.queue.append_events = counted  # type: ignore[method-assign]
        await worker._record(run, Outcome(SUCCEEDED, outputs={"answer": 42}))
    assert separate == []  # no round trip of their own
    # the run's stream, as its owner reads it: the log and the step before the final status
    stream = sse_events((await api("GET", "executions", str(run.id), "events", user=user)).text)
    data = [(e["event"], e["data"]["data"]) for e in stream]
    seen = [(event, item.get("status") or item.get("text") or item.get("node")) for event, item in data]
    assert seen[-3:] == [("log", "the last line\n"), ("step", "end"), ("status", "succeeded")], seen
    reply = await api("GET", "executions", str(run.id), user=user)
    assert (reply.json["status"], reply.json["outputs"]) == ("succeeded", {"answer": 42})


async def test_an_event_the_database_refuses_does_not_lose_the_runs_end(
    api: Api, database: TestDatabase, notebook_workflow: Any, admin_sql: Any
) -> None:
    user = who("l")
    async with claimed_run(api, database, notebook_workflow, user) as (worker, run):
        _events(worker, run).log("stdout", "kept\n")
        gone = {"execution_id": str(uuid.uuid4()), "org_id": str(run.org_id), "attempt": 1}  # no such run
        worker.writer.add({**gone, "kind": "log", "data": {"text": "refused"}})
        await worker._record(run, Outcome(SUCCEEDED, outputs={}))
    reply = await api("GET", "executions", str(run.id), user=user)
    assert reply.json["status"] == "succeeded"
    stream = sse_events((await api("GET", "executions", str(run.id), "events", user=user)).text)
    assert [e["data"]["data"]["text"] for e in stream if e["event"] == "log"] == ["kept\n"]
    assert admin_sql("SELECT count(*) FROM execution_events WHERE execution_id = %s", (gone["execution_id"],)) == [(0,)]


def _store_spec(database: TestDatabase, workflow_id: str, spec: dict[str, Any]) -> None:
    """The workflow's version holding ``spec`` as stored, whatever the API would accept (versions are immutable:
    their trigger is off for this session only)."""
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "UPDATE workflow_versions SET spec = %s::jsonb WHERE workflow_id = %s", (json.dumps(spec), workflow_id)
        )


def _events(worker: Worker, run: Any) -> RunEvents:
    return RunEvents(worker.writer, run.id, run.org_id, run.attempt, 1 << 20)
