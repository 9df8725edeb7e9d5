"""A run's own spans: its process continues the trace of the execution that started it.

The worker puts ``trace`` in the job when tracing is on (``{"traceparent",
"endpoint", "service"}``; orchestrator_ext.tracing). Then, in the run's
process only, :func:`traced_channel` starts the OpenTelemetry SDK with an
OTLP/HTTP exporter to that endpoint, sets ``TRACEPARENT`` (for code of the run
that continues the trace itself), and opens a ``run <framework>`` span under the
execution's. Through the channel it sees every message the run sends: each
``step`` becomes a span (its node, type, latency, model calls and tokens; never
its output), and the last message ends the run's span and sends the spans
before the worker reads it (the worker stops the process right after).
Each model call is a span too (:func:`model_call`), with its tokens; httpx's
instrumentation adds the HTTP request under it.

Without ``trace`` in the job nothing here imports OpenTelemetry.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any, Protocol

TRACEPARENT_ENV = "TRACEPARENT"
#: in a runner's ``--preload`` list (the worker adds it while tracing): import the SDK before any job
PRELOAD_NAME = "tracing"
#: how long the run's end may wait for its spans to be sent, in seconds
EXPORT_TIMEOUT_SECONDS = 2.0
#: a long run sends its spans by this many on the way, not all at its end
EXPORT_BATCH = 512
#: the runner protocol's last messages (a run's process sends one, then is stopped)
FINAL_PREFIXES = ('{"result"', '{"error"', '{"waiting"')
STEP_PREFIX = '{"event": "step"'

_tracer: Any = None


class Writer(Protocol):
    def write(self, text: str, /) -> int: ...


def preload() -> None:
    """Import what a traced run needs (~0.3 s) once, in the fork server, instead of in each run's process."""
    try:
        import concurrent.futures.thread  # noqa: F401  # Resource.create runs its detectors in a pool

        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.instrumentation.httpx
        import opentelemetry.sdk.resources
        import opentelemetry.sdk.trace.export
        import opentelemetry.trace.propagation.tracecontext  # noqa: F401
        import requests  # noqa: F401  # the exporter's session: not imported with the exporter (~50 ms a run)
    except ImportError:  # not installed where runs execute: they run untraced
        return


def traced_channel(job: dict[str, Any], channel: Writer) -> Writer:
    """``channel`` as it is (tracing off), or a channel that also makes the run's spans."""
    settings = job.get("trace")
    if not isinstance(settings, dict) or not settings.get("traceparent") or not settings.get("endpoint"):
        return channel
    try:
        return RunTrace(settings, job, channel)
    except ImportError:  # the SDK is not installed where this run executes: runs untraced
        return channel


