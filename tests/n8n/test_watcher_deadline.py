"""The runner path's n8n watcher ends by its deadline even when the run it watches never ends.

(n8n runs are driven by the worker by default, :mod:`orchestrator_runtimes.n8n.inline`, with no watcher;
``ORCHESTRATOR_N8N_IN_WORKER=0`` sends them to a runner, which forks this watcher, its deadline the run's
timeout plus 60 s.) A fake n8n answers the watcher's look for executions to stop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from orchestrator_runtimes.n8n.watch import watch


@pytest.fixture
def fake_n8n() -> Iterator[tuple[str, list[str]]]:
    """n8n's public API with no execution running; the paths asked, in order."""
    asked: list[str] = []

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = json.dumps({"data": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def test_the_watcher_of_a_run_that_never_ends_stops_at_its_deadline(
    fake_n8n: tuple[str, list[str]], tmp_path: Any
) -> None:
    base_url, asked = fake_n8n
    never_ends = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    job = {
        "pid": never_ends.pid,
        "deadline": 0.5,
        "base_url": base_url,
        "api_key": "k",
        "workflow_id": "7",
        "hook": "Webhook",
        "marker": "run-1:1",
        "done_file": str(tmp_path / "n8n-run-ended"),
    }
    outcome: list[int] = []
    try:
        began = time.monotonic()
        watcher = threading.Thread(target=lambda: outcome.append(watch(job)), daemon=True)
        watcher.start()
        watcher.join(timeout=60)
        assert not watcher.is_alive(), "the watcher outlived its deadline"
        assert time.monotonic() - began >= 0.5  # it did watch until the deadline
        assert never_ends.poll() is None  # the run is still running: the deadline ended the watch
        assert outcome == [0]
        assert asked, "the watcher did not look for the run's n8n execution to stop"
        assert all(path.startswith("/api/v1/executions?") and "workflowId=7" in path for path in asked)
    finally:
        never_ends.kill()
        never_ends.wait()
