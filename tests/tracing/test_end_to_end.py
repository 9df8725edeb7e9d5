"""Tracing end to end: one trace from ``POST .../execute`` to the last step of the run it started.

A real ``jupyter orchestrator`` (embedded PostgreSQL, its worker, the local
model) exports to an OTLP receiver on the loopback (:mod:`tests.otlp_receiver`:
no trace backend runs here offline; the fixtures are in this folder's
``conftest.py``). A LangGraph agent with a model node and papermill's own
``simple_execute.ipynb`` are run through the API; each run's spans must form
one tree under the POST's span: the request, its statements, the claim, the
execution, the run's own process (LangGraph) or its cells (notebook), each
step, each model call with its tokens. The server's log lines about the run
carry the trace id, and a request's spans hold no query string.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator_ext.services.execution_start import START
from tests.otlp_receiver import OtlpReceiver, Span
from tests.personal_server import PersonalServer

RUN_TIMEOUT_S = 180.0
SPANS_TIMEOUT_S = 30.0
NOTEBOOKS = Path(__file__).parent.parent / "engine" / "papermill_notebooks"

AGENT_SPEC: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "draft", "type": "model", "config": {"prompt": "Say hello to {name} in five words.", "max_tokens": 16}},
        {"id": "shout", "type": "code", "config": {"source": "def run(values):\n    return values['draft'].upper()"}},
        {"id": "end", "type": "output"},
    ],
    "edges": [
        {"source": "start", "target": "draft"},
        {"source": "draft", "target": "shout"},
        {"source": "shout", "target": "end"},
    ],
}


def created(server: PersonalServer, method: str, path: str, body: Any) -> dict[str, Any]:
    reply = server.call(method, path, body)
    assert reply.status in (200, 201, 202), (path, reply.status, reply.body)
    result: dict[str, Any] = reply.body
    return result


def run_to_the_end(server: PersonalServer, framework: str, spec: dict[str, Any], inputs: dict[str, Any]) -> str:
    """An agent of ``framework`` running ``spec`` once through the API; the execution's id once it succeeded."""
    agent = created(server, "POST", "/agents", {"name": f"traced-{framework}", "framework": framework})
    workflow = created(server, "POST", f"/agents/{agent['id']}/workflows", {"name": "traced", "spec": spec})
    run = created(server, "POST", f"/workflows/{workflow['id']}/execute", {"inputs": inputs})
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        execution = server.call("GET", f"/executions/{run['id']}").body
        if execution["status"] not in ("queued", "running"):
            assert execution["status"] == "succeeded", execution
            return str(run["id"])
        time.sleep(0.2)
    raise AssertionError(f"the run did not end in {RUN_TIMEOUT_S:.0f} s")


def spans_of_run(receiver: OtlpReceiver, execution_id: str, last: Callable[[list[Span]], bool]) -> list[Span]:
    """The spans of the trace holding this execution's span, once ``last`` says they all came."""
    deadline = time.monotonic() + SPANS_TIMEOUT_S
    found: list[Span] = []
    while time.monotonic() < deadline:
        mine = [s for s in receiver.received() if s.attributes.get("orchestrator.execution.id") == execution_id]
        execution = [s for s in mine if s.name.startswith("execution ")]
        if execution:
            found = receiver.trace(execution[0].trace_id)
            if last(found):
                return found
        time.sleep(0.2)
    raise AssertionError(f"the run's spans did not all arrive: {sorted(s.name for s in found)}")


def one(spans: list[Span], predicate: Callable[[Span], bool]) -> Span:
    matching = [s for s in spans if predicate(s)]
    assert len(matching) == 1, [(s.name, s.service) for s in matching]
    return matching[0]


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def assert_request_and_claim(spans: list[Span], framework: str) -> tuple[Span, Span]:
    """The POST is the root; its statements, and the execution (with its claim) hang under it."""
    post = one(spans, lambda s: s.kind == "server" and s.name == "POST /workflows/{workflow_id}/execute")
    assert post.parent_span_id == ""
    assert post.attributes["http.status_code"] == 202
    statements = [s for s in children(spans, post) if s.attributes.get("db.system") == "postgresql"]
    # the run's insert: the fast path's batch (services/execution_start.py), named by its prepared statement
    insert = next(s for s in statements if START.name in s.attributes.get("db.statement", ""))
    assert insert.attributes["db.name"]
    assert insert.attributes["db.user"]
    execution = one(spans, lambda s: s.name == f"execution {framework}")
    # the attributes SQLAlchemy's instrumentation gave a statement (observability/statements.py keeps them)
    orm = [s for s in spans if s.attributes.get("db.operation")]
    assert orm, [(s.name, s.attributes) for s in spans if s.attributes.get("db.system")]
    assert all(s.name == s.attributes["db.operation"] and s.attributes["db.user"] for s in orm)
    assert execution.parent_span_id == post.span_id
    assert execution.kind == "consumer"
    assert execution.attributes["orchestrator.execution.status"] == "succeeded"
    claim = one(spans, lambda s: s.name == "queue claim")
    assert claim.parent_span_id == execution.span_id
    assert claim.start_ns <= claim.end_ns <= execution.end_ns
    assert any(s.attributes.get("db.system") == "postgresql" for s in children(spans, execution))  # its end
    return post, execution


