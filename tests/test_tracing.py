"""Tracing end to end: one trace from ``POST .../execute`` to the last step of the run it started.

A real ``jupyter orchestrator`` (embedded PostgreSQL, its worker, the local
model) exports to an OTLP receiver on the loopback (:mod:`tests.otlp_receiver`:
no trace backend runs here offline). A LangGraph agent with a model node and
papermill's own ``simple_execute.ipynb`` are run through the API; each run's
spans must form one tree under the POST's span: the request, its statements,
the claim, the execution, the run's own process (LangGraph) or its cells
(notebook), each step, each model call with its tokens. The server's log
lines about the run carry the trace id. And without an endpoint, nothing of
OpenTelemetry is even imported.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator_ext.services.execution_start import START
from tests.otlp_receiver import OtlpReceiver, Span, traced_server_fixtures
from tests.personal_server import PersonalServer

RUN_TIMEOUT_S = 180.0
SPANS_TIMEOUT_S = 30.0
NOTEBOOKS = Path(__file__).parent / "engine" / "papermill_notebooks"

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


receiver, server = traced_server_fixtures("tracing", local_model=True)


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


def test_without_an_endpoint_nothing_of_opentelemetry_is_imported() -> None:
    """Off costs nothing: the server's modules, the worker's and a run's import no OpenTelemetry at all."""
    code = (
        "import sys, orchestrator_ext.app, orchestrator_ext.engine.worker, orchestrator_runtimes.runner\n"
        "from orchestrator_ext import tracing\n"
        "assert tracing.setup() is False and tracing.traceparent() is None and tracing.job_trace() is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_request_span_computes_per_request_only_what_changes() -> None:
    """``request_spans`` replaces the tornado instrumentation's per-request lookups with kept or cheaper answers.

    The same answers as the instrumentation's own functions; fails if an upgrade stops calling them by these names.
    """
    import tornado.httputil
    import tornado.web
    from opentelemetry.instrumentation import tornado as instrumentation
    from opentelemetry.util.http import redact_url, sanitize_method

    from orchestrator_ext.observability import request_spans

    def uses(function: str, name: str) -> bool:
        return name in vars(instrumentation)[function].__code__.co_names

    assert uses("_get_default_span_name", "find_matched_rule")
    assert uses("_get_default_span_name", "route_from_rule")
    assert uses("_start_span", "_get_default_span_name")
    assert uses("_prepare", "_record_prepare_metrics")
    assert uses("_on_finish", "_record_on_finish_metrics")
    assert uses("_get_attributes_from_request", "redact_url")
    assert uses("_get_attributes_from_request", "sanitize_method")
    assert uses("_collect_custom_request_headers_attributes", "get_custom_headers")

    class Agent(tornado.web.RequestHandler):
        def get(self, agent_id: str) -> None:
            self.write(agent_id)

    class ApiAgent(Agent):
        route = "/agents/{agent_id}"

    application = tornado.web.Application(
        [(r"/other", tornado.web.RequestHandler), (r"/agents/([^/]+)", Agent), (r"/api/agents/([^/]+)", ApiAgent)]
    )

    def handler(kind: type[Agent], path: str, method: str = "GET") -> Agent:
        connection = tornado.httputil.HTTPConnection()
        connection.set_close_callback = lambda callback: None  # type: ignore[method-assign]
        start = tornado.httputil.RequestStartLine(method, path, "HTTP/1.1")
        headers = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1"})
        request = tornado.httputil.HTTPServerRequest(connection=connection, start_line=start, headers=headers)
        return kind(application, request)

    plain = handler(Agent, "/agents/42?token=secret")
    looked_up: list[object] = []
    original = request_spans._FIND_RULE
    request_spans._FIND_RULE = lambda h: looked_up.append(h) or original(h)
    try:
        rules = {id(request_spans._matched_rule(plain)) for _ in range(5)}
        named = request_spans._span_name(handler(ApiAgent, "/api/agents/42"))
    finally:
        request_spans._FIND_RULE = original
    assert len(looked_up) == 1  # one lookup for the plain handler; the API one was named without any
    assert len(rules) == 1
    assert named == "GET /agents/{agent_id}"
    rule = request_spans._matched_rule(plain)
    assert rule is not None
    assert request_spans._route(rule, plain) == request_spans._route(rule, plain) == "/agents/{agent_id}"
    request_spans.install()
    try:
        assert instrumentation._get_default_span_name(plain) == "GET /agents/{agent_id}"
        attributes = instrumentation._get_attributes_from_request(plain.request, instrumentation._StabilityMode.DEFAULT)
    finally:
        request_spans.uninstall()
    assert attributes["http.target"] == attributes["http.url"] == "/agents/42"  # no query string, ever
    assert vars(instrumentation)["sanitize_method"] is sanitize_method
    for method in ("GET", "PUT", "QUERY", "get", "BREW", None):
        assert request_spans._sanitize_method(method) == sanitize_method(method)  # type: ignore[arg-type]
    for uri in ("/a/b?token=x&y=1", "/a", "http://user:pw@host/p?token=x", "//host/p?q"):
        assert request_spans._path_only(uri) == redact_url(uri).partition("?")[0]


def test_the_span_encoder_sends_the_bytes_the_sdk_would() -> None:
    """``observability.export`` writes the OTLP request itself: byte for byte what the SDK's encoder gives.

    Spans of every shape: two scopes (one with a schema URL), a remote parent with a trace state, links,
    events, an error status, lists, None, bools beside ints, non-ASCII text, names and values longer than
    127 bytes (lengths of two bytes). Also fails if an upgrade of the exporter stops calling
    ``encode_spans`` by that name, or the resource stops hashing as the SDK's.
    """
    from opentelemetry.exporter.otlp.proto.common._internal import trace_encoder
    from opentelemetry.exporter.otlp.proto.http import trace_exporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import (
        Link,
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        Status,
        StatusCode,
        TraceFlags,
        set_span_in_context,
    )
    from opentelemetry.trace.span import TraceState

    from orchestrator_ext.observability import export

    assert "encode_spans" in trace_exporter.OTLPSpanExporter.export.__code__.co_names
    created = Resource.create({"service.name": "orchestrator"})
    kept = export.kept_hash(created)
    assert kept == created
    assert hash(kept) == hash(created)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=kept)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test", "1.0", schema_url="https://opentelemetry.io/schemas/1.21.0")
    other = provider.get_tracer("other")
    state = TraceState([("vendor", "value"), ("other", "1")])
    remote = set_span_in_context(NonRecordingSpan(SpanContext(0xABC, 0xDEF, True, TraceFlags(1), state)))
    for n in range(3):  # repeated pairs come from the cache; True and 1 stay a bool and an int
        values = {"db.statement": "SELECT 1 — é", "n": n, "flag": True, "one": 1, "ratio": 0.5, "tags": ["a", "b"]}
        span = tracer.start_span(f"span {n}", kind=SpanKind.CLIENT, attributes={**values, "none": None})  # type: ignore[dict-item]
        span.add_event("retry", {"attempt": n})
        span.set_status(Status(StatusCode.ERROR, "the statement failed"))
        span.end()
        links = [Link(SpanContext(0x1, 0x2, False), {"why": "batch"})]
        other.start_span("", context=remote, kind=SpanKind.CONSUMER, links=links).end()
        tracer.start_span("x" * 300, attributes={"long": "y" * 500, "big": 2**40, "negative": -5}).end()
    spans = memory.get_finished_spans()
    assert export.encode_request(spans) == trace_encoder.encode_spans(spans).SerializeToString()
    assert export.encode_request(spans) == trace_encoder.encode_spans(spans).SerializeToString()
    export.cache()
    try:
        assert trace_exporter.encode_spans(spans).SerializePartialToString() == export.encode_request(spans)
    finally:
        export.uncache()
    assert trace_exporter.encode_spans is trace_encoder.encode_spans
    provider.shutdown()


