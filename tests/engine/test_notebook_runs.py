"""Notebook runs end to end: REST → queue → worker → papermill on a warm kernel → outputs."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import psycopg

from orchestrator_ext.handlers import events as events_handler
from tests.conftest import Api, TestDatabase
from tests.engine.conftest import notebook, wait_final, who


async def test_a_notebook_runs_with_its_inputs_and_records_outputs(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    nb = notebook(
        "from orchestrator_runtimes import record\nprint('hello', n)\nrecord('double', n * 2)\nrecord('who', name)",
        parameters="n = 1\nname = 'x'",
    )
    workflow = await notebook_workflow(user, nb)
    async with workers():
        run = await run_to_end(user, workflow["id"], inputs={"n": 21, "name": "ada"})
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"double": 42, "who": "ada"}
    assert run["attempt"] == 1


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse a text/event-stream body into its events (id, event, data as JSON)."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if fields:
            found.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
    return found


async def test_events_logs_and_the_executed_notebook(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any, monkeypatch: Any
) -> None:
    # no keep-alive wake-ups: the stream must be woken by the run's own events, or it hangs
    monkeypatch.setattr(events_handler, "KEEPALIVE_SECONDS", 3600)
    user = who()
    workflow = await notebook_workflow(user, notebook("print('line one')", "print('line two')"))
    async with workers():
        reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
        execution_id = reply.json["id"]
        live = asyncio.ensure_future(api("GET", "executions", execution_id, "events", user=user))
        await wait_final(api, user, execution_id)
        streamed = await asyncio.wait_for(live, 30)
    assert streamed.status == 200
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    statuses = [e["data"]["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["queued", "running", "succeeded"]
    steps = [(e["data"]["data"]["cell"], e["data"]["data"]["state"]) for e in events if e["event"] == "step"]
    assert steps == [(0, "started"), (0, "succeeded"), (1, "started"), (1, "succeeded")]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    # resuming after an event id gives exactly the rest
    middle = events[2]["id"]
    resumed = await api("GET", "executions", execution_id, "events", user=user, headers={"Last-Event-ID": str(middle)})
    assert [e["id"] for e in sse_events(resumed.text)] == [e["id"] for e in events if e["id"] > middle]

    logs = await api("GET", "executions", execution_id, "logs", user=user)
    assert logs.status == 200
    assert logs.text == "--- attempt 1 ---\nline one\nline two\n"

    document = await api("GET", "executions", execution_id, "notebook", user=user)
    assert document.status == 200
    assert document.json["cells"][1]["outputs"][0]["text"] == "line two\n"
    assert document.json["metadata"]["papermill"]["duration"] is not None
    html = await api("GET", "executions", execution_id, "notebook", user=user, params={"format": "html"})
    assert html.status == 200
    assert "line two" in html.text
    assert html.headers["Content-Type"].startswith("text/html")

    # another user sees none of it
    for part in ("events", "logs", "notebook"):
        assert (await api("GET", "executions", execution_id, part, user=who("mallory"))).status == 404


async def test_a_failing_cell_fails_the_run_with_the_cell_and_the_error(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("x = 1", "raise ValueError('bad value')", "print('never')"))
    async with workers():
        run = await run_to_end(user, workflow["id"])
    assert run["status"] == "failed"
    error = run["error"]
    assert (error["kind"], error["cell"], error["ename"], error["evalue"]) == ("code", 1, "ValueError", "bad value")
    assert "cell 1 raised ValueError: bad value" in error["message"]
    document = await api("GET", "executions", run["id"], "notebook", user=user)
    sources = [cell["source"] for cell in document.json["cells"]]
    assert "print('never')" in sources  # kept, not run
    assert any("An Exception was encountered" in str(source) for source in sources)  # papermill's banner


async def test_wrong_input_types_are_refused_before_anything_runs(api: Api, notebook_workflow: Any) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("print(n)", parameters="n: int = 1\nrate = 0.5"))
    reply = await api(
        "POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"n": "seven", "rate": 1}}
    )
    assert reply.status == 422
    assert [e["field"] for e in reply.json["errors"]] == ["inputs.n"]
    assert "expected integer" in reply.json["errors"][0]["message"]
    unknown = await api("POST", "workflows", str(uuid.uuid4()), "execute", user=user, body={"inputs": {}})
    assert unknown.status == 404


#: a notebook that says it has started, then works for ten minutes: a run to cancel
LONG_RUN = notebook("import time\nprint('started', flush=True)\ntime.sleep(600)")


async def started(api: Api, user: str, workflow_id: str) -> str:
    """Execute ``workflow_id`` (a LONG_RUN) and return its execution's id once its cell runs (its log says so)."""
    reply = await api("POST", "workflows", workflow_id, "execute", user=user, body={"inputs": {}})
    assert reply.status == 202, reply.text
    execution_id: str = reply.json["id"]
    while "started" not in (await api("GET", "executions", execution_id, "logs", user=user)).text:
        await asyncio.sleep(0.05)
    return execution_id