def log_lines_of(server: PersonalServer, execution_id: str) -> list[dict[str, Any]]:
    lines = []
    for line in server.output().splitlines():
        if line.startswith("{") and execution_id in line:
            lines.append(json.loads(line))
    return lines


def test_one_trace_from_the_post_to_the_model_call_of_a_langgraph_run(
    server: PersonalServer, receiver: OtlpReceiver
) -> None:
    execution_id = run_to_the_end(server, "langgraph", AGENT_SPEC, {"name": "Ada"})
    spans = spans_of_run(receiver, execution_id, lambda found: any(s.name == "run langgraph" for s in found))
    post, execution = assert_request_and_claim(spans, "langgraph")
    run = one(spans, lambda s: s.name == "run langgraph")
    assert run.service == "orchestrator-run"
    assert run.parent_span_id == execution.span_id
    assert run.attributes["orchestrator.execution.id"] == execution_id
    steps = {s.attributes["orchestrator.step.node"]: s for s in children(spans, run) if s.name.startswith("step ")}
    assert set(steps) == {"start", "draft", "shout", "end"}
    assert steps["draft"].attributes["orchestrator.step.model_calls"] == 1
    assert steps["draft"].attributes["gen_ai.usage.input_tokens"] > 0
    call = one(spans, lambda s: s.attributes.get("gen_ai.operation.name") == "chat")
    assert call.parent_span_id == run.span_id
    assert call.attributes["gen_ai.usage.input_tokens"] == steps["draft"].attributes["gen_ai.usage.input_tokens"]
    assert call.attributes["gen_ai.usage.output_tokens"] > 0
    [http] = children(spans, call)  # httpx's own span: the request to the model server
    assert http.kind == "client"
    assert str(http.attributes.get("http.url", "")).endswith("/chat/completions")
    assert {s.trace_id for s in spans} == {post.trace_id}
    lines = log_lines_of(server, execution_id)
    assert [line["message"].split()[-1] for line in lines] == ["started", "succeeded"]
    assert {line["trace_id"] for line in lines} == {post.trace_id}
    assert {line["span_id"] for line in lines} == {execution.span_id}


def test_a_notebook_run_has_a_span_per_cell_in_the_trace_of_its_post(
    server: PersonalServer, receiver: OtlpReceiver
) -> None:
    # papermill's own notebook, as saved: a parameters cell, a cell that prints it, a markdown cell
    document = json.loads((NOTEBOOKS / "simple_execute.ipynb").read_text())
    execution_id = run_to_the_end(server, "notebook", {"notebook": {"content": document}}, {"msg": "Hello"})
    code_cells = 1 + sum(cell["cell_type"] == "code" for cell in document["cells"])  # papermill injects one

    def all_cells(found: list[Span]) -> bool:
        return sum(s.name.startswith("cell ") for s in found) == code_cells

    spans = spans_of_run(receiver, execution_id, all_cells)
    post, execution = assert_request_and_claim(spans, "notebook")
    cells = sorted((s for s in spans if s.name.startswith("cell ")), key=lambda s: s.start_ns)
    assert [s.attributes["orchestrator.cell"] for s in cells] == list(range(code_cells))
    assert all(s.parent_span_id == execution.span_id for s in cells)
    assert all(s.attributes["orchestrator.cell.state"] == "succeeded" for s in cells)
    assert all(a.end_ns <= b.start_ns for a, b in itertools.pairwise(cells))  # one after the other
    lines = log_lines_of(server, execution_id)
    assert lines
    assert {line["trace_id"] for line in lines} == {post.trace_id}


def test_request_spans_hold_no_query_string(server: PersonalServer, receiver: OtlpReceiver) -> None:
    """jupyter-server takes ``?token=``: the URL attributes of a request's span stop at the path."""
    marker = f"marker{time.monotonic_ns()}"
    reply = server.call("GET", f"/agents?token={server.token}&q={marker}")
    assert reply.status == 200
    deadline = time.monotonic() + SPANS_TIMEOUT_S
    while not (found := [s for s in receiver.received() if s.name == "GET /agents"]):
        assert time.monotonic() < deadline, "no span for GET /agents"
        time.sleep(0.2)
    for span in found:
        assert server.token not in span.raw
        assert marker not in span.raw
        assert span.attributes["http.target"].endswith("/agents")
    # the list's fast read path (psycopg, not the ORM) is traced too: its one batch is a statement span
    while not (reads := [s for s in receiver.received() if s.parent_span_id in {f.span_id for f in found}]):
        assert time.monotonic() < deadline, "no statement span under GET /agents"
        time.sleep(0.2)
    assert any(s.kind == "client" and s.attributes.get("db.system") == "postgresql" for s in reads)
    assert all(server.token not in s.raw and marker not in s.raw for s in reads)
