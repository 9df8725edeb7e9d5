"""Latency and throughput of notebook executions, against papermill run the usual ways.

    python bench/executions.py [--runs 50] [--throughput-runs 100] [--warmup 3] [--pause 1.0] [--observe both]

One run, on 127.0.0.1 only, no network: the same notebook (a ``parameters``
cell ``x = 1`` and one code cell ``y = x + 1``) is executed

* baseline A: ``papermill in.ipynb out.ipynb``, the CLI as a subprocess (wall time);
* baseline B: ``papermill.execute_notebook(in, out)`` in this process (a fresh kernel each call);
* ours: ``POST /workflows/{id}/execute`` on ``jupyter orchestrator`` started with
  ``--OrchestratorApp.run_engine=False`` (a throw-away data dir, embedded PostgreSQL)
  and one separate ``jupyter orchestrator worker`` (``kernel_pool_size=2``,
  ``worker_slots=2``) on the same embedded database (same ``ORCHESTRATOR_DATA_DIR``
  and ``ORCHESTRATOR_ENCRYPTION_KEYS``). *Dispatch* is the worker's ``at`` of the
  first ``step`` event with state ``started`` minus the client's ``time.time()``
  just before the POST; *end to end* is POST to the ``succeeded`` status event
  read by the client on the SSE stream ``GET /executions/{id}/events``, opened
  right after the 202, and, in runs taking turns with those, POST to
  ``succeeded`` seen by polling ``GET /executions/{id}`` every 2 ms
  (``--observe sse`` or ``poll`` for one only). The targets use the SSE runs
  unless the stream left a final status unseen for more than a second in any
  run (a lost wake-up: the stream then waits for its 15 s keep-alive); then
  they use the polled runs, and say so. Runs are sequential, after
  warm-up runs not counted, with a pause before each run so the worker's warm
  kernel pool refills;
* ours, throughput: a second worker joins; ``--throughput-runs`` runs are
  submitted at once from a thread pool, and the clock stops when none of them
  is queued or running any more (all must have succeeded).

The organization is moved to the ``enterprise`` tier first (``jupyter
orchestrator set-tier``) so its concurrency limit is not the bottleneck. Prints
p50/p99/mean of each and the issue's targets as PASS/FAIL; the figures go to
``bench/results/executions.json``. Every process started here is stopped at
the end, also on Ctrl-C or a failure. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
from harness import (
    API,
    FINAL,
    Client,
    Processes,
    Started,
    bench_env,
    distribution,
    free_port,
    list_executions,
    logged_problems,
    modes,
    orchestrator,
    postmaster,
    shared_postgres,
    start_server,
    timestamp,
    wait_for,
    watched,
    worker_pid,
)

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "executions.json"
LAST_PHASE = "6 succeeded row -> seen by client"
STALL_SECONDS = 1.0  # a final status seen this long after it was written: the client was not woken

DISPATCH_P50_TARGET_MS = 50.0
END_TO_END_P50_TARGET_MS = 150.0
VS_PAPERMILL_API_TARGET = 5.0
VS_PAPERMILL_CLI_TARGET = 15.0


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


# ---- statistics ----------------------------------------------------------------


# ---- processes -----------------------------------------------------------------


# ---- HTTP ------------------------------------------------------------------------


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


def sequential(client: Client, workflow_id: str, args: argparse.Namespace) -> dict[str, list[Run]]:
    """One run at a time; with both ways of observing, they take turns (same conditions for each)."""
    runs: dict[str, list[Run]] = {mode: [] for mode in modes(args.observe)}
    for i in range(args.warmup + args.runs):
        for mode, kept in runs.items():
            time.sleep(args.pause)  # the worker's warm kernel pool refills
            run = execute_once(client, workflow_id, mode)
            if i >= args.warmup:
                kept.append(run)
    return runs


def choose_primary(summaries: dict[str, dict[str, Any]]) -> dict[str, str]:
    """SSE if it works; if the stream let a run's end wait (a wake-up lost until the keep-alive), polling."""
    if "sse" in summaries and "poll" in summaries and summaries["sse"]["stalled_runs"]:
        why = f"SSE missed the final status of {summaries['sse']['stalled_runs']} runs for > {STALL_SECONDS:.0f} s"
        return {"primary": "poll", "primary_because": why}
    mode = "sse" if "sse" in summaries else "poll"
    return {"primary": mode, "primary_because": "SSE worked" if mode == "sse" else "only polling was measured"}


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


