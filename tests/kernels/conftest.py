"""Fixtures of the kernel tests: the framework kernels installed where a personal server finds them.

- ``kernel_path``: a folder (for ``JUPYTER_PATH``) holding the three framework kernelspecs, as
  ``jupyter orchestrator kernels install --prefix`` writes them.
- ``server``: one ``jupyter orchestrator`` for these tests, started on that ``JUPYTER_PATH`` (its
  worker runs deployed notebooks on the same kernels), whose organization has the local model as
  its ``default`` model integration.
- ``session_kernel(path, kernel_name)``: a kernel the server starts for a notebook, as JupyterLab
  does (``POST /api/sessions``), and a client on it: ``.run(code)`` gives the cell's outputs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking import BlockingKernelClient
from orchestrator_kernels.kernelspec import install

from tests.personal_server import PersonalServer, isolated_env, start_personal_server, wait_postgres_stopped

QUIET = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "AGNO_TELEMETRY": "false",
    "OTEL_SDK_DISABLED": "true",
}


@pytest.fixture(scope="session")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("kernels")
    _written, skipped = install(prefix=str(prefix))
    assert not skipped, f"the dev install has every framework: {skipped}"
    return prefix / "share" / "jupyter"


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, kernel_path: Path, local_model: dict[str, Any]
) -> Iterator[PersonalServer]:
    root = tmp_path_factory.mktemp("kernels-server")
    running = start_personal_server(root, root / "data", extra_env={"JUPYTER_PATH": str(kernel_path), **QUIET})
    try:
        reply = running.call(
            "POST", "/integrations", {"kind": "openai-compatible", "name": "default", "config": local_model["config"]}
        )
        assert reply.status == 201, reply.body
        yield running
    finally:
        running.stop(signal.SIGTERM)
        wait_postgres_stopped(running.pgdata)


def server_root(server: PersonalServer) -> Path:
    """The server's root directory (its working directory): notebooks and code-first modules live there."""
    return server.data_dir.parent


def shell_env(server: PersonalServer, kernel_path: Path) -> dict[str, str]:
    """A terminal's environment beside the server: same home and Jupyter folders, nothing else set."""
    root = server_root(server)
    return isolated_env(root, server.data_dir, JUPYTER_PATH=str(kernel_path), **QUIET)


@dataclass
class Outputs:
    """What one cell printed and displayed, and its error (``ename: evalue``) if it raised."""

    text: str
    data: list[dict[str, Any]]
    error: str

    @property
    def ok(self) -> bool:
        return not self.error


class SessionKernel:
    """A kernel started by the server for a notebook, driven over its ZeroMQ channels."""

    def __init__(self, server: PersonalServer, path: str, kernel_name: str) -> None:
        self.server = server
        body = {"path": path, "name": Path(path).name, "type": "notebook", "kernel": {"name": kernel_name}}
        self.session = self._jupyter("POST", "/api/sessions", body)
        kernel_id = self.session["kernel"]["id"]
        connection = server_root(server) / "jupyter-runtime" / f"kernel-{kernel_id}.json"
        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(connection))
        self.client.start_channels(hb=False)  # the kernel may still be starting: no heartbeat yet
        self.client.wait_for_ready(timeout=120)

    def _jupyter(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.server.url}{path}", data=json.dumps(body).encode() if body is not None else None, method=method
        )
        request.add_header("Authorization", f"token {self.server.token}")
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def run(self, code: str, timeout: float = 240.0) -> Outputs:
        text: list[str] = []
        data: list[dict[str, Any]] = []
        error: list[str] = []

        def collect(message: dict[str, Any]) -> None:
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                text.append(content["text"])
            elif kind in ("display_data", "execute_result", "update_display_data"):
                data.append(content["data"])
                text.append(content["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                error.append(f"{content['ename']}: {content['evalue']}")

        self.client.execute_interactive(code, output_hook=collect, timeout=timeout)
        return Outputs("".join(text), data, "".join(error))

    def complete(self, code: str) -> list[str]:
        message_id = self.client.complete(code)
        while True:
            reply = self.client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") == message_id:
                return list(reply["content"]["matches"])

    def close(self) -> None:
        self.client.stop_channels()
        self._jupyter("DELETE", f"/api/sessions/{self.session['id']}")


@pytest.fixture
def session_kernel(server: PersonalServer) -> Iterator[Callable[[str, str], SessionKernel]]:
    started: list[SessionKernel] = []

    def start(path: str, kernel_name: str) -> SessionKernel:
        kernel = SessionKernel(server, path, kernel_name)
        started.append(kernel)
        return kernel

    yield start
    for kernel in started:
        kernel.close()


def run_cli(server: PersonalServer, kernel_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``jupyter orchestrator ARGS`` from a terminal beside the server."""
    return subprocess.run(
        [sys.executable, "-m", "jupyter", "orchestrator", *args],
        cwd=server_root(server),
        env=shell_env(server, kernel_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
