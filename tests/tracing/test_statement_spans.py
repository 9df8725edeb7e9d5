"""``observability.statements``, our lean path through psycopg's instrumentation: a statement's span gets
the name and attributes the instrumentation's tracer gives it, and is recorded as it records it."""

from __future__ import annotations

from typing import Any

from tests.tracing.memory import memory_tracer, span_shape


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


def test_psycopg_async_statement_spans_are_the_instrumentations() -> None:
    """``statements._traced_execution_async`` records the span psycopg's tracer would, and none outside a trace.

    A statement that succeeds, one that fails (the error recorded as the instrumentation does),
    and one outside any span (the sampler keeps none: no span either way).
    """
    import asyncio

    from opentelemetry import trace
    from opentelemetry.instrumentation.dbapi import CursorTracer, DatabaseApiIntegration

    from orchestrator_ext.observability import statements

    provider, tracer, memory = memory_tracer()
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
    assert [span_shape(span)[:4] + span_shape(span)[5:] for span in spans[:2]] == [
        span_shape(span)[:4] + span_shape(span)[5:] for span in spans[2:]
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
