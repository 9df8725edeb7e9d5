"""How a benchmark starts the platform: the server with a client on its API, and workers that are ready.

Each benchmark wrote these lines itself (a free port, a token, ``start_server``, a ``Client``; a worker's
command, then waits on its log for the lines that say it can take runs). Here once, so that what "started"
means is the same in every measure: a benchmark that times runs never times a worker still starting.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from harness import Client, Processes, Started, free_port, orchestrator, start_server, wait_for

#: a worker's log lines: it listens for runs; its fork server for framework runs has its frameworks imported
STARTED, FORK_SERVER_READY = " started", "fork server ready"


@dataclass
class Server:
    """A started ``jupyter orchestrator`` and what a benchmark reaches its API with."""

    port: int
    token: str
    process: Started
    client: Client


def start_api(procs: Processes, *options: str) -> Server:
    """The server on a free port with a fresh token (``options`` as ``harness.start_server`` takes them), once
    its health endpoint answers, and a client on its API."""
    port, token = free_port(), secrets.token_hex(16)
    process = start_server(procs, port, token, *options)
    return Server(port, token, process, Client(port, token))


def framework_worker(preload: str) -> tuple[str, ...]:
    """A worker's options for framework runs only: no notebook kernels, one fork server importing ``preload``."""
    return (
        "--OrchestratorApp.kernel_pool_size=0",
        "--OrchestratorApp.runner_pool_size=1",
        f"--OrchestratorApp.runner_preload={preload}",
    )


def start_worker(procs: Processes, name: str, *options: str, ready: tuple[str, ...] = (STARTED,)) -> Started:
    """``jupyter orchestrator worker`` with ``options``, once each line of ``ready`` stands in its log."""
    worker = procs.start(name, orchestrator("worker", *options))
    for line in ready:
        wait_for(_logged(worker, line), f"{name}: {line.strip()!r} never logged", worker)
    return worker


def _logged(entry: Started, line: str) -> Callable[[], bool]:
    """A condition for ``harness.wait_for``: ``line`` stands in ``entry``'s log."""
    return lambda: line in entry.log.read_text(errors="replace")