def throughput(port: int, token: str, workflow_id: str, runs: int, concurrency: int) -> dict[str, Any]:
    local = threading.local()

    def submit(_: int) -> str:
        if not hasattr(local, "client"):
            local.client = Client(port, token)
        reply = local.client.call("POST", f"{API}/workflows/{workflow_id}/execute", {"inputs": {}}, expect=(202,))
        return str(reply["id"])

    poller = Client(port, token)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ids = list(pool.map(submit, range(runs)))
    submitted = time.perf_counter()
    polls = 0
    deadline = submitted + 600
    while True:
        # nothing queued, then nothing running: no run can go back to the queue (max_attempts is 1)
        polls += 1
        queued = next(list_executions(poller, workflow_id, "queued", limit=1), None)
        if queued is None and next(list_executions(poller, workflow_id, "running", limit=1), None) is None:
            break
        if time.perf_counter() > deadline:
            raise SystemExit("the throughput runs did not end within 10 minutes")
        time.sleep(0.02)
    finished = time.perf_counter()
    executions = list(list_executions(poller, workflow_id))
    poller.close()
    mine = [e for e in executions if e["id"] in set(ids)]
    if len(mine) != runs or len(executions) != runs:
        raise SystemExit(f"expected the {runs} throughput runs, found {len(executions)} ({len(mine)} of ours)")
    statuses = Counter(e["status"] for e in mine)
    errors = Counter(f"{e['error'].get('kind')}: {e['error'].get('message')}" for e in mine if e.get("error"))
    wall = finished - started
    first_created = min(timestamp(e["created_at"]) for e in mine)
    ends = sorted(timestamp(e["finished_at"]) for e in mine)
    last_finished = ends[-1]
    most = max(1, -(-95 * runs // 100))  # the 95th of 100: the rate without a straggler's tail
    return {
        "runs": runs,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "submit_concurrency": concurrency,
        "submit_seconds": round(submitted - started, 3),
        "wall_seconds": round(wall, 3),
        "runs_per_second": round(runs / wall, 2),
        "server_span_seconds": round(last_finished - first_created, 3),
        "server_runs_per_second": round(runs / (last_finished - first_created), 2),
        "seconds_to_95pct_done": round(ends[most - 1] - first_created, 3),
        "runs_per_second_to_95pct": round(most / (ends[most - 1] - first_created), 2),
        "polls": polls,
    }


def start_worker(procs: Processes, name: str) -> Started:
    worker = procs.start(
        name,
        orchestrator("worker", "--OrchestratorApp.kernel_pool_size=2", "--OrchestratorApp.worker_slots=2"),
    )
    wait_for(lambda: " started" in worker.log.read_text(errors="replace"), f"{name} did not start", worker)
    return worker


def code_state() -> dict[str, Any]:
    """The commit measured, and the files that differ from it (the figures belong to this state of the code)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = [
        line.split(maxsplit=1)[-1] for line in git("status", "--porcelain", "--", "orchestrator_ext").splitlines()
    ]
    diff = hashlib.sha1(git("diff", "HEAD", "--", "orchestrator_ext").encode()).hexdigest()[:12]
    return {"commit": git("rev-parse", "HEAD") or None, "changed_files": changed, "diff_sha1": diff}


def measure_ours(procs: Processes, args: argparse.Namespace, machine: dict[str, Any]) -> dict[str, Any]:
    code = code_state()
    port, token = free_port(), secrets.token_hex(16)
    started = time.perf_counter()
    server = start_server(procs, port, token)
    print(f"server on 127.0.0.1:{port} (run_engine=False), up in {time.perf_counter() - started:.1f} s")
    print(
        f"  code: {code['commit']}"
        + (f", changed: {', '.join(code['changed_files'])}" if code["changed_files"] else "")
    )
    pg = postmaster(procs.root / "data" / "pgdata")
    assert pg is not None
    client = Client(port, token)
    nb = notebook()
    agent = client.call("POST", f"{API}/agents", {"name": "bench-notebook", "framework": "notebook"}, expect=(201,))
    org_id = agent["org_id"]
    workflows = [
        client.call(
            "POST",
            f"{API}/agents/{agent['id']}/workflows",
            {"name": name, "spec": {"notebook": {"content": nb}}},
            expect=(201,),
        )["id"]
        for name in ("latency", "throughput")
    ]
    tier = subprocess.run(
        orchestrator("set-tier", f"--org={org_id}", "--tier=enterprise"),
        env=procs.env,
        cwd=procs.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if tier.returncode != 0:
        raise SystemExit(f"set-tier failed:\n{tier.stdout[-2000:]}{tier.stderr[-2000:]}")
    print(f"  {tier.stdout.strip()}")

    worker_a = start_worker(procs, "worker-1")
    print(f"worker-1 (pid {worker_a.process.pid}) started; {shared_postgres(procs, pg[0], [worker_a])}")
    procs.note_descendants()
    observed = " and ".join(m.upper() for m in modes(args.observe))
    print(
        f"ours, sequential: {args.warmup} warm-up + {args.runs} runs observed by each of {observed}, "
        f"{args.pause:.1f} s pause before each run (the warm kernel pool refills) ..."
    )
    with watched(machine, "ours, sequential"):
        runs = sequential(client, workflows[0], args)
    procs.note_descendants()
    workers_seen = Counter(worker_pid(r.worker()) for kept in runs.values() for r in kept)
    if set(workers_seen) != {str(worker_a.process.pid)}:
        raise SystemExit(f"runs were claimed by {dict(workers_seen)}, not only worker-1 (pid {worker_a.process.pid})")
    summaries = {mode: summarize(kept) for mode, kept in runs.items()}

    worker_b = start_worker(procs, "worker-2")
    print(f"worker-2 (pid {worker_b.process.pid}) started; {shared_postgres(procs, pg[0], [worker_a, worker_b])}")
    time.sleep(args.settle)  # its kernel pool fills
    print(f"ours, throughput: {args.throughput_runs} runs submitted at once through 2 workers ...")
    with watched(machine, "ours, throughput"):
        tput = throughput(port, token, workflows[1], args.throughput_runs, args.submit_concurrency)
    tput["per_worker_pid"] = runs_per_worker(procs.root / "data" / "pgdata", workflows[1])
    procs.note_descendants()
    client.close()
    code_changed = code_state() != code
    if code_changed:
        print(
            "  !! the code under orchestrator_ext changed while this ran: the processes may not all run the same code"
        )
    problems = {entry.name: logged_problems(entry.log) for entry in (server, worker_a, worker_b)}
    for name, found in problems.items():
        for message, count in found.items():
            print(f"  !! {name} logged {count} x {message}")
    return {
        "logged_problems": problems,
        **choose_primary(summaries),
        **summaries,
        "throughput": tput,
        "code": code,
        "code_changed_meanwhile": code_changed,
        "worker_pids": [worker_a.process.pid, worker_b.process.pid],
        "postgres_pid": pg[0],
    }


# ---- report ----------------------------------------------------------------------


OBSERVED = {"sse": "SSE", "poll": "poll 2 ms"}


def report(results: dict[str, Any]) -> dict[str, bool]:
    a, b = results["baseline_cli"], results["baseline_api"]
    ours = results["ours"]
    primary = ours["primary"]
    dispatch, e2e, tput = ours[primary]["dispatch"], ours[primary]["end_to_end"], ours["throughput"]
    rows = [
        ("baseline A: papermill CLI (subprocess)", a),
        ("baseline B: papermill.execute_notebook", b),
        (f"ours: dispatch (POST -> first cell started) [{OBSERVED[primary]} runs]", dispatch),
    ]
    other = "sse" if primary == "poll" else "poll"
    for mode in OBSERVED:
        if mode in ours:
            rows.append((f"ours: end to end (POST -> succeeded seen, {OBSERVED[mode]})", ours[mode]["end_to_end"]))
    if other in ours:
        rows.append((f"ours: dispatch [{OBSERVED[other]} runs]", ours[other]["dispatch"]))
    print(f"\n{'measure':<64}{'n':>5}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, row in rows:
        print(f"{name:<64}{row['n']:>5}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['mean_ms']:>10.1f}")
    print(
        f"{'ours: throughput (2 workers, each 2 slots, kernel pool 2)':<64}{tput['runs']:>5}  "
        f"{tput['runs_per_second']:.2f} runs/s ({tput['wall_seconds']:.2f} s wall, submitting took "
        f"{tput['submit_seconds']:.2f} s)"
    )
    print(
        f"{'':<64}       server-side {tput['server_runs_per_second']:.2f} runs/s; until 95% were done "
        f"{tput['runs_per_second_to_95pct']:.2f} runs/s ({tput['seconds_to_95pct_done']:.2f} s); "
        f"runs per worker pid {tput['per_worker_pid']}"
    )
    if tput["statuses"] != {"succeeded": tput["runs"]}:
        print(f"  !! not every throughput run succeeded: {tput['statuses']}; errors: {tput['errors']}")
    vs_api = b["p50_ms"] / e2e["p50_ms"]
    vs_cli = a["p50_ms"] / e2e["p50_ms"]
    results["ratios"] = {"baseline_api_over_ours": round(vs_api, 2), "baseline_cli_over_ours": round(vs_cli, 2)}
    print(f"\nbaseline B p50 / ours end-to-end p50 ({OBSERVED[primary]}) = {vs_api:.1f}x faster")
    print(f"baseline A p50 / ours end-to-end p50 ({OBSERVED[primary]}) = {vs_cli:.1f}x faster")
    checks = {
        f"dispatch p50 <= {DISPATCH_P50_TARGET_MS:.0f} ms ({dispatch['p50_ms']:.1f} ms)": dispatch["p50_ms"]
        <= DISPATCH_P50_TARGET_MS,
        f"end-to-end p50 <= {END_TO_END_P50_TARGET_MS:.0f} ms ({e2e['p50_ms']:.1f} ms)": e2e["p50_ms"]
        <= END_TO_END_P50_TARGET_MS,
        f">= {VS_PAPERMILL_API_TARGET:.0f}x faster than baseline B ({vs_api:.1f}x)": vs_api >= VS_PAPERMILL_API_TARGET,
        f">= {VS_PAPERMILL_CLI_TARGET:.0f}x faster than baseline A ({vs_cli:.1f}x)": vs_cli >= VS_PAPERMILL_CLI_TARGET,
    }
    print(f"\ntargets (ours end to end observed by {OBSERVED[primary]}: {ours['primary_because']}):")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    for mode in OBSERVED:
        if mode not in ours or not ours[mode]["phases"]:
            continue
        print(f"\nwhere the time goes, {OBSERVED[mode]} runs (client, database and worker clocks, one machine):")
        print(f"  {'phase':<46}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
        for name, row in ours[mode]["phases"].items():
            print(f"  {name:<46}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['mean_ms']:>10.1f}")
        if ours[mode]["stalled_runs"]:
            print(
                f"  !! {ours[mode]['stalled_runs']} of {ours[mode]['end_to_end']['n']} runs: the client saw the "
                f"final status > {STALL_SECONDS:.0f} s after it was written ({ours[mode]['stalls_ms']} ms)"
            )
    machine = results.get("machine_load") or {}
    if machine:
        print(f"\nthe machine during each measure ({os.cpu_count()} CPUs; busy share of all of them, ours included):")
        for name, row in machine.items():
            print(
                f"  {name:<20}{row['seconds']:>7.0f} s  CPU busy {row['cpu_busy_percent']:>5.1f}%  "
                f"1-min load at the end {row['load_1min_at_end']:.2f}"
            )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="measured runs of each sequential measure")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs of each, not counted")
    parser.add_argument("--throughput-runs", type=int, default=100, help="runs submitted at once for throughput")
    parser.add_argument("--submit-concurrency", type=int, default=16, help="client threads submitting them")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds before each sequential run of ours")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds for the second worker's pool to fill")
    parser.add_argument(
        "--observe",
        choices=["both", "sse", "poll"],
        default="both",
        help="how the client sees the end: SSE, polling every 2 ms, or both taking turns (targets use SSE)",
    )
    parser.add_argument("--logs", type=Path, help="copy the server's and the workers' logs to this directory")
    parser.add_argument("--skip-baselines", action="store_true", help="ours only (no ratios; for trying things)")
    args = parser.parse_args()

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the clean-up below

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even where started with SIGINT ignored
    started = time.perf_counter()
    results: dict[str, Any] = {}
    machine: dict[str, Any] = {}
    results["machine_load"] = machine
    with tempfile.TemporaryDirectory(prefix="orch-bench-exec-") as tmp:
        root = Path(tmp)
        env = bench_env(root)
        (root / "in.ipynb").write_text(json.dumps(notebook()))
        procs = Processes(env=env, root=root)
        try:
            if args.skip_baselines:
                nothing = {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
                results["baseline_cli"] = results["baseline_api"] = nothing
            else:
                print(f"baseline A: papermill CLI, {args.warmup} warm-up + {args.runs} runs ...")
                with watched(machine, "baseline A"):
                    results["baseline_cli"] = distribution(baseline_cli(root, env, args.runs, args.warmup))
                print(f"  p50 {results['baseline_cli']['p50_ms']:.0f} ms")
                print(
                    f"baseline B: papermill.execute_notebook in-process, {args.warmup} warm-up + {args.runs} runs ..."
                )
                with watched(machine, "baseline B"):
                    results["baseline_api"] = distribution(baseline_api(root, args.runs, args.warmup))
                print(f"  p50 {results['baseline_api']['p50_ms']:.0f} ms")
            results["ours"] = measure_ours(procs, args, machine)
        finally:
            procs.stop_all()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in root.glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
            left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
            for proc in left:  # papermill's kernels of an interrupted baseline B
                with contextlib.suppress(psutil.Error):
                    proc.kill()
    checks = report(results)
    passed = all(checks.values())
    print(f"\nall targets: {'PASS' if passed else 'FAIL'}; whole run {time.perf_counter() - started:.0f} s")
    if args.skip_baselines:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "settings": vars(args),
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "method": {
                    "sequential": f"one run at a time, {args.pause} s pause before each, {args.warmup} warm-up runs",
                    "observe": {
                        "sse": "GET /executions/{id}/events opened right after the 202, until the final status",
                        "poll": "GET /executions/{id} every 2 ms",
                        "targets": OBSERVED[results["ours"]["primary"]],
                    },
                    "dispatch": "first step event (state started) 'at' minus time.time() before the POST",
                    "workers": "jupyter orchestrator worker --kernel_pool_size=2 --worker_slots=2; server run_engine=0",
                },
                **results,
                "targets": {name: ok for name, ok in checks.items()},
                "passed": passed,
            },
            indent=2,
            default=str,
        )
    )
    print(f"written to {RESULTS.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every process started here was stopped")