def test_psycopg_statement_spans_get_the_attributes_the_instrumentation_sets() -> None:
    """``statements.install`` keeps a SQL text's name and attributes; the span gets what psycopg's tracer sets.

    Also fails if an upgrade of the instrumentation stops calling the two methods by these names.
    """
    from opentelemetry.instrumentation.dbapi import CursorTracer, DatabaseApiIntegration

    from orchestrator_ext.observability import statements

    names = CursorTracer.traced_execution_async.__code__.co_names
    assert "get_operation_name" in names
    assert "_populate_span" in names

    class Recorded:
        def __init__(self) -> None:
            self.attributes: dict[str, Any] = {}

        def is_recording(self) -> bool:
            return True

        def set_attributes(self, attributes: dict[str, Any]) -> None:
            self.attributes.update(attributes)

        def set_attribute(self, key: str, value: Any) -> None:
            self.attributes[key] = value

    integration = DatabaseApiIntegration("psycopg", "postgresql")
    integration.database = "orchestrator"
    integration.span_attributes = {"db.user": "orchestrator_app", "net.peer.name": "/tmp/socket"}
    tracer = CursorTracer(integration)
    queries = ("/* read */ SELECT 1 FROM t WHERE id = %(id)s", "EXECUTE orch_1(%(u)s); EXECUTE orch_2(%(v)s)", "")
    expected = []
    for query in queries:
        span = Recorded()
        tracer._populate_span(span, None, query, {"id": 1})  # type: ignore[arg-type]
        expected.append((tracer.get_operation_name(None, (query,)), list(span.attributes.items())))
    statements.install()
    try:
        for _ in range(2):  # the second time from what was kept
            for query, (name, attributes) in zip(queries, expected, strict=True):
                span = Recorded()
                tracer._populate_span(span, None, query, {"id": 1})  # type: ignore[arg-type]
                assert list(span.attributes.items()) == attributes
                assert tracer.get_operation_name(None, (query,)) == name
    finally:
        statements.uninstall()
    assert expected[0][0] == "SELECT"
    assert ("db.statement", queries[0]) in expected[0][1]
    assert all(key != "db.statement.parameters" for _, attributes in expected for key, _ in attributes)


