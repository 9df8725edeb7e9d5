"""An OTLP/HTTP trace receiver on the loopback, for the tests and ``bench/overhead.py``.

No trace backend installs from the registries here without its own
downloads (Jaeger and Tempo ship as Go binaries from GitHub), so this is the
collector's receiving end: ``POST /v1/traces`` with an
``ExportTraceServiceRequest`` in protobuf (gzip or not), decoded with
``opentelemetry-proto`` (the SDK's own message classes) and kept as plain
:class:`Span` records; the answer is an empty ``ExportTraceServiceResponse``,
as a collector gives. Bodies are decoded when the spans are asked for, not
as they arrive: a collector runs on other cores than the server it receives
from, and ``bench/overhead.py`` must not charge the traced server for the
decoding.
"""

from __future__ import annotations

import gzip
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass
class Span:
    """One received span: ids as hex, the attributes as plain values."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any] = field(default_factory=dict)
    #: the span as the collector received it (JSON mapping of the protobuf), for scanning every byte
    raw: str = ""


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def decode(body: bytes, raw: bool = True) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=KINDS.get(span.kind, str(span.kind)),
                        service=str(resource.get("service.name", "")),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        attributes={a.key: _value(a.value) for a in span.attributes},
                        raw=str(MessageToDict(span)) + str(resource) if raw else "",
                    )
                )
    return spans


class OtlpReceiver:
    """``with OtlpReceiver() as receiver:`` spans sent to ``receiver.endpoint`` land in ``receiver.spans``.

    ``raw=False`` (the benchmark) skips the JSON form of each span that the canary test searches.
    """

    def __init__(self, raw: bool = True) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self._raw = raw
        self._bodies: list[tuple[bytes, bool]] = []  # (body, gzipped), not decoded yet
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v1/traces":
                    self.send_error(404)
                    return
                with receiver._lock:
                    receiver._bodies.append((body, self.headers.get("Content-Encoding") == "gzip"))
                    receiver.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to (the SDK appends ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[Span]:
        """Every span received so far (the bodies not decoded yet are decoded now)."""
        with self._lock:
            pending, self._bodies = self._bodies, []
            for body, gzipped in pending:
                self.spans.extend(decode(gzip.decompress(body) if gzipped else body, self._raw))
            return list(self.spans)

    def trace(self, trace_id: str) -> list[Span]:
        return [span for span in self.received() if span.trace_id == trace_id]


def traced_server_fixtures(
    name: str, *, extra_args: tuple[str, ...] = (), local_model: bool = False
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``receiver, server = traced_server_fixtures("tracing")``: module-scoped fixtures of a receiver and a
    ``jupyter orchestrator`` (:func:`tests.personal_server.start_personal_server`) exporting to it.

    One set-up for the tests that read spans (``tests/tracing/``, ``tests/test_canary.py``).
    Spans are sent every 200 ms (not the SDK's 5 s), and ``OTEL_SDK_DISABLED=false``:
    ``tests/runtimes/conftest.py`` turns the SDK off for the frameworks' own telemetry for the
    whole session, and this server's tracing is what is under test.
    """
    import pytest  # here: bench/overhead.py imports this module without pytest's fixtures

    from tests.personal_server import start_personal_server, wait_postgres_stopped

    @pytest.fixture(scope="module")
    def receiver() -> Iterator[OtlpReceiver]:
        with OtlpReceiver() as running:
            yield running

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> Iterator[Any]:
        root = tmp_path_factory.mktemp(name)
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_SDK_DISABLED": "false",
        }
        running = start_personal_server(
            root, root / "data", extra_env=env, extra_args=extra_args, local_model=local_model
        )
        try:
            yield running
        finally:
            running.stop(signal.SIGTERM)
            wait_postgres_stopped(running.pgdata)

    return receiver, server
