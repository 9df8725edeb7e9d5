"""The widgets' pure parts, without a server: the palette read from a schema, what changed between
versions, the inputs a run asks for, the event-stream parser and the run tracker's node states."""

from __future__ import annotations

from typing import Any

from orchestrator_widgets import specs
from orchestrator_widgets.events import parse_stream
from orchestrator_widgets.tracking import RunTracker

from tests.widgets.sample_specs import three_steps, with_approval

SCHEMA: dict[str, Any] = {
    "$defs": {
        "NodeType": {"enum": ["input", "output", "model", "agent", "task"]},
        "CrewTask": {"description": "A piece of work.", "properties": {"type": {"const": "task"}, "config": {}}},
    },
    "x-frameworks": {
        "crewai": {"nodes": {"agent": {"description": "A crew member."}, "task": {"$ref": "#/$defs/CrewTask"}}}
    },
}


def test_palette_follows_the_schema_then_the_runtime_then_the_fallback() -> None:
    crew = specs.palette("crewai", [], SCHEMA)
    assert crew == [
        {"type": "agent", "label": "Agent", "description": "A crew member."},
        {"type": "task", "label": "Task", "description": "A piece of work."},
    ]
    declared = [{"name": "langgraph", "node_types": ["input", {"type": "model"}, "ghost"]}]
    assert [item["type"] for item in specs.palette("langgraph", declared, SCHEMA)] == ["input", "model"]
    assert [item["type"] for item in specs.palette("langgraph", [], SCHEMA)] == ["input", "model", "output"]
    assert [item["type"] for item in specs.palette("unknown", [], SCHEMA)] == [
        "input",
        "output",
        "model",
        "agent",
        "task",
    ]


def test_changes_in_words() -> None:
    before, after = three_steps(), with_approval()
    after["nodes"][1]["config"]["source"] = "def run(values):\n    return 0"
    after["edges"][2]["condition"] = "check.approved"
    after["options"] = {"durability": "sync"}
    assert specs.changes(before, after) == [
        "added node check (human_approval)",
        "changed node calc: config.source",
        "added edge calc → check",
        "added edge check → end",
        "removed edge calc → end",
        "changed options",
    ]
    assert specs.changes(None, after) == ["the first version"]
    assert specs.changes(before, three_steps()) == ["no change"]


def test_input_fields_from_parameters_templates_or_an_input_schema() -> None:
    assert specs.input_fields({}, [{"name": "n", "type": "int", "default": 3}]) == [
        {"name": "n", "type": "integer", "default": 3}
    ]
    spec = {
        "nodes": [
            {"id": "ask", "type": "model", "config": {"prompt": "Write about {topic} for {ask} ({inputs.x}, {last})"}},
            {"id": "out", "type": "output", "config": {"note": ["{audience.name}"]}},
        ]
    }
    assert [field["name"] for field in specs.input_fields(spec)] == ["topic", "audience"]
    typed = {"nodes": [{"id": "in", "type": "input", "config": {"schema": {"properties": {"k": {"type": "integer"}}}}}]}
    assert specs.input_fields(typed) == [{"name": "k", "type": "integer", "default": None, "description": ""}]


def test_the_stream_parser_reads_what_the_api_sends() -> None:
    lines = [
        b": keep-alive\n",
        b"\n",
        b"id: 7\n",
        b"event: step\n",
        b'data: {"id": 7, "kind": "step", "attempt": 1, "data": {"node": "calc"}}\n',
        b"\n",
        b"event: log\n",
        b'data: {"text":\n',
        b'data: "hi"}\n',
        b"\n",
    ]
    events = list(parse_stream(iter(lines)))
    assert [(e.id, e.kind, e.data) for e in events] == [(7, "step", {"node": "calc"}), (7, "log", {"text": "hi"})]


def test_the_tracker_marks_running_waiting_failed_and_skipped_nodes() -> None:
    tracker = RunTracker("run", with_approval())
    tracker.apply("status", {"status": "running"})
    assert tracker.state["nodes"]["start"] == "running"
    tracker.apply("step", {"node": "start"})
    tracker.apply("log", {"text": "hello\n"})
    assert tracker.state["nodes"] == {"start": "done", "calc": "running", "check": "pending", "end": "pending"}
    tracker.apply("step", {"node": "calc"})
    tracker.describe({"status": "waiting", "waiting_for": {"node": "check", "question": "ok?"}, "outputs": None})
    assert tracker.state["nodes"]["check"] == "waiting"
    tracker.apply("status", {"status": "running"})
    assert tracker.state["nodes"]["check"] == "running"
    tracker.apply("status", {"status": "failed", "error": {"kind": "tool", "message": "boom", "node": "check"}})
    assert tracker.state["nodes"]["check"] == "failed"
    assert tracker.state["error"]["message"] == "boom"
    assert tracker.state["logs"] == "hello\n"

    done = RunTracker("other", three_steps())
    done.describe({"status": "succeeded", "outputs": {"steps": [{"node": "start"}, {"node": "calc"}]}})
    assert done.state["nodes"] == {"start": "done", "calc": "done", "end": "skipped"}
    assert done.snapshot() == done.state
    assert done.snapshot() is not done.state
