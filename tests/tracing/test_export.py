"""``observability.export``, our OTLP encoder: the bytes the SDK's own encoder would send."""

from __future__ import annotations


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
