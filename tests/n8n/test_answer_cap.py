"""The worker drives n8n runs in its own process, beside every tenant's runs: an answer of n8n's (a
webhook's reply, an execution's data; an external instance is whatever its registrant runs) is read up to
a cap, and one that goes past it fails that run with a ``resources`` error instead of filling the worker's
memory. The instance here is a plain HTTP server that streams without end, as a hostile one would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from orchestrator_runtimes import RunError
from orchestrator_runtimes.errors import ErrorKind
from orchestrator_runtimes.n8n import inline
from orchestrator_runtimes.n8n.api import N8nApi

CHUNK = b"x" * 65536


class Endless(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            for _ in range(1024):  # 64 MiB at most, so the test ends even without the cap
                self.wfile.write(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader stopped: what the cap is for

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endless() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_past_the_cap_fails_the_run_not_the_worker(endless: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inline, "MAX_ANSWER_BYTES", 1024 * 1024)
    api = N8nApi(endless, "key")

    async def ask() -> None:
        await inline._http(api, "GET", f"{endless}/webhook/x", None, {}, 30.0)

    with pytest.raises(RunError) as caught:
        asyncio.run(ask())
    assert caught.value.kind is ErrorKind.RESOURCES
    assert "more than 1048576 bytes" in caught.value.message


def test_an_answer_under_the_cap_is_read_whole(endless: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inline, "MAX_ANSWER_BYTES", 128 * 1024 * 1024)
    api = N8nApi(endless, "key")

    async def ask() -> int:
        reply = await inline._http(api, "GET", f"{endless}/webhook/x", None, {}, 30.0)
        return len(reply.body)

    assert asyncio.run(ask()) == 1024 * len(CHUNK)
