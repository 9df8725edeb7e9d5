"""A tracer exporting to memory, as the server samples, and what a finished span says (``span_shape``):
the tests that compare our spans with the instrumentations' own make their spans with these."""

from __future__ import annotations

import os
from typing import Any


def memory_tracer() -> tuple[Any, Any, Any]:
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


def span_shape(span: Any) -> tuple[Any, ...]:
    """What a span says, but its ids, times and an exception's stack trace (whose frames differ by who caught it)."""
    parent = span.parent.span_id if span.parent else None
    events = [
        (event.name, {k: v for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"})
        for event in span.events
    ]
    status = (span.status.status_code, span.status.description)
    return span.name, span.kind, dict(span.attributes), status, parent, events
