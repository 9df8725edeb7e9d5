"""One client span per SQL statement of the server's engine, as SQLAlchemy's instrumentation records it, for less.

``SQLAlchemyInstrumentor`` recomputes, for every statement, what does not change between
statements of one connection: it re-parses the engine's URL, asks libpq for the host, port
and database name (three calls into the driver), runs a regular expression over the SQL
for the span's name, and builds the attributes one helper call at a time; it also counts
pool checkouts and checkins for metrics that no meter provider receives (four calls per
request). These listeners record the same spans with the same attributes (the
instrumentation's own helpers compute them, so ``OTEL_SEMCONV_STABILITY_OPT_IN`` is
honored), computing a connection's once (kept in its ``info``) and a statement's once per
distinct SQL text; the statement's values are never recorded, as before.

Statements sent on plain psycopg connections (the lists' fast reads) are traced by psycopg's
instrumentation, whose cursor tracer, for every statement, parses the SQL's first word
with a regular expression and sets the span's attributes one locked, validated call at a
time: :func:`install` makes it compute a SQL text's name and attributes once and set them
in one call (the same span). Its asynchronous execution (the lists' reads) also started the
span as the current one (two context switches around a statement under which nothing starts
a span) and gave it its attributes after its start: :func:`_traced_execution_async` starts
the same span with its attributes, and skips it, as the sampler would drop it, outside a
kept trace (the workers' polling), where the instrumentation asked the sampler each time.
Imported only when tracing is on (it imports OpenTelemetry).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability,
    _OpenTelemetryStabilitySignalType,
    _report_new,
    _set_db_name,
    _set_db_operation,
    _set_db_statement,
    _set_db_system,
)
from opentelemetry.instrumentation.dbapi import CursorTracer
from opentelemetry.instrumentation.sqlalchemy.engine import (
    _get_attributes_from_cursor_or_conn,
    _get_attributes_from_url,
    _get_db_name_from_cursor_or_conn,
    _normalize_vendor,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine

_CONNECTION_KEY = "_orchestrator_otel_attributes"
_LEADING_COMMENT = re.compile(r"^/\*.*?\*/")
#: at most this many distinct statements' attributes are kept (the application's SQL is a finite set)
_KEPT_STATEMENTS = 2048


class StatementSpans:
    """``before_cursor_execute`` starts a statement's span, ``after_cursor_execute`` or ``handle_error`` ends it."""

    def __init__(self, engine: Engine, tracer: trace.Tracer) -> None:
        _OpenTelemetrySemanticConventionStability._initialize()  # type: ignore[no-untyped-call]
        self._db_mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
            _OpenTelemetryStabilitySignalType.DATABASE
        )
        self._http_mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
            _OpenTelemetryStabilitySignalType.HTTP
        )
        self._tracer = tracer
        self._vendor = _normalize_vendor(engine.name)  # type: ignore[no-untyped-call]
        self._statements: dict[tuple[str, str | None], tuple[str, dict[str, Any]]] = {}
        self._engine = engine
        event.listen(engine, "before_cursor_execute", self._before, retval=True)
        event.listen(engine, "after_cursor_execute", _after)
        event.listen(engine, "handle_error", _on_error)

    def remove(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", _after)
        event.remove(self._engine, "handle_error", _on_error)

    def _before(
        self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, _executemany: bool
    ) -> tuple[str, Any]:
        # what the sampler (ParentBased) would not keep: a statement outside any request or run, or
        # in a trace not kept (OTEL_TRACES_SAMPLER_ARG): skip the span's work
        parent = trace.get_current_span().get_span_context()
        if not (parent.is_valid and parent.trace_flags.sampled):
            return statement, params
        db_name, connection = self._of_connection(conn, cursor)
        name, attributes = self._of_statement(statement, db_name)
        span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes={**connection, **attributes})
        context._otel_span = span
        return statement, params

    def _of_connection(self, conn: Any, cursor: Any) -> tuple[str | None, dict[str, Any]]:
        """The database's name and the connection's attributes, as the instrumentation finds them, once."""
        kept: tuple[str | None, dict[str, Any]] | None = conn.info.get(_CONNECTION_KEY)
        if kept is None:
            attributes, found = _get_attributes_from_url(  # type: ignore[no-untyped-call]
                conn.engine.url, self._db_mode, self._http_mode
            )
            if not found:
                attributes = _get_attributes_from_cursor_or_conn(  # type: ignore[no-untyped-call]
                    self._vendor, conn, cursor, attributes, self._db_mode, self._http_mode
                )
            db_name = _get_db_name_from_cursor_or_conn(self._vendor, conn, cursor)  # type: ignore[no-untyped-call]
            kept = (db_name, attributes)
            conn.info[_CONNECTION_KEY] = kept
        return kept

    def _of_statement(self, statement: str, db_name: str | None) -> tuple[str, dict[str, Any]]:
        """The span's name (its first word and the database) and its statement attributes, once per SQL text."""
        key = (statement, db_name)
        kept = self._statements.get(key)
        if kept is None:
            tokens = _LEADING_COMMENT.sub("", statement).split(None, 1) if isinstance(statement, str) else []
            name = " ".join([*tokens[:1], *([db_name] if db_name else [])]) or str(self._vendor)
            attributes: dict[str, Any] = {}
            _set_db_statement(attributes, statement, self._db_mode)
            _set_db_system(attributes, self._vendor, self._db_mode)
            _set_db_operation(attributes, name, self._db_mode)
            kept = (name, attributes)
            if len(self._statements) < _KEPT_STATEMENTS:
                self._statements[key] = kept
        return kept


