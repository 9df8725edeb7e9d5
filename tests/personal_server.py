"""``jupyter orchestrator`` as a user runs it: a real subprocess on 127.0.0.1, isolated from the user's files.

Used by ``test_cli.py`` and ``test_docs.py``. Each server gets its own HOME and
Jupyter config/data/runtime directories under a temporary root, so nothing
the tests do touches the account running them.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

API = "/orchestrator/api/v1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
ORCHESTRATOR_ENV = (
    "ORCHESTRATOR_DATABASE_URL",
    "ORCHESTRATOR_DATABASE_ADMIN_URL",
    "ORCHESTRATOR_DATA_DIR",
    "ORCHESTRATOR_ENCRYPTION_KEYS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(root: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus orchestrator settings, with HOME and Jupyter dirs under ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in ORCHESTRATOR_ENV and not k.startswith("JUPYTER")}
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(root / "jupyter-config"),
        JUPYTER_DATA_DIR=str(root / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(root / "jupyter-runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(root / "ipython"),
        ORCHESTRATOR_DATA_DIR=str(data_dir),
    )
    env.update(extra)
    return env


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class PersonalServer:
    """One ``jupyter orchestrator`` process."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}{API}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Reply:
        """A request under the API prefix; never raises on 4xx/5xx."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.api_url}{path}", data=data, method=method)
        request.add_header("Authorization", f"token {self.token if token is None else token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, _json_or_text(response.read()), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _json_or_text(exc.read()), dict(exc.headers))

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no healthy server within {timeout:.0f} s:\n{self.output()[-4000:]}")

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signal the server as a terminal would, wait for it to exit, return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


def start_personal_server(
    root: Path,
    data_dir: Path,
    *,
    extra_env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    local_model: bool = False,
) -> PersonalServer:
    """Start ``jupyter orchestrator --no-browser --port P --IdentityProvider.token=T`` and wait for /health.

    The local model server starts beside it only when ``local_model`` (the framework docs' examples need it).
    """
    token = secrets.token_hex(16)
    last_error: RuntimeError | None = None
    for attempt in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        log_path = root / f"server-{port}.log"
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "orchestrator",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--OrchestratorApp.local_model={local_model}",
            *extra_args,
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=root,
                env=isolated_env(root, data_dir, **(extra_env or {})),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = PersonalServer(process, port, token, data_dir, log_path)
        try:
            server.wait_healthy()
            return server
        except RuntimeError as exc:
            server.stop(signal.SIGTERM)
            last_error = exc
            if "already in use" not in server.output() or attempt == 2:
                raise
    raise AssertionError("unreachable") from last_error


def postgres_running_on(pgdata: Path) -> list[psutil.Process]:
    """PostgreSQL server processes whose data directory is ``pgdata``."""
    wanted = {str(pgdata), str(pgdata.resolve())}
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline and Path(cmdline[0]).name == "postgres" and wanted.intersection(cmdline):
            found.append(proc)
    return found


def wait_postgres_stopped(pgdata: Path, timeout: float = STOP_TIMEOUT_S) -> list[psutil.Process]:
    """Wait until no server runs on ``pgdata``; return those still running at the deadline."""
    deadline = time.monotonic() + timeout
    while (left := postgres_running_on(pgdata)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def running_server(
    tmp_path_factory: Any, name: str, *, local_model: bool = False, extra_args: tuple[str, ...] = ()
) -> Iterator[PersonalServer]:
    """Body of a module-scoped fixture: one server for the module, stopped with SIGTERM after it."""
    root = tmp_path_factory.mktemp(name)
    running = start_personal_server(root, root / "data", local_model=local_model, extra_args=extra_args)
    try:
        yield running
    finally:
        running.stop(signal.SIGTERM)
        wait_postgres_stopped(running.pgdata)
