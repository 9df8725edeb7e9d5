"""The widgets' Python side against a real server: the builder's palette, server validation, saving
versions (and the 409 of a stale save), loading a version with what changed, running, and the
execution view following a run through its server-sent events to the end, approval included."""

from __future__ import annotations

import time
from typing import Any

import pytest
from orchestrator_widgets import Builder, ExecutionView

from orchestrator_ext.client import Client
from tests.conftest import NOTEBOOK_SPEC
from tests.personal_server import PersonalServer
from tests.widgets.sample_specs import three_steps, with_approval

pytestmark = pytest.mark.timeout(300)


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_palette_and_schema_come_from_the_server(client: Client) -> None:
    builder = Builder(client=client)
    try:
        types = [item["type"] for item in builder.palette]
        assert types[0] == "input"
        assert {"model", "tool", "code", "router", "human_approval", "output"} <= set(types)
        assert builder.schema["$schema"].startswith("https://json-schema.org/")
        assert builder.dirty
        assert builder.version == 0
    finally:
        builder.close()


def test_the_server_check_marks_the_edge_at_fault_and_clears_when_fixed(client: Client) -> None:
    builder = Builder(client=client, spec=three_steps())
    try:
        broken = three_steps()
        broken["edges"][1]["condition"] = "calc ==="
        builder.spec = broken
        problems = builder.validate_now()
        assert [p["field"] for p in problems] == ["edges.1.condition"]
        assert problems[0]["source"] == "server"
        builder.spec = three_steps()
        assert builder.validate_now() == []
        # the debounced check (what the browser's edits trigger) lands too
        builder.spec = broken
        wait_for(lambda: not builder.validating and builder.server_problems)
        assert builder.server_problems[0]["field"] == "edges.1.condition"
    finally:
        builder.close()


def test_save_versions_conflict_reload_and_what_changed(client: Client, server: PersonalServer) -> None:
    builder = Builder(client=client, name="Three steps", spec=three_steps())
    try:
        assert builder.save("first") == 1
        workflow = server.call("GET", f"/workflows/{builder.workflow_id}").body
        assert workflow["version"] == 1
        assert workflow["spec"]["nodes"][1]["id"] == "calc"
        edited = three_steps()
        edited["nodes"][1]["label"] = "Compute"
        builder.spec = edited
        assert builder.dirty
        assert builder.save("label") == 2
        assert not builder.dirty
        assert builder.changes == ["changed node calc: label"]
        assert [v["version"] for v in builder.versions] == [2, 1]

        # someone else saves v3: this builder's next save is stale
        other = server.call("PUT", f"/workflows/{builder.workflow_id}", {"spec": three_steps(), "comment": "other"})
        assert other.status == 200
        assert other.body["version"] == 3
        builder.spec = {**edited, "edges": edited["edges"][:1]}
        assert builder.save() is None
        assert builder.status["kind"] == "conflict"
        assert "newer version" in builder.status["message"]
        builder.reload()
        assert builder.version == 3
        assert not builder.dirty
        assert [edge["target"] for edge in builder.spec["edges"]] == ["calc", "end"]

        builder.load_version(2)
        assert builder.version == 2
        assert builder.spec["nodes"][1]["label"] == "Compute"
        assert builder.changes == ["changed node calc: label"]
        # saving an older version shown makes it the newest again (not a conflict)
        assert builder.save("back to v2") == 4
    finally:
        builder.close()


def test_run_follows_the_events_until_every_node_is_done(client: Client) -> None:
    builder = Builder(client=client, name="Run me", spec=three_steps())
    try:
        assert builder.execute() is None
        assert "Save first" in builder.status["message"]
        builder.save()
        execution_id = builder.execute({"topic": "tea"})
        assert execution_id
        assert builder.tab == "run"
        wait_for(lambda: builder.run["status"] in ("succeeded", "failed"), 240)
        assert builder.run["status"] == "succeeded", builder.run
        assert builder.run["nodes"] == {"start": "done", "calc": "done", "end": "done"}
        assert [step["node"] for step in builder.run["steps"]] == ["start", "calc", "end"]
        assert builder.run["steps"][1]["output"] == 42
        # a view opened after the end reads the steps from the outputs
        view = ExecutionView(execution_id, client=client)
        assert view.run["status"] == "succeeded"
        assert view.run["nodes"] == {"start": "done", "calc": "done", "end": "done"}
        assert view.follower.stream is None
        view.follower.command({"type": "cancel"})  # a finished run cannot be cancelled: said, not raised
        assert "already ended" in view.run["message"]
        view.close()
    finally:
        builder.close()


