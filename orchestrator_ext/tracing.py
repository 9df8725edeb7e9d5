"""OpenTelemetry traces: one trace from ``POST .../execute`` through the worker and the run's process.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set. Off, nothing of OpenTelemetry is imported and every function here
returns at its first line (``bench/overhead.py`` measures that it costs
nothing). On (:func:`setup`), :mod:`.observability.otel` starts the SDK with
an OTLP/HTTP exporter and the instrumentations of tornado (one span per
request), SQLAlchemy and psycopg (one per statement, its SQL without the
values) and httpx; and:

- the execution row keeps the request's W3C ``traceparent`` (:func:`traceparent`),
- the worker that claims it continues that trace (:func:`begin_run`): a span for
  the execution from its claim to its recorded end, the claim, each notebook
  cell (:func:`run_events`) and the statements it makes,
- the run's own process gets the trace (:func:`job_trace`, ``TRACEPARENT``) and
  exports its spans itself: each framework step, each model call with its tokens
  (``orchestrator_runtimes.tracing``),
- every log line written inside a span carries its ``trace_id`` and ``span_id``.

Where ids and names come from, and how to read one run's trace: docs/operations/tracing.md.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .engine.events import EventWriter, RunEvents

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from .engine.queue import ClaimedRun
    from .observability.otel import RunSpans

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
#: the service name of the server and workers (``OTEL_SERVICE_NAME`` wins); runs report as ``<name>-run``
SERVICE_NAME = "orchestrator"

#: True once :func:`setup` started the SDK in this process
_on = False


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process should trace: an OTLP endpoint is set and the SDK is not disabled."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(environ.get(TRACES_ENDPOINT_ENV) or environ.get(ENDPOINT_ENV))


def active() -> bool:
    return _on


def traces_endpoint(environ: Mapping[str, str] = os.environ) -> str:
    """The OTLP/HTTP URL spans go to, as the SDK's exporter computes it (``.../v1/traces``)."""
    explicit = environ.get(TRACES_ENDPOINT_ENV)
    if explicit:
        return explicit
    return environ.get(ENDPOINT_ENV, "").rstrip("/") + "/v1/traces"


def setup(service: str = SERVICE_NAME) -> bool:
    """Start tracing in this process when it is configured (once); whether it is on.

    Called by the server at start-up and by a standalone worker; both are one process
    in the personal mode. The SDK imports only here, so a process without an endpoint
    never pays for it.
    """
    global _on
    if _on:
        return True
    if not enabled():
        return False
    from .observability import logging as ologging

    try:
        from .observability import otel
    except ImportError as exc:  # the endpoint is set, the SDK is not installed: say which extra, run untraced
        logging.getLogger("orchestrator").warning(
            "%s is set but OpenTelemetry is not installed (%s): pip install 'orchestrator[otel]'", ENDPOINT_ENV, exc
        )
        return False
    otel.start(os.environ.get("OTEL_SERVICE_NAME") or service)
    ologging.trace_ids = otel.current_ids
    _on = True
    return True


def shutdown() -> None:
    """Send what is still buffered and stop (the server's and worker's stop)."""
    global _on
    if not _on:
        return
    from .observability import logging as ologging
    from .observability import otel

    otel.stop()
    ologging.trace_ids = None
    _on = False


def instrument_engine(engine: AsyncEngine) -> None:
    """Spans for the statements of this SQLAlchemy engine (the server's sessions)."""
    if _on:
        from .observability import otel

        otel.instrument_engine(engine)


def traceparent() -> str | None:
    """The W3C traceparent of the current span (None: tracing off, or no span), for the execution row."""
    if not _on:
        return None
    from .observability import otel

    return otel.current_traceparent()


def runner_preload() -> list[str]:
    """What the runners' fork servers import besides the frameworks: the SDK while tracing (one import for all runs)."""
    if not _on:
        return []
    from orchestrator_runtimes.tracing import PRELOAD_NAME

    return [PRELOAD_NAME]


def clock() -> int:
    """Now, in the SDK's nanoseconds (0 when off): when the worker began to claim."""
    return time.time_ns() if _on else 0


class _NoRun:
    """What :func:`begin_run` gives when tracing is off: does nothing."""

    def outcome(self, status: str, error_kind: str | None = None) -> None:
        return None

    def end(self) -> None:
        return None


_NO_RUN = _NoRun()


def begin_run(run: ClaimedRun, worker: str, asked: int = 0) -> RunSpans | _NoRun:
    """The span of one attempt, in the trace of the request that queued it, current from here on.

    ``asked`` (from :func:`clock`) is when the worker began the claim that returned it: the
    claim is a span of its own. Call ``outcome(status)`` once known and ``end()`` at the end.
    """
    if not _on:
        return _NO_RUN
    from .observability import otel

    return otel.RunSpans(run, worker, asked)


def run_events(
    writer: EventWriter, execution_id: uuid.UUID, org_id: uuid.UUID, attempt: int, max_log_bytes: int
) -> RunEvents:
    """The events of one attempt; with tracing on, each notebook cell is also a span."""
    if not _on:
        return RunEvents(writer, execution_id, org_id, attempt, max_log_bytes)
    from .observability import otel

    return otel.TracedRunEvents(writer, execution_id, org_id, attempt, max_log_bytes)


def job_trace() -> dict[str, Any] | None:
    """What the run's process needs to continue the trace: its parent and where to send spans.

    Only the endpoint goes: never ``OTEL_EXPORTER_OTLP_HEADERS``, which may hold the
    collector's credentials (the run executes its owner's code).
    """
    if not _on:
        return None
    parent = traceparent()
    if parent is None:
        return None
    name = os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME
    return {"traceparent": parent, "endpoint": traces_endpoint(), "service": f"{name}-run"}