class RunTrace:
    """The run's span, current while the run goes; each step a span; the spans sent before the end."""

    def __init__(self, settings: dict[str, Any], job: dict[str, Any], channel: Writer) -> None:
        import requests
        from opentelemetry import context, trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        global _tracer
        self.channel = channel
        os.environ[TRACEPARENT_ENV] = str(settings["traceparent"])
        resource = Resource.create({"service.name": str(settings.get("service") or "orchestrator-run")})
        # CrewAI's quiet environment sets OTEL_SDK_DISABLED for its own telemetry (CREWAI_DISABLE_TELEMETRY
        # still holds that off); the operator asked for this run's trace, so this provider records
        quieted = os.environ.pop("OTEL_SDK_DISABLED", None)
        try:
            self.provider = TracerProvider(resource=resource)
        finally:
            if quieted is not None:
                os.environ["OTEL_SDK_DISABLED"] = quieted
        # the run's environment is scrubbed (no proxy to find): skip requests' search of it and of ~/.netrc,
        # ~20 ms of the one export this process makes before it ends
        session = requests.Session()
        session.trust_env = False
        exporter = OTLPSpanExporter(endpoint=str(settings["endpoint"]), timeout=EXPORT_TIMEOUT_SECONDS, session=session)
        self.provider.add_span_processor(_at_the_end(exporter))
        # its dependency check reads the installed distributions' metadata (~25 ms): httpx is there, it imported
        HTTPXClientInstrumentor().instrument(tracer_provider=self.provider, skip_dep_check=True)
        _tracer = self.tracer = self.provider.get_tracer("orchestrator.runtimes")
        parent = TraceContextTextMapPropagator().extract({"traceparent": str(settings["traceparent"])})
        self.framework = str(job.get("framework", ""))
        attributes: dict[str, Any] = {
            "orchestrator.execution.id": str(job.get("execution_id", "")),
            "orchestrator.attempt": int(job.get("attempt", 1)),
            "orchestrator.framework": self.framework,
            "process.pid": os.getpid(),
        }
        self.span = self.tracer.start_span(f"run {self.framework}", context=parent, attributes=attributes)
        self.token = context.attach(trace.set_span_in_context(self.span, parent))
        self.ended = False

    def write(self, text: str, /) -> int:
        if text.startswith(STEP_PREFIX):
            self._step(json.loads(text).get("data") or {})
        elif text.startswith(FINAL_PREFIXES) and not self.ended:
            self._end(text)
        return self.channel.write(text)

    def _step(self, data: dict[str, Any]) -> None:
        """A step that ended now and took ``latency_ms``: a span under the run's."""
        end = time.time_ns()
        start = end - int(float(data.get("latency_ms") or 0) * 1_000_000)
        name = str(data.get("node") or data.get("agent") or "step")
        span = self.tracer.start_span(f"step {name}", start_time=start, attributes=step_attributes(data))
        span.end(end_time=end)

    def _end(self, text: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.ended = True
        if text.startswith('{"error"'):
            kind = str((json.loads(text).get("error") or {}).get("kind", "internal"))
            self.span.set_attribute("error.type", kind)
            self.span.set_status(Status(StatusCode.ERROR, kind))
        self.span.end()
        self.provider.force_flush(int(EXPORT_TIMEOUT_SECONDS * 1000))
        self._let_go()

    def _let_go(self) -> None:
        """Leave the process as untraced for its next run (a process serving several, engine/reuse.py): the run's
        span no longer current, httpx's instrumentation off (the next run's instruments it for its own provider:
        instrumenting twice would be a no-op, its HTTP spans sent to this run's provider), no tracer kept."""
        global _tracer
        from opentelemetry import context
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        with contextlib.suppress(Exception):  # a final message written from another thread: its context differs
            context.detach(self.token)
        HTTPXClientInstrumentor().uninstrument()
        _tracer = None
        self.provider.shutdown()


def _at_the_end(exporter: Any) -> Any:
    """A span processor that keeps the run's spans and sends them in one request when the run ends.

    A run's process is short-lived and is stopped right after its last message: one export at the
    end (and one per :data:`EXPORT_BATCH` spans on the way) beats the SDK's batch processor, whose
    thread costs a start per run and would send the same spans anyway.
    """
    import threading

    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    class AtTheEnd(SpanProcessor):
        def __init__(self) -> None:
            self.kept: list[ReadableSpan] = []
            self.lock = threading.Lock()

        def on_end(self, span: ReadableSpan) -> None:
            with self.lock:
                self.kept.append(span)
                full = len(self.kept) >= EXPORT_BATCH
            if full:
                self.force_flush()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            with self.lock:
                spans, self.kept = self.kept, []
            if spans:
                exporter.export(spans)
            return True

        def shutdown(self) -> None:
            self.force_flush()
            exporter.shutdown()

    return AtTheEnd()


def step_attributes(data: dict[str, Any]) -> dict[str, Any]:
    """What a step span says: where and how long, the model calls and tokens; never the step's output."""
    attributes: dict[str, Any] = {
        "orchestrator.step.node": str(data.get("node") or ""),
        "orchestrator.step.type": str(data.get("type") or ""),
        "orchestrator.step.latency_ms": float(data.get("latency_ms") or 0),
        "orchestrator.step.model_calls": int(data.get("model_calls") or 0),
        "gen_ai.usage.input_tokens": int(data.get("prompt_tokens") or 0),
        "gen_ai.usage.output_tokens": int(data.get("completion_tokens") or 0),
    }
    if data.get("agent"):
        attributes["orchestrator.step.agent"] = str(data["agent"])
    if data.get("framework"):
        attributes["orchestrator.framework"] = str(data["framework"])
    return attributes


class _NoCall:
    def tokens(self, body: bytes) -> None:
        return None


_NO_CALL = _NoCall()


@contextlib.contextmanager
def model_call(request: Any) -> Iterator[Any]:
    """A span around one call to a model endpoint (an httpx request), told its tokens by ``tokens(body)``.

    Nothing but the span's bookkeeping while the run is not traced.
    """
    if _tracer is None:
        yield _NO_CALL
        return
    model = ""
    with contextlib.suppress(Exception):  # a streamed body cannot be read here: the span has no model name
        model = str(json.loads(request.content or b"{}").get("model") or "")
    operation = "embeddings" if str(request.url.path).endswith("/embeddings") else "chat"
    attributes = {"gen_ai.operation.name": operation, "gen_ai.request.model": model}
    with _tracer.start_as_current_span(f"{operation} {model}".strip(), attributes=attributes) as span:
        yield _Call(span)


class _Call:
    def __init__(self, span: Any) -> None:
        self.span = span

    def tokens(self, body: bytes) -> None:
        from .models import usage_in

        used = usage_in(body)
        if used is not None:
            self.span.set_attribute("gen_ai.usage.input_tokens", used[0])
            self.span.set_attribute("gen_ai.usage.output_tokens", used[1])