def test_approve_a_waiting_run_from_the_execution_view(client: Client) -> None:
    agent = client.create_agent("Approved in the kernel", "langgraph")
    workflow = client.create_workflow(agent["id"], "Ship it", with_approval())
    execution = client.execute(workflow["id"], {})
    view = ExecutionView(execution["id"], client=client)
    try:
        wait_for(lambda: view.run["status"] == "waiting", 120)
        assert view.run["nodes"]["check"] == "waiting"
        assert view.run["waiting_for"]["question"] == "Ship 42?"
        view.follower.command({"type": "resume", "answer": {"approved": True, "comment": "fine"}})
        wait_for(lambda: view.run["status"] == "succeeded", 120)
        assert view.run["nodes"] == {"start": "done", "calc": "done", "check": "done", "end": "done"}
        assert view.run["outputs"]["output"] == {"approved": True, "comment": "fine"}
        assert client.execution(execution["id"])["status"] == "succeeded"
    finally:
        view.close()


def test_cancel_from_the_view_and_errors_said_plainly(client: Client) -> None:
    agent = client.create_agent("Cancel me", "langgraph")
    workflow = client.create_workflow(agent["id"], "Waits", with_approval())
    execution = client.execute(workflow["id"], {})
    view = ExecutionView(execution["id"], client=client)
    try:
        wait_for(lambda: view.run["status"] == "waiting", 120)
        view.follower.command({"type": "cancel"})
        wait_for(lambda: view.run["status"] == "cancelled", 60)
        assert view.run["nodes"]["check"] == "pending"
        assert view.run["nodes"]["calc"] == "done"
        stream = view.follower.stream
        assert stream is not None
        wait_for(lambda: not stream.alive, 10)  # the stream ends with the run
    finally:
        view.close()


def test_a_notebook_run_shows_its_executed_notebook(client: Client) -> None:
    agent = client.create_agent("Notebook in a widget", "notebook")
    workflow = client.create_workflow(agent["id"], "Hello", NOTEBOOK_SPEC)
    execution = client.execute(workflow["id"], {"name": "widgets"})
    view = ExecutionView(execution["id"], client=client)
    try:
        wait_for(lambda: view.run["status"] in ("succeeded", "failed") and view.run["notebook_html"], 240)
        assert view.run["status"] == "succeeded", view.run["error"]
        assert "1 widgets" in view.run["notebook_html"]
        wait_for(lambda: "1 widgets" in view.run["logs"], 30)  # the log's events may follow the notebook's fetch
        assert view.run["spec"]["nodes"] == []
    finally:
        view.close()


def test_node_positions_are_saved_with_the_version_and_restored_on_load(client: Client) -> None:
    builder = Builder(client=client, name=f"Positions {time.time_ns()}", spec=three_steps())
    at = {"start": {"x": 10.0, "y": 20.0}, "calc": {"x": 10.0, "y": 140.25}, "end": {"x": 300.0, "y": 260.0}}
    try:
        builder.layout = {**at, "gone": {"x": 1, "y": 1}}  # a position for a node that is not there is dropped
        assert builder.save() == 1
        stored = client.workflow(builder.workflow_id)["spec"]
        assert stored["ui"] == {"positions": {**at, "calc": {"x": 10.0, "y": 140.2}}}
        assert not builder.dirty
        assert "ui" not in builder.spec  # the builder edits the graph; positions live in its layout
    finally:
        builder.close()

    reopened = Builder(builder.workflow_id, client=client)
    try:
        assert reopened.layout == {**at, "calc": {"x": 10.0, "y": 140.2}}
        assert not reopened.dirty
        reopened.layout = {**reopened.layout, "end": {"x": 320.0, "y": 260.0}}  # a node dragged: unsaved
        assert reopened.dirty
        assert reopened.save() == 2
        assert client.workflow(builder.workflow_id)["spec"]["ui"]["positions"]["end"] == {"x": 320.0, "y": 260.0}
        reopened.load_version(1)
        assert reopened.layout["end"] == {"x": 300.0, "y": 260.0}
    finally:
        reopened.close()


def test_a_version_saved_without_positions_opens_laid_out_and_clean(client: Client) -> None:
    agent = client.create_agent(f"No positions {time.time_ns()}", "langgraph")
    workflow = client.create_workflow(agent["id"], "Code-made", three_steps())
    assert "ui" not in workflow["spec"]
    builder = Builder(workflow["id"], client=client)
    try:
        assert builder.layout == {}
        assert not builder.dirty
    finally:
        builder.close()
