"""The notebook runs bench/executions.py measures: the notebook, papermill's two ways, ours over HTTP.

Split from ``executions.py`` (which starts the configurations and reports): the
papermill baselines (the CLI as a subprocess, ``execute_notebook`` in this
process, each on a fresh kernel), one run of ours observed over SSE or by
polling, runs one after another (with or without a pause before each), and a
burst of runs submitted at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from harness import API, FINAL, Client, distribution, timestamp

LAST_PHASE = "6 succeeded row -> seen by client"
STALL_SECONDS = 1.0  # a final status seen this long after it was written: the client was not woken


def notebook() -> dict[str, Any]:
    """The benchmark's notebook: a parameters cell and one code cell."""

    def cell(source: str, tags: list[str] | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"tags": tags} if tags else {}
        return {
            "cell_type": "code",
            "id": uuid.uuid4().hex[:8],
            "metadata": metadata,
            "execution_count": None,
            "outputs": [],
            "source": source,
        }

    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [cell("x = 1", tags=["parameters"]), cell("y = x + 1")],
    }


# ---- baselines -------------------------------------------------------------------


def papermill_cli() -> list[str]:
    """The papermill console script next to this interpreter (not a pyenv shim, which adds its own start-up)."""
    script = Path(sys.executable).with_name("papermill")
    return [str(script)] if script.exists() else [sys.executable, "-m", "papermill"]


def baseline_cli(root: Path, env: dict[str, str], runs: int, warmup: int) -> list[float]:
    source, target = root / "in.ipynb", root / "out-cli.ipynb"
    command = [*papermill_cli(), str(source), str(target)]
    times: list[float] = []
    for i in range(warmup + runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _, err = process.communicate(timeout=120)
        finally:
            kill_tree(process)
        took = time.perf_counter() - started
        if process.returncode != 0:
            raise SystemExit(f"papermill CLI failed ({process.returncode}):\n{err.decode(errors='replace')[-3000:]}")
        if i >= warmup:
            times.append(took)
    return times


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """A papermill CLI interrupted mid-run: its kernel goes with it."""
    if process.poll() is not None:
        return
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
    process.kill()
    process.wait()


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as out:
        os.dup2(out.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def baseline_api(root: Path, runs: int, warmup: int) -> list[float]:
    import papermill

    source, target = str(root / "in.ipynb"), str(root / "out-api.ipynb")
    times: list[float] = []
    for i in range(warmup + runs):
        started = time.perf_counter()
        with stderr_to(root / "papermill-kernels.log"):  # the kernels inherit it: keep their warnings off the table
            papermill.execute_notebook(source, target, progress_bar=False, cwd=str(root))
        took = time.perf_counter() - started
        if i >= warmup:
            times.append(took)
    return times


# ---- ours ------------------------------------------------------------------------


@dataclass
class Run:
    """One sequential run: the client's clocks and the events it read."""

    t0_wall: float
    t0: float
    posted: float
    observed: float
    status: str
    events: list[dict[str, Any]]

    def first_cell_at(self) -> float | None:
        for event in self.events:
            data = event["data"]
            if event["kind"] == "step" and data.get("state") == "started":
                return float(data["at"])
        return None

    def status_at(self, status: str) -> float | None:
        for event in self.events:
            if event["kind"] == "status" and event["data"].get("status") == status:
                return timestamp(event["created_at"])
        return None

    def worker(self) -> str | None:
        for event in self.events:
            if event["kind"] == "status" and event["data"].get("status") == "running":
                return str(event["data"].get("worker"))
        return None

    def phases(self) -> dict[str, float] | None:
        """Where the time went, in seconds, from the client's, the database's and the worker's clocks."""
        queued, running, succeeded = (self.status_at(s) for s in ("queued", "running", "succeeded"))
        steps = [e["data"] for e in self.events if e["kind"] == "step"]
        if queued is None or running is None or succeeded is None or not steps:
            return None
        first = float(steps[0]["at"])
        last = float(steps[-1]["at"])
        observed_wall = self.t0_wall + (self.observed - self.t0)
        return {
            "1 POST -> queued row inserted": queued - self.t0_wall,
            "2 queued -> claimed (running row)": running - queued,
            "3 claimed -> first cell started (worker)": first - running,
            "4 first cell started -> last cell ended": last - first,
            "5 last cell ended -> succeeded row": succeeded - last,
            LAST_PHASE: observed_wall - succeeded,
            "(POST answered, client side)": self.posted - self.t0,
        }


def execute_once(client: Client, workflow_id: str, observe: str) -> Run:
    t0_wall = time.time()
    t0 = time.perf_counter()
    execution = client.call("POST", f"{API}/workflows/{workflow_id}/execute", {"inputs": {}}, expect=(202,))
    posted = time.perf_counter()
    execution_id = execution["id"]
    events: list[dict[str, Any]] = []
    observed = 0.0
    status = ""
    if observe == "sse":
        for event, at in client.events(execution_id):
            events.append(event)
            if event["kind"] == "status" and event["data"].get("status") in FINAL:
                observed, status = at, event["data"]["status"]
                break
    else:
        while True:
            current = client.call("GET", f"{API}/executions/{execution_id}")
            if current["status"] in FINAL:
                observed, status = time.perf_counter(), current["status"]
                break
            time.sleep(0.002)
        events = [event for event, _ in client.events(execution_id)]  # the run has ended: the whole stream
    if status != "succeeded":
        detail = client.call("GET", f"{API}/executions/{execution_id}")
        raise SystemExit(f"run {execution_id} ended {status}: {json.dumps(detail.get('error'))}")
    return Run(t0_wall, t0, posted, observed, status, events)


def sequential(client: Client, workflow_id: str, runs: int, warmup: int, pause: float, observe: str) -> list[Run]:
    """One run at a time, ``pause`` seconds before each (0: back to back, the next POST right after the last
    run's end was seen); ``warmup`` runs first, not kept."""
    kept: list[Run] = []
    for i in range(warmup + runs):
        time.sleep(pause)
        run = execute_once(client, workflow_id, observe)
        if i >= warmup:
            kept.append(run)
    return kept


def summarize(runs: list[Run]) -> dict[str, Any]:
    dispatch = [at - r.t0_wall for r in runs if (at := r.first_cell_at()) is not None]
    end_to_end = [r.observed - r.t0 for r in runs]
    phases = [p for r in runs if (p := r.phases()) is not None]
    late = [p[LAST_PHASE] for p in phases if p[LAST_PHASE] > STALL_SECONDS]
    return {
        "dispatch": distribution(dispatch),
        "end_to_end": distribution(end_to_end),
        "phases": {name: distribution([p[name] for p in phases]) for name in phases[0]} if phases else {},
        "stalled_runs": len(late),
        "stalls_ms": [round(v * 1000, 1) for v in late],
    }