def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
    span = getattr(context, "_otel_span", None)
    if span is not None:
        span.end()


def _on_error(exception_context: Any) -> None:
    span = getattr(exception_context.execution_context, "_otel_span", None)
    if span is None:
        return
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, str(exception_context.original_exception)))
    span.end()


#: psycopg's cursor tracer's own methods, which :func:`uninstall` puts back
_OPERATION_NAME = CursorTracer.get_operation_name
_POPULATE_SPAN = CursorTracer._populate_span
_TRACED_ASYNC = CursorTracer.traced_execution_async
_operations: dict[str, str] = {}
_attributes: dict[tuple[str, str | None, str, Any], dict[str, Any]] = {}


def _operation_name(tracer: CursorTracer[Any], cursor: Any, args: Any) -> str:
    """The SQL's first word, as the tracer finds it, once per SQL text."""
    query = args[0] if args else None
    if type(query) is not str:
        return _OPERATION_NAME(tracer, cursor, args)
    name = _operations.get(query)
    if name is None:
        name = _OPERATION_NAME(tracer, cursor, args)
        if len(_operations) < _KEPT_STATEMENTS:
            _operations[query] = name
    return name


def _populate_span(tracer: CursorTracer[Any], span: Any, cursor: Any, *args: Any) -> None:
    """The tracer's attributes for a statement (system, database, SQL, the connection's), set in one call."""
    integration = tracer._db_api_integration
    query = args[0] if args else None
    if type(query) is not str or integration.capture_parameters or not span.is_recording():
        _POPULATE_SPAN(tracer, span, cursor, *args)
        return
    span.set_attributes(_statement_attributes(tracer, query))


def _statement_attributes(tracer: CursorTracer[Any], query: str) -> dict[str, Any]:
    """What :func:`_populate_span` sets, for a statement whose values are not captured."""
    integration = tracer._db_api_integration
    mode = integration._sem_conv_opt_in_mode_db
    key = (integration.database_system, integration.database, query, mode)
    attributes = _attributes.get(key)
    if attributes is None:
        attributes = {}
        _set_db_system(attributes, integration.database_system, mode)
        _set_db_name(attributes, integration.database, mode)
        _set_db_statement(attributes, query, mode)
        if len(_attributes) < _KEPT_STATEMENTS:
            _attributes[key] = attributes
    return {**attributes, **integration.span_attributes}


async def _traced_execution_async(
    tracer: CursorTracer[Any], cursor: Any, query_method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Any:
    """psycopg's asynchronous statement span: the same span, its attributes given at its start, not made current.

    What the instrumentation does otherwise (SQL comments, captured values, the new conventions'
    metrics, a query given as bytes or a composed SQL object) is left to it.
    """
    integration = tracer._db_api_integration
    query = args[0] if args else None
    if (
        type(query) is not str
        or tracer._commenter_enabled
        or integration.capture_parameters
        or _report_new(integration._sem_conv_opt_in_mode_db)
    ):
        return await _TRACED_ASYNC(tracer, cursor, query_method, *args, **kwargs)
    parent = trace.get_current_span().get_span_context()
    if not (parent.is_valid and parent.trace_flags.sampled) or not is_instrumentation_enabled():
        return await query_method(*args, **kwargs)  # the sampler keeps no statement outside a kept trace
    name = _operation_name(tracer, cursor, args) or integration.database or integration.name
    span = integration._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=_statement_attributes(tracer, query))
    try:
        return await query_method(*args, **kwargs)
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        span.end()


def install() -> None:
    CursorTracer.get_operation_name = _operation_name  # type: ignore[method-assign,assignment]
    CursorTracer._populate_span = _populate_span  # type: ignore[method-assign,assignment]
    CursorTracer.traced_execution_async = _traced_execution_async  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    CursorTracer.get_operation_name = _OPERATION_NAME  # type: ignore[method-assign]
    CursorTracer._populate_span = _POPULATE_SPAN  # type: ignore[method-assign]
    CursorTracer.traced_execution_async = _TRACED_ASYNC  # type: ignore[method-assign]
    _operations.clear()
    _attributes.clear()
