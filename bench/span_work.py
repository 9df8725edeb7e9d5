"""Tracing's own CPU per span, in one process: what the machine's load moves least.

    python bench/span_work.py        # prints JSON; bench/overhead.py runs it and prints its table

The server's spans as ``orchestrator_ext.observability`` makes them, each measured alone in
CPU time (``time.process_time``, the best of many repeats, so time the process waited for a
core is not counted): a request span (tornado's instrumentation around a handler of the API,
the handler's own construction taken away), a SQLAlchemy statement span (the engine's
listeners), a psycopg statement span (the lists' fast reads; the event loop's own turn taken
away) and the export thread's encoding of one span. The request and psycopg spans are also
measured by the instrumentations' own functions (``instrumentations``), as they were before
``request_spans._start_span`` and ``statements._traced_execution_async``. Caches are warm and
the heap small: a server pays more (its caches are shared with everything else it does, and
its collector walks a larger heap); these are the floor, not the figure.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tornado.httputil
import tornado.web
from opentelemetry import trace
from opentelemetry.instrumentation import tornado as tornado_instrumentation
from opentelemetry.instrumentation.dbapi import CursorTracer, DatabaseApiIntegration
from opentelemetry.instrumentation.tornado import TornadoInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind

from orchestrator_ext.observability import export, request_spans, statements
from orchestrator_ext.observability.otel import NoOrphanClientSpans

STATEMENT = "SELECT agents.id, agents.org_id FROM agents WHERE agents.id = %(id_1)s::UUID"
CONNECTION: dict[str, Any] = {
    "db.user": "orchestrator_app",
    "net.peer.name": "/tmp/orchestrator",
    "net.peer.port": 5432,
}


class _Kept(SpanExporter):
    """Keeps the last spans exported, for the encoding measure."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans = list(spans)[-600:]
        return SpanExportResult.SUCCESS


class _Agent(tornado.web.RequestHandler):
    route = "/agents/{agent_id}"


def _handler(application: tornado.web.Application) -> _Agent:
    connection = tornado.httputil.HTTPConnection()
    connection.set_close_callback = lambda callback: None  # type: ignore[attr-defined]
    start = tornado.httputil.RequestStartLine("GET", "/orchestrator/api/v1/agents/42", "HTTP/1.1")
    headers = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1:8888", "User-Agent": "python-urllib3/2"})
    request = tornado.httputil.HTTPServerRequest(connection=connection, start_line=start, headers=headers)
    request.remote_ip = "127.0.0.1"
    return _Agent(application, request)


def best_us(work: Callable[[], Any], number: int = 300, repeat: int = 30) -> float:
    """CPU microseconds per call: the best of ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(work, number=number, repeat=repeat, timer=time.process_time)) / number * 1e6


def measure() -> dict[str, float]:
    kept = _Kept()
    provider = TracerProvider(sampler=ParentBased(root=NoOrphanClientSpans()))
    provider.add_span_processor(BatchSpanProcessor(kept, schedule_delay_millis=200))
    tracer = provider.get_tracer("orchestrator")
    request_spans.install()
    statements.install()
    TornadoInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    application = tornado.web.Application([(r"/orchestrator/api/v1/agents/([^/]+)", _Agent)])
    integration = DatabaseApiIntegration("psycopg", "postgresql", tracer_provider=provider)
    integration.database = "orchestrator"
    integration.span_attributes = dict(CONNECTION)
    cursor_tracer: CursorTracer[Any] = CursorTracer(integration)
    statement_attributes: dict[str, Any] = {
        "db.statement": STATEMENT,
        "db.system": "postgresql",
        "db.operation": "SELECT",
    }
    loop = asyncio.new_event_loop()

    async def query(*_args: Any) -> None:
        return None

    def request() -> None:
        handler = _handler(application)
        handler.prepare()
        handler.on_finish()

    def sqlalchemy_statement() -> None:  # what StatementSpans' before and after listeners do
        parent = trace.get_current_span().get_span_context()
        if parent.is_valid and parent.trace_flags.sampled:
            attributes = {**CONNECTION, "db.name": "orchestrator", **statement_attributes}
            tracer.start_span("SELECT orchestrator", kind=SpanKind.CLIENT, attributes=attributes).end()

    def psycopg_statement() -> None:
        statement = cursor_tracer.traced_execution_async(None, query, "EXECUTE orch_1(%(u)s)", {})  # type: ignore[arg-type]
        loop.run_until_complete(statement)

    def loop_turn() -> None:
        loop.run_until_complete(query())

    found: dict[str, list[float]] = {}
    try:
        for _ in range(3):
            for ours in (False, True):
                start_span = request_spans._start_span if ours else request_spans._START_SPAN
                vars(tornado_instrumentation)["_start_span"] = start_span
                traced = statements._traced_execution_async if ours else statements._TRACED_ASYNC
                CursorTracer.traced_execution_async = traced  # type: ignore[method-assign,assignment]
                suffix = "" if ours else "_instrumentations"
                handler_alone = best_us(lambda: _handler(application))
                found.setdefault(f"request_span{suffix}", []).append(best_us(request) - handler_alone)
                with tracer.start_as_current_span("GET /agents"):
                    turn = best_us(loop_turn)
                    found.setdefault(f"psycopg_statement_span{suffix}", []).append(best_us(psycopg_statement) - turn)
                    if ours:
                        found.setdefault("sqlalchemy_statement_span", []).append(best_us(sqlalchemy_statement))
        provider.force_flush()
        spans = kept.spans[:300]
        found["encoding_per_span"] = [best_us(lambda: export.encode_request(spans), number=3, repeat=10) / len(spans)]
    finally:
        TornadoInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
        request_spans.uninstall()
        statements.uninstall()
        provider.shutdown()
        loop.close()
    return {name: round(min(values), 1) for name, values in found.items()}


if __name__ == "__main__":
    print(json.dumps(measure()))