def _memory_tracer() -> tuple[Any, Any, Any]:
    """A tracer exporting to memory, sampling as the server does (ParentBased over NoOrphanClientSpans)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased

    from orchestrator_ext.observability.otel import NoOrphanClientSpans

    memory = InMemorySpanExporter()
    # a CrewAI run in this process (tests/runtimes) leaves OTEL_SDK_DISABLED=true in os.environ (its quiet
    # environment), and a provider made then hands out no-op tracers: this one is made with the SDK on
    quieted = os.environ.pop("OTEL_SDK_DISABLED", None)
    try:
        provider = TracerProvider(sampler=ParentBased(root=NoOrphanClientSpans()))
    finally:
        if quieted is not None:
            os.environ["OTEL_SDK_DISABLED"] = quieted
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, provider.get_tracer("test"), memory


def _shape(span: Any) -> tuple[Any, ...]:
    """What a span says, but its ids, times and an exception's stack trace (whose frames differ by who caught it)."""
    parent = span.parent.span_id if span.parent else None
    events = [
        (event.name, {k: v for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"})
        for event in span.events
    ]
    status = (span.status.status_code, span.status.description)
    return span.name, span.kind, dict(span.attributes), status, parent, events


def test_the_request_span_is_the_instrumentations() -> None:
    """``request_spans._start_span``: the span tornado's instrumentation starts, with its route, ended as it ends it.

    A plain request, one continuing a caller's trace (``traceparent``), and one failing with a 500.
    """
    import tornado.httputil
    import tornado.web
    from opentelemetry import context, trace
    from opentelemetry.instrumentation import tornado as instrumentation

    from orchestrator_ext.observability import request_spans

    class Agent(tornado.web.RequestHandler):
        route = "/agents/{agent_id}"

    application = tornado.web.Application([(r"/api/agents/([^/]+)", Agent)])
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def handler(parent: str | None) -> Agent:
        connection = tornado.httputil.HTTPConnection()
        connection.set_close_callback = lambda callback: None  # type: ignore[method-assign]
        start = tornado.httputil.RequestStartLine("GET", "/api/agents/42?token=secret", "HTTP/1.1")
        headers = {"Host": "127.0.0.1:8888", "User-Agent": "curl/8"} | ({"traceparent": parent} if parent else {})
        request = tornado.httputil.HTTPServerRequest(
            connection=connection, start_line=start, headers=tornado.httputil.HTTPHeaders(headers)
        )
        request.remote_ip = "127.0.0.1"
        return Agent(application, request)

    provider, tracer, memory = _memory_tracer()
    mode = instrumentation._StabilityMode.DEFAULT
    cases = ((None, None), (caller, None), (None, ValueError("boom")))
    request_spans.install()
    try:
        for lean in (False, True):
            start = request_spans._start_span if lean else request_spans._START_SPAN
            for parent, error in cases:
                served = handler(parent)
                served._status_code = 500 if error else 200
                traced = start(tracer, served, mode)
                assert trace.get_current_span() is traced.span
                instrumentation._finish_span(tracer, served, error, mode)
                assert trace.get_current_span() is trace.INVALID_SPAN
            assert context.get_current() == {}
    finally:
        request_spans.uninstall()
    spans = memory.get_finished_spans()
    assert len(spans) == 6
    for original, ours in zip(spans[:3], spans[3:], strict=True):
        name, kind, attributes, status, parent, events = _shape(original)
        assert _shape(ours) == (name, kind, attributes | {"http.route": "/agents/{agent_id}"}, status, parent, events)
        assert ours.context.trace_id == original.context.trace_id or original.parent is None
    assert spans[4].context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert spans[3].attributes["http.target"] == "/api/agents/42"  # no query string
    assert spans[5].status.status_code.name == "ERROR"
    assert [event.name for event in spans[5].events] == ["exception"]
    provider.shutdown()


def test_psycopg_async_statement_spans_are_the_instrumentations() -> None:
    """``statements._traced_execution_async`` records the span psycopg's tracer would, and none outside a trace.

    A statement that succeeds, one that fails (the error recorded as the instrumentation does),
    and one outside any span (the sampler keeps none: no span either way).
    """
    import asyncio

    from opentelemetry import trace
    from opentelemetry.instrumentation.dbapi import CursorTracer, DatabaseApiIntegration

    from orchestrator_ext.observability import statements

    provider, tracer, memory = _memory_tracer()
    integration = DatabaseApiIntegration("psycopg", "postgresql", tracer_provider=provider)
    integration.database = "orchestrator"
    integration.span_attributes = {"db.user": "orchestrator_app", "net.peer.name": "/tmp/socket"}
    cursor_tracer = CursorTracer(integration)
    query = "EXECUTE orch_1(%(u)s); EXECUTE orch_2(%(v)s)"

    async def succeed(*_args: Any) -> str:
        return "rows"

    async def fail(*_args: Any) -> str:
        raise RuntimeError("the connection is closed")

    async def statements_of(traced: Any) -> None:
        assert await traced(cursor_tracer, None, succeed, query, {"u": 1}) == "rows"
        try:
            await traced(cursor_tracer, None, fail, query, {"u": 1})
        except RuntimeError:
            pass
        else:
            raise AssertionError("the error was swallowed")

    original = CursorTracer.traced_execution_async
    for traced in (original, statements._traced_execution_async):
        with tracer.start_as_current_span("GET /agents"):
            asyncio.run(statements_of(traced))
        asyncio.run(statements_of(traced))  # no request: no span
    finished = memory.get_finished_spans()
    requests = [span for span in finished if span.name == "GET /agents"]
    spans = [span for span in finished if span.kind.name == "CLIENT"]
    assert len(spans) == 4
    for n, span in enumerate(spans):
        assert span.parent is not None
        assert span.parent.span_id == requests[n // 2].context.span_id
    assert [_shape(span)[:4] + _shape(span)[5:] for span in spans[:2]] == [
        _shape(span)[:4] + _shape(span)[5:] for span in spans[2:]
    ]
    assert spans[2].name == "EXECUTE"
    assert spans[2].attributes["db.statement"] == query
    assert spans[3].status.status_code.name == "ERROR"
    assert trace.get_current_span() is trace.INVALID_SPAN
    statements.install()
    try:
        assert CursorTracer.traced_execution_async is statements._traced_execution_async
    finally:
        statements.uninstall()
    assert CursorTracer.traced_execution_async is original
    provider.shutdown()


def test_a_traced_run_imports_nothing_its_fork_server_did_not() -> None:
    """What a traced run's process needs is imported by ``tracing.preload`` in the fork server, once for all runs.

    (``requests``, which the exporter no longer imports with itself, cost ~50 ms of every traced run.)
    """
    code = (
        "import io, json, sys\n"
        "from orchestrator_runtimes import tracing\n"
        "tracing.preload()\n"
        "before = set(sys.modules)\n"
        "parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'\n"
        "job = {'trace': {'traceparent': parent, 'endpoint': 'http://127.0.0.1:9/v1/traces'}, 'framework': 'x'}\n"
        "channel = tracing.traced_channel(job, io.StringIO())\n"
        "assert channel.__class__.__name__ == 'RunTrace'\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
