"""How a benchmark starts the platform: the server with a client on its API, workers that are ready, and what
it creates there before it measures (agents, workflows, the organization's settings).

Each benchmark wrote these lines itself (a throw-away root and its processes; a free port, a token,
``start_server``, a ``Client``; a worker's command, then waits on its log for the lines that say it can take
runs; the same POSTs). Here once, so that what "started" means is the same in every measure: a benchmark that
times runs never times a worker still starting.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from harness import (
    API,
    Client,
    Processes,
    Started,
    bench_env,
    free_port,
    orchestrator,
    postmaster,
    start_server,
    wait_for,
)

#: a worker's log lines: it listens for runs; its fork server for framework runs has its frameworks imported;
#: it can start framework runs (readiness.py)
STARTED, FORK_SERVER_READY, FRAMEWORK_READY = " started", "fork server ready", "ready to start framework"


def run_main(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main`` so that SIGTERM, and Ctrl-C even where it was started with SIGINT ignored,
    unwind it through its clean-up (``finally``: every process it started is stopped), and say so."""

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the clean-up

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every process started here was stopped")


@contextlib.contextmanager
def throwaway(prefix: str, extra_env: Mapping[str, str] | None = None) -> Iterator[Processes]:
    """A temporary root (data dir, home, logs) and the processes a benchmark starts there, every one of them
    stopped when the block ends (the embedded PostgreSQL included), then the root removed."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        procs = Processes(env=bench_env(root, extra_env), root=root)
        try:
            yield procs
        finally:
            procs.stop_all()


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


def framework_worker(preload: str, *, slots: int | None = None, runners: int = 1) -> tuple[str, ...]:
    """A worker's options for framework runs only: no notebook kernels, ``runners`` fork servers importing
    ``preload``, and ``slots`` runs at once (its default where None)."""
    return (
        "--OrchestratorApp.kernel_pool_size=0",
        *([f"--OrchestratorApp.worker_slots={slots}"] if slots is not None else []),
        f"--OrchestratorApp.runner_pool_size={runners}",
        f"--OrchestratorApp.runner_preload={preload}",
    )


def start_worker(
    procs: Processes,
    name: str,
    *options: str,
    ready: tuple[str, ...] = (STARTED,),
    env: Mapping[str, str] | None = None,
) -> Started:
    """``jupyter orchestrator worker`` with ``options`` (``env`` added to its environment), once each line of
    ``ready`` stands in its log."""
    worker = procs.start(name, orchestrator("worker", *options), env=env)
    wait_logged(worker, *ready)
    return worker


def wait_logged(entry: Started, *lines: str) -> None:
    """Wait until each of ``lines`` stands in ``entry``'s log (``harness.wait_for``'s time limit, each)."""
    for line in lines:
        wait_for(_logged(entry, line), f"{entry.name}: {line.strip()!r} never logged", entry)


def _logged(entry: Started, line: str) -> Callable[[], bool]:
    """A condition for ``harness.wait_for``: ``line`` stands in ``entry``'s log."""
    return lambda: line in entry.log.read_text(errors="replace")


def new_agent(client: Client, name: str, framework: str) -> dict[str, Any]:
    """``POST /agents``: an agent of ``framework`` in the caller's organization (``org_id`` in the answer)."""
    return dict(client.call("POST", f"{API}/agents", {"name": name, "framework": framework}, expect=(201,)))


def new_workflow(client: Client, agent_id: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /agents/{id}/workflows``: a workflow of ``spec``."""
    body = {"name": name, "spec": spec}
    return dict(client.call("POST", f"{API}/agents/{agent_id}/workflows", body, expect=(201,)))


def set_runs_per_process(client: Client, org_id: str, runs: int) -> None:
    """The organization's ``runs_per_process`` (1: a fresh fork per run; N: one process serves N in turn)."""
    client.call("PATCH", f"{API}/organizations/{org_id}", {"runs_per_process": runs}, expect=(200,))


def postgres_pid(procs: Processes) -> int:
    """The pid of the embedded PostgreSQL the server started in the bench's data dir."""
    found = postmaster(procs.root / "data" / "pgdata")
    if found is None:
        raise SystemExit("the embedded PostgreSQL is not running")
    return found[0]


def superuser_database(procs: Processes, name: str = "orchestrator") -> str:
    """A superuser URL of one of the embedded server's databases (through its socket): what the benchmarks
    read behind the API (which worker ran what, checkpoints, run counts)."""
    from orchestrator_ext.db.embedded import superuser_url

    return str(superuser_url(procs.root / "data", name))
