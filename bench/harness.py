"""What the benchmarks share: statistics, the processes they start and stop, and an API client.

``bench/executions.py``, ``bench/runtimes.py`` and the others run as scripts (``python
bench/<name>.py``), so this folder is on their import path and they import this module as
``harness``. Nothing here measures anything by itself.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from orchestrator_runtimes.forkserver import die_with_parent

API = "/orchestrator/api/v1"
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def distribution(seconds: list[float]) -> dict[str, Any]:
    """p50, p99 (nearest rank), mean, min and max, in milliseconds, and the samples."""
    ms = sorted(s * 1000 for s in seconds)
    if not ms:
        return {"n": 0}
    rank = max(1, -(-99 * len(ms) // 100))  # ceil(0.99 n)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(ms[rank - 1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "min_ms": round(ms[0], 2),
        "max_ms": round(ms[-1], 2),
        "samples_ms": [round(v, 2) for v in ms],
    }


def short(found: dict[str, Any]) -> dict[str, Any]:
    """A :func:`distribution` without its samples (where only its figures are kept)."""
    return {key: value for key, value in found.items() if key != "samples_ms"}


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@contextlib.contextmanager
def watched(machine: dict[str, Any], name: str) -> Iterator[None]:
    """How busy the whole machine was during a measure (ours included): other work on it skews the figures."""
    psutil.cpu_percent(interval=None)
    started = time.perf_counter()
    try:
        yield
    finally:
        machine[name] = {
            "seconds": round(time.perf_counter() - started, 1),
            "cpu_busy_percent": psutil.cpu_percent(interval=None),
            "load_1min_at_end": round(os.getloadavg()[0], 2),
        }


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int


@dataclass
class Processes:
    """Every long-lived process this benchmark starts, stopped in reverse order (workers before the server)."""

    env: dict[str, str]
    root: Path
    started: list[Started] = field(default_factory=list)
    #: the local model server, stopped after the workers and the server
    model: subprocess.Popen[bytes] | None = None
    #: every process ever seen below ours (runners, fork servers), to kill what outlives a stop
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    def start(
        self, name: str, command: list[str], stop_signal: int = signal.SIGTERM, env: Mapping[str, str] | None = None
    ) -> Started:
        """``command`` in the bench's root, its output in ``<name>.log``; ``env`` adds to the bench's environment
        for this process only."""
        log = self.root / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                env={**self.env, **(env or {})},
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
                # a benchmark killed outright: each gets its stop signal and stops what it started (PostgreSQL)
                preexec_fn=functools.partial(die_with_parent, stop_signal),
            )
        entry = Started(name, process, log, stop_signal)
        self.started.append(entry)
        return entry

    def note_descendants(self) -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process().children(recursive=True):
                self.seen.setdefault(child.pid, child)

    def stop(self, entry: Started) -> None:
        self.note_descendants()
        stop(entry.process, entry.stop_signal, grace=30.0)
        self.started.remove(entry)

    def stop_all(self) -> None:
        self.note_descendants()
        for entry in reversed(self.started):
            stop(entry.process, entry.stop_signal, grace=30.0)
        self.started.clear()
        if self.model is not None:
            from orchestrator_ext import local_model

            local_model.stop_server(self.model)
            self.model = None
        self.note_descendants()
        for proc in self.seen.values():  # is_running() also checks the start time: never a reused pid
            with contextlib.suppress(psutil.Error):
                if proc.is_running():
                    proc.kill()
        self.seen.clear()
        stop_embedded_postgres(self.root / "data" / "pgdata")


def stop(process: subprocess.Popen[bytes], signum: int, grace: float) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def postmaster(pgdata: Path) -> tuple[int, str] | None:
    """The embedded server's pid and socket directory (lines 1 and 5 of postmaster.pid)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), lines[4].strip()
    except (OSError, ValueError, IndexError):
        return None