async def test_cancel_stops_a_running_notebook_within_a_second(api: Api, workers: Any, notebook_workflow: Any) -> None:
    user = who()
    workflow = await notebook_workflow(user, LONG_RUN)
    async with workers():
        execution_id = await started(api, user, workflow["id"])
        asked = time.monotonic()
        cancel = await api("POST", "executions", execution_id, "cancel", user=user)
        assert cancel.status == 202, cancel.text
        run = await wait_final(api, user, execution_id, within=10)
        took = time.monotonic() - asked
    assert run["status"] == "cancelled"
    assert run["error"]["kind"] == "cancelled"
    assert took < 1.0, f"cancelled after {took:.2f} s"
    again = await api("POST", "executions", execution_id, "cancel", user=user)
    assert again.status == 200
    assert again.json["status"] == "cancelled"


async def test_a_cancel_notification_alone_cancels_nothing(
    api: Api, workers: Any, notebook_workflow: Any, database: TestDatabase
) -> None:
    """Anyone connected to the database may send ``NOTIFY orchestrator_cancel``: the worker stops a run only
    when its row says someone asked the API to (a run's role cannot connect there, and this holds anyway)."""
    user = who()
    workflow = await notebook_workflow(user, LONG_RUN)
    async with workers():
        execution_id = await started(api, user, workflow["id"])
        async with await psycopg.AsyncConnection.connect(database.app_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_notify('orchestrator_cancel', %s)", (execution_id,))
        await asyncio.sleep(1.5)  # a real request is acted on within a second (the test above)
        running = await api("GET", "executions", execution_id, user=user)
        assert running.json["status"] == "running", running.json
        cancel = await api("POST", "executions", execution_id, "cancel", user=user)
        assert cancel.status == 202, cancel.text
        run = await wait_final(api, user, execution_id, within=30)
    assert run["status"] == "cancelled"


async def test_a_queued_run_cancelled_never_starts(api: Api, workers: Any, notebook_workflow: Any) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("print('ran')"))
    reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
    cancel = await api("POST", "executions", reply.json["id"], "cancel", user=user)
    assert cancel.status == 200
    assert cancel.json["status"] == "cancelled"
    async with workers():
        await asyncio.sleep(1.0)
    run = (await api("GET", "executions", reply.json["id"], user=user)).json
    assert (run["status"], run["attempt"], run["started_at"]) == ("cancelled", 0, None)
    assert (await api("GET", "executions", reply.json["id"], "logs", user=user)).text == ""


async def test_a_finished_run_cannot_be_cancelled(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("1"))
    async with workers():
        run = await run_to_end(user, workflow["id"])
    refused = await api("POST", "executions", run["id"], "cancel", user=user)
    assert refused.status == 409
    assert refused.json["errors"][0]["field"] == "status"


async def test_a_run_sees_a_scrubbed_environment_and_only_its_integrations(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", "postgresql://should-not-leak")
    user = who()
    body = {"kind": "tool", "name": "weather", "config": {"units": "metric"}, "secret": "s3cret-value"}
    probe = notebook(
        "import os\nfrom orchestrator_runtimes import integration, record\n"
        "w = integration('weather')\n"
        "record('config', w['config'])\nrecord('secret_length', len(w['secret']))\n"
        "record('leaked', sorted(k for k in os.environ if k.startswith(('ORCHESTRATOR_DATABASE', 'JUPYTERHUB'))))\n"
        "record('own_dir', os.getcwd() == os.environ['HOME'] and os.path.basename(os.getcwd()).startswith('run-'))"
    )
    workflow = await notebook_workflow(user, probe, integrations=["weather"])
    created = await api("POST", "integrations", user=user, body={"org_id": workflow["org_id"], **body})
    assert created.status == 201, created.text
    async with workers():
        run = await run_to_end(user, workflow["id"])
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"config": {"units": "metric"}, "secret_length": 12, "leaked": [], "own_dir": True}
    document = await api("GET", "executions", run["id"], "notebook", user=user)
    assert "s3cret-value" not in document.text


async def test_a_stream_opened_right_after_the_request_sees_the_end_at_once(
    api: Api, workers: Any, notebook_workflow: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(events_handler, "KEEPALIVE_SECONDS", 3600)  # only the run's own events wake the stream
    user = who()
    workflow = await notebook_workflow(user, notebook("1 + 1"))
    async with workers(kernel_pool_size=2):
        for _ in range(5):
            reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
            stream = await asyncio.wait_for(api("GET", "executions", reply.json["id"], "events", user=user), 60)
            assert sse_events(stream.text)[-1]["data"]["data"]["status"] == "succeeded"
