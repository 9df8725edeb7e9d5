"""The OpenTelemetry SDK behind :mod:`orchestrator_ext.tracing`; imported only when tracing is on.

What the instrumentations would record and must not: the query string of a
request URL (``?token=...`` authenticates jupyter-server requests) is cut from
every request span; statements are recorded as their SQL text with
placeholders, never their values (neither instrumentation captures
parameters unless asked); no header is recorded (none is asked for).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.tornado import TornadoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from .. import __version__
from ..engine.events import EventWriter, RunEvents
from ..engine.queue import ClaimedRun
from . import export, request_spans, statements
from .export import kept_hash
from .statements import StatementSpans

PROPAGATOR = TraceContextTextMapPropagator()
TRACER_NAME = "orchestrator"

_provider: TracerProvider | None = None
#: the engines' statement listeners, removed by :func:`stop`
_statement_spans: list[StatementSpans] = []


class NoOrphanClientSpans(Sampler):
    """Traces start at a request or a run; a statement or call made outside any is not kept.

    The workers poll the queue, renew leases and listen; the server probes its pools. Each
    of those statements would otherwise be a trace of one span, many per second, telling
    nothing. Roots of other kinds (requests, runs a schedule started) are kept, at
    ``OTEL_TRACES_SAMPLER_ARG`` (a ratio, default 1).
    """

    def __init__(self, ratio: float = 1.0) -> None:
        self._roots: Sampler = ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._roots.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "NoOrphanClientSpans"


def _ratio() -> float:
    try:
        return max(0.0, min(1.0, float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1"))))
    except ValueError:
        return 1.0


def start(service: str) -> None:
    """The process's tracer provider, exporting by OTLP/HTTP in batches, and the instrumentations."""
    global _provider
    resource = kept_hash(Resource.create({"service.name": service, "service.version": __version__}))
    export.cache()
    provider = TracerProvider(resource=resource, sampler=ParentBased(root=NoOrphanClientSpans(_ratio())))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    request_spans.install()
    TornadoInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    PsycopgInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)
    statements.install()
    HTTPXClientInstrumentor().instrument(tracer_provider=provider, skip_dep_check=True)


def stop() -> None:
    global _provider
    tornado = TornadoInstrumentor()  # type: ignore[no-untyped-call]
    for instrumentor in (tornado, PsycopgInstrumentor(), HTTPXClientInstrumentor()):
        instrumentor.uninstrument()
    request_spans.uninstall()
    statements.uninstall()
    export.uncache()
    while _statement_spans:
        _statement_spans.pop().remove()
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per statement of the engine; its connections lose psycopg's, which would repeat them."""
    # Not SQLAlchemyInstrumentor: besides the statements it wraps every Engine.connect() in a
    # "connect" span (a session taking a pooled connection: one per request saying nothing, a
    # fifth of tracing's CPU per request) and recomputes each statement's constant attributes
    # (see StatementSpans). The same statement spans, for less.
    _statement_spans.append(StatementSpans(engine.sync_engine, _tracer()))
    event.listen(engine.sync_engine, "connect", _plain_cursors)


def _plain_cursors(dbapi_connection: Any, _record: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    if isinstance(driver, psycopg.AsyncConnection):
        driver.cursor_factory = psycopg.AsyncCursor


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span as hex, for the log lines; None outside any."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, __version__, tracer_provider=_provider)


class RunSpans:
    """One attempt of a run, as a span under the request that queued it, current until :meth:`end`."""

    def __init__(self, run: ClaimedRun, worker: str, asked: int) -> None:
        # a fresh context: the worker's loops are no parent of a run
        carried = run.traceparent
        parent = PROPAGATOR.extract({"traceparent": carried}, Context()) if carried else Context()
        attributes: dict[str, Any] = {
            "orchestrator.execution.id": str(run.id),
            "orchestrator.org.id": str(run.org_id),
            "orchestrator.agent.id": str(run.agent_id),
            "orchestrator.workflow.id": str(run.workflow_id),
            "orchestrator.attempt": run.attempt,
            "orchestrator.framework": run.framework,
            "orchestrator.worker": worker,
        }
        if run.correlation_id:
            attributes["orchestrator.correlation_id"] = run.correlation_id
        tracer = _tracer()
        self.span = tracer.start_span(
            f"execution {run.framework}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            start_time=asked or None,
        )
        inside = trace.set_span_in_context(self.span, parent)
        if asked:
            claim = tracer.start_span("queue claim", context=inside, kind=SpanKind.CLIENT, start_time=asked)
            claim.set_attributes({"db.system": "postgresql", "orchestrator.worker": worker})
            claim.end()
        self._token = context.attach(inside)

    def outcome(self, status: str, error_kind: str | None = None) -> None:
        self.span.set_attribute("orchestrator.execution.status", status)
        if error_kind:
            self.span.set_attribute("error.type", error_kind)
        if status != "succeeded" and status != "waiting":
            self.span.set_status(Status(StatusCode.ERROR, status))

    def end(self) -> None:
        self.span.end()
        context.detach(self._token)


class TracedRunEvents(RunEvents):
    """A notebook run's events, with a span per code cell (from its ``started`` step to its end)."""

    def __init__(
        self, writer: EventWriter, execution_id: uuid.UUID, org_id: uuid.UUID, attempt: int, max_log_bytes: int
    ) -> None:
        super().__init__(writer, execution_id, org_id, attempt, max_log_bytes)
        self._cells: dict[int, trace.Span] = {}

    def step(self, data: dict[str, Any]) -> None:
        cell = data.get("cell")
        if isinstance(cell, int):
            self._trace_cell(cell, data)
        super().step(data)

    def _trace_cell(self, cell: int, data: dict[str, Any]) -> None:
        state = data.get("state")
        if state == "started":
            self._cells[cell] = _tracer().start_span(f"cell {cell}", attributes={"orchestrator.cell": cell})
            return
        span = self._cells.pop(cell, None)
        if span is None:
            return
        span.set_attribute("orchestrator.cell.state", str(state))
        if state == "failed":
            span.set_status(Status(StatusCode.ERROR, "the cell raised"))
        span.end()
