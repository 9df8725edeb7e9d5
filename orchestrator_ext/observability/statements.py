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
Imported only when tracing is on (it imports OpenTelemetry).
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation._semconv import (
    _OpenTelemetrySemanticConventionStability,
    _OpenTelemetryStabilitySignalType,
    _set_db_operation,
    _set_db_statement,
    _set_db_system,
)
from opentelemetry.instrumentation.sqlalchemy.engine import (
    _get_attributes_from_cursor_or_conn,
    _get_attributes_from_url,
    _get_db_name_from_cursor_or_conn,
    _normalize_vendor,
)
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