def stop_embedded_postgres(pgdata: Path) -> None:
    """The server stops it as the last process holding it; if it is still up (a crash), stop it ourselves."""
    found = postmaster(pgdata)
    if found is None:
        return
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(found[0])
        if str(pgdata) not in " ".join(proc.cmdline()):
            return  # a stale pid file: that pid is not our PostgreSQL
        proc.send_signal(signal.SIGINT)  # fast shutdown
        proc.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_env(root: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    home, scratch = root / "home", root / "tmp"
    home.mkdir(exist_ok=True)
    scratch.mkdir(exist_ok=True)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {
        **os.environ,
        **(extra or {}),
        "HOME": str(home),
        "TMPDIR": str(scratch),  # what the libraries leave in the temporary directory goes with the rest
        "JUPYTER_CONFIG_DIR": str(root / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(root / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(root / "jupyter-runtime"),
        "ORCHESTRATOR_DATA_DIR": str(root / "data"),
        "ORCHESTRATOR_ENCRYPTION_KEYS": f"bench:{key}",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("ORCHESTRATOR_DATABASE_URL", "ORCHESTRATOR_DATABASE_ADMIN_URL", "ORCHESTRATOR_RUNS_DATABASE_URL"):
        env.pop(name, None)
    return env


def orchestrator(*args: str) -> list[str]:
    return [sys.executable, "-m", "jupyter", "orchestrator", *args]


def http_ok(url: str) -> bool:
    """Whether a GET of ``url`` answers 200 now (a refused connection or a timeout is a no)."""
    parts = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=2)
        conn.request("GET", parts.path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


def start_server(procs: Processes, port: int, token: str, *options: str) -> Started:
    """The orchestrator's server without an engine (workers run separately), once its /health answers.

    Every benchmark starts it the same way: on 127.0.0.1 with a fixed token, the bench's root as
    its root directory, and no rate limits (the benchmarks start thousands of runs a minute);
    ``options`` adds to or overrides these (``--OrchestratorApp.local_model=False``).
    """
    defaults = [
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={procs.root}",
        "--OrchestratorApp.run_engine=False",
        "--OrchestratorApp.rate_limits=False",
    ]
    given = {option.split("=", 1)[0] for option in options}  # jupyter-server refuses a trait given twice
    kept = [option for option in defaults if option.split("=", 1)[0] not in given]
    server = procs.start("server", orchestrator(*kept, *options), stop_signal=signal.SIGINT)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{port}{API}/health"), "the server was not healthy", server)
    return server


def set_tier(procs: Processes, org_id: str, tier: str = "enterprise") -> str:
    """Move an organization to ``tier`` (``jupyter orchestrator set-tier``), so that its concurrency limit is
    not what a benchmark measures; what the command said."""
    done = subprocess.run(
        orchestrator("set-tier", f"--org={org_id}", f"--tier={tier}"),
        env=procs.env,
        cwd=procs.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"set-tier failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout.strip()


def held_by(pgdata: Path) -> set[int]:
    """The pids in the embedded PostgreSQL's handle file: plain pids, or ``{"pid": ..., "start": ...}``."""
    entries = json.loads((pgdata / ".handle_pids.json").read_text())
    return {int(entry["pid"]) if isinstance(entry, dict) else int(entry) for entry in entries}


def shared_postgres(procs: Processes, expected_pid: int, workers: list[Started]) -> str:
    """Check that the workers attached to the server's embedded PostgreSQL instead of starting their own."""
    pgdata = procs.root / "data" / "pgdata"
    found = postmaster(pgdata)
    if found is None or found[0] != expected_pid:
        raise SystemExit(f"the embedded PostgreSQL changed: {found} (was pid {expected_pid})")
    handles = held_by(pgdata)
    missing = [w.name for w in workers if w.process.pid not in handles]
    if missing:
        raise SystemExit(f"{missing} do not hold the embedded PostgreSQL (handles: {sorted(handles)})")
    return f"PostgreSQL pid {expected_pid} shared (handle pids {sorted(handles)})"


def wait_for(condition: Any, what: str, entry: Started, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if entry.process.poll() is not None:
            raise SystemExit(f"{entry.name} exited with {entry.process.returncode}:\n{tail(entry.log)}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not within {timeout:.0f} s:\n{tail(entry.log)}")
        time.sleep(0.1)


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


class Client:
    """A keep-alive connection to the server (one per thread)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # a keep-alive connection the server closed: once more on a new one
                if attempt == 2:
                    raise
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:500]!r}")
        return json.loads(payload) if payload else None

    def events(self, execution_id: str) -> Iterator[tuple[dict[str, Any], float]]:
        """The execution's server-sent events, each with the perf_counter() at which it was read."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("GET", f"{API}/executions/{execution_id}/events", headers=self.headers)
            response = conn.getresponse()
            if response.status != 200:
                raise RuntimeError(f"events of {execution_id}: {response.status} {response.read()[:500]!r}")
            data: list[str] = []
            while True:
                line = response.readline()
                if not line:
                    return
                text = line.decode().rstrip("\r\n")
                if text.startswith("data: "):
                    data.append(text[6:])
                elif not text and data:
                    yield json.loads("\n".join(data)), time.perf_counter()
                    data = []
        finally:
            conn.close()

    def close(self) -> None:
        self.conn.close()


def load_scenario(port: int, token: str, method: str, path: str, args: Any, **extra: Any) -> dict[str, Any]:
    """What ``bench/loadgen.py`` is given: ``method path`` on the server with its token, ``args.concurrency``
    connections, ``args.warmup`` then ``args.duration`` seconds; ``extra`` adds fields (``body``, ``expect``)."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "method": method,
        "path": path,
        "headers": {"Authorization": f"token {token}", "Content-Type": "application/json"},
        "concurrency": args.concurrency,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        **extra,
    }


def modes(observe: str) -> list[str]:
    return ["sse", "poll"] if observe == "both" else [observe]


def worker_pid(name: str | None) -> str:
    """A worker's name is host:pid:suffix."""
    parts = (name or "").split(":")
    return parts[1] if len(parts) >= 3 else (name or "?")


def runs_per_worker(pgdata: Path, workflow_id: str) -> dict[str, int]:
    """Which worker ran how many of a workflow's runs (worker_id is not in the API's answers: ask the database)."""
    import psycopg

    from orchestrator_ext.db.embedded import superuser_url

    with psycopg.connect(superuser_url(pgdata.parent, "orchestrator")) as conn:
        rows = conn.execute(
            "SELECT worker_id, count(*) FROM workflow_executions WHERE workflow_id = %s GROUP BY worker_id",
            (workflow_id,),
        ).fetchall()
    return {worker_pid(name): int(count) for name, count in rows}


def logged_problems(log: Path) -> dict[str, int]:
    """The orchestrator's warnings and errors in a process's log (JSON lines), by level and message."""
    found: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError, AttributeError):
            record = json.loads(line)
            if record.get("level") in ("warning", "error", "critical"):
                found[f"{record['level']}: {record.get('message', '')[:200]}"] += 1
    return dict(found)
