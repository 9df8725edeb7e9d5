"""Throughput with 1, 2 and 4 worker processes on one PostgreSQL, and what the queue itself costs per run.

    python bench/scale.py [--workers 1,2,4] [--runs 200] [--queue-runs 300] [--worker-slots 4]
                          [--runs-per-process 1,100]

One run, on 127.0.0.1 only, no network, a throw-away data directory (embedded
PostgreSQL). The work is the trivial two-step LangGraph workflow of
``bench/runtimes.py`` (two ``code`` nodes): what is measured is the platform,
not a framework.

* **Throughput, per worker count.** ``jupyter orchestrator`` serves the API
  (``run_engine=False``); ``N`` ``jupyter orchestrator worker`` processes
  (``runner_preload=langgraph``, ``kernel_pool_size=0``, ``worker_slots``)
  start and their fork servers warm up; ``--runs`` runs are then submitted at
  once through the API from ``--submit-concurrency`` threads, and the clock
  stops when all have ended (read from the database, not through the API, so
  that watching costs the server nothing). Reported: runs/s, the ratio to the
  1-worker figure of the same run, each run's latency from the database's clock
  (queued -> finished, and started -> finished: p50, p99, mean), and the CPU each kind of process spent per
  run (the API server, the workers, their fork servers with every run forked
  from them, PostgreSQL with every backend): the sum is what one run costs the
  machine, so ``cores * 1000 / cpu_ms_per_run`` projects a larger machine.
* **The queue's own cost.** ``--queue-runs`` runs are inserted and then driven
  through :class:`orchestrator_ext.engine.queue.Queue` from this process as a
  worker does, with no process forked: claim (``claim_many``, as the worker
  asks for its free slots at once, and one by one), the run's events (two steps
  and a log line, batched as :class:`EventWriter` does) and finish. Reported
  per run: database round trips and milliseconds, and PostgreSQL's own CPU (its
  processes', for the same work): what one PostgreSQL can carry is then
  ``cores / postgres_cpu_per_run``, whatever the number of workers.

The organization is moved to the ``enterprise`` tier first (``jupyter
orchestrator set-tier``) so its concurrency limit is not the bottleneck. The
figures go to ``bench/results/scale.json``. This machine is shared: the load
average is printed beside each figure, and each ratio is against the baseline
of the same run. Every process started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from batch import submit_all
from framework_work import LANGGRAPH_SPEC
from harness import FINAL, Client, Processes, Started, distribution, postmaster, set_tier, short
from queue_alone import drive_queue
from startup import (
    FORK_SERVER_READY,
    framework_worker,
    new_agent,
    new_workflow,
    postgres_pid,
    set_runs_per_process,
    start_api,
    start_worker,
    superuser_database,
    throwaway,
    wait_logged,
)

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
RESULTS = BENCH / "results" / "scale.json"


# ---- CPU accounting --------------------------------------------------------------


def _cpu(proc: psutil.Process, children: bool) -> float:
    """User + system seconds of ``proc`` (and, with ``children``, of its waited-for children that ended); 0 for
    a process that ended since it was listed (a PostgreSQL backend: its parent's children times count it)."""
    try:
        times = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    total = times.user + times.system
    if children:
        total += times.children_user + times.children_system
    return float(total)


def cpu_by_role(server: Started, workers: list[Started], pg_pid: int) -> dict[str, float]:
    """CPU seconds so far of the server, the workers, the fork servers (with the runs they forked, reaped or
    still alive) and PostgreSQL (the postmaster, its live backends and the backends that ended)."""
    found = {"server": 0.0, "workers": 0.0, "fork servers and runs": 0.0, "postgres": 0.0}
    try:
        found["server"] = _cpu(psutil.Process(server.process.pid), children=False)
        for worker in workers:
            proc = psutil.Process(worker.process.pid)
            found["workers"] += _cpu(proc, children=False)
            for child in proc.children():
                found["fork servers and runs"] += _cpu(child, children=True)
                # runs' processes still alive (kept for the organization's next run: runs_per_process > 1) are
                # not in their server's children times yet; once reaped they are, and no longer listed here
                for run in child.children():
                    found["fork servers and runs"] += _cpu(run, children=False)
        postmaster_proc = psutil.Process(pg_pid)
        found["postgres"] = _cpu(postmaster_proc, children=True)
        for backend in postmaster_proc.children():
            found["postgres"] += _cpu(backend, children=False)
    except psutil.Error:
        pass
    return found


def per_run(before: dict[str, float], after: dict[str, float], runs: int) -> dict[str, float]:
    spent = {role: (after[role] - before.get(role, 0.0)) * 1000 / runs for role in after}
    spent["total"] = sum(spent.values())
    return {role: round(ms, 2) for role, ms in spent.items()}


# ---- the system under test ------------------------------------------------------


def count_final(url: str, workflow_id: str) -> tuple[int, int]:
    """(runs ended, runs succeeded) of a workflow, straight from the table."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = ANY(%s)), count(*) FILTER (WHERE status = 'succeeded')"
            " FROM workflow_executions WHERE workflow_id = %s",
            (list(FINAL), workflow_id),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def run_latencies(url: str, workflow_id: str) -> dict[str, dict[str, Any]]:
    """Each run of a workflow, from the database's own clock: queued -> finished (its wait in the queue
    included, the batch being submitted at once) and started -> finished (the worker's part)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM finished_at - created_at), extract(epoch FROM finished_at - started_at)"
            " FROM workflow_executions WHERE workflow_id = %s AND finished_at IS NOT NULL",
            (workflow_id,),
        ).fetchall()
    return {
        "queued_to_finished": short(distribution([float(row[0]) for row in rows])),
        "started_to_finished": short(distribution([float(row[1]) for row in rows])),
    }


def start_workers(procs: Processes, count: int, args: argparse.Namespace, tag: str = "") -> list[Started]:
    """``count`` workers, ready once their fork servers are; ``tag`` names them apart from earlier ones (their
    logs, where their readiness is read)."""
    options = framework_worker("langgraph", slots=args.worker_slots)
    # one at a time through the database's preparation (N workers altering roles at once collide)
    started = [start_worker(procs, f"worker-{count}{tag}-{index + 1}", *options) for index in range(count)]
    for worker in started:
        wait_logged(worker, FORK_SERVER_READY)
    return started


def langgraph_workflow(session: dict[str, Any], name: str) -> dict[str, Any]:
    """A workflow of the trivial two-step LangGraph work on the session's agent."""
    client: Client = session["client"]
    return new_workflow(client, session["agent"], name, LANGGRAPH_SPEC)


def throughput(
    procs: Processes, session: dict[str, Any], count: int, args: argparse.Namespace, reuse: int = 1
) -> dict[str, Any]:
    """``args.runs`` runs through ``count`` workers, ``reuse`` runs per process: runs/s, and the CPU of each
    kind of process per run."""
    set_runs_per_process(session["client"], session["org"], reuse)
    workflow = langgraph_workflow(session, f"w{count}r{reuse}")
    workers = start_workers(procs, count, args, f"-r{reuse}")
    time.sleep(1.0)  # the workers' first claims and the fork servers' warm-up are over
    url = superuser_database(procs)
    load = os.getloadavg()[0]
    before = cpu_by_role(session["server"], workers, session["pg_pid"])
    started = time.perf_counter()
    submit_all(session["port"], session["token"], workflow["id"], args.runs, args.submit_concurrency)
    submitted = time.perf_counter()
    while (done := count_final(url, workflow["id"]))[0] < args.runs:
        if time.perf_counter() - started > 600:
            raise SystemExit(f"{count} workers: {done[0]} of {args.runs} runs ended in 10 minutes")
        time.sleep(0.05)
    wall = time.perf_counter() - started
    after = cpu_by_role(session["server"], workers, session["pg_pid"])
    for worker in workers:
        procs.stop(worker)
    if done[1] != args.runs:
        raise SystemExit(f"{count} workers: only {done[1]} of {args.runs} runs succeeded")
    return {
        "workers": count,
        "runs_per_process": reuse,
        "runs": args.runs,
        "latency": run_latencies(url, workflow["id"]),
        "wall_seconds": round(wall, 3),
        "submit_seconds": round(submitted - started, 3),
        "runs_per_second": round(args.runs / wall, 2),
        "cpu_ms_per_run": per_run(before, after, args.runs),
        "load_1min_before": round(load, 2),
        "load_1min_after": round(os.getloadavg()[0], 2),
    }


# ---- the queue alone ---------------------------------------------------------------


def queue_cost(procs: Processes, session: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The queue's own work per run, claimed one by one and ``worker_slots`` at a time, with PostgreSQL's CPU."""
    found = []
    for batch in (1, args.worker_slots):
        workflow = langgraph_workflow(session, f"q{batch}")
        # queued through the API, as users do (not what is measured: no worker runs yet)
        submit_all(session["port"], session["token"], workflow["id"], args.queue_runs, args.submit_concurrency)
        pg = psutil.Process(session["pg_pid"])
        before = sum(_cpu(p, children=False) for p in pg.children()) + _cpu(pg, children=True)
        load = os.getloadavg()[0]
        measured = asyncio.run(drive_queue(session["app_url"], args.queue_runs, batch))
        after = sum(_cpu(p, children=False) for p in pg.children()) + _cpu(pg, children=True)
        measured["postgres_cpu_ms_per_run"] = round((after - before) * 1000 / args.queue_runs, 3)
        measured["load_1min_before"] = round(load, 2)
        found.append(measured)
    return found


# ---- the run -------------------------------------------------------------------------


def app_url(procs: Processes) -> str:
    """The application role's URL on the embedded server, as the workers connect (row-level security on)."""
    from urllib.parse import quote

    from orchestrator_ext.db.embedded import PASSWORDS_FILE

    data = procs.root / "data"
    found = postmaster(data / "pgdata")
    assert found is not None
    password = json.loads((data / PASSWORDS_FILE).read_text()).get("orchestrator_app", "")
    return f"postgresql://orchestrator_app:{quote(password, safe='')}@/orchestrator?host={quote(found[1], safe='/')}"


def open_session(procs: Processes) -> dict[str, Any]:
    server = start_api(procs, "--OrchestratorApp.local_model=False")
    agent = new_agent(server.client, "bench-scale", "langgraph")
    set_tier(procs, str(agent["org_id"]))
    return {
        "port": server.port,
        "token": server.token,
        "client": server.client,
        "server": server.process,
        "agent": agent["id"],
        "org": agent["org_id"],
        "pg_pid": postgres_pid(procs),
        "app_url": app_url(procs),
    }


def report(results: dict[str, Any]) -> None:
    rows = results["throughput"]
    base = rows[0]["runs_per_second"]
    fresh = {row["workers"]: row["runs_per_second"] for row in rows if row["runs_per_process"] == 1}
    print(
        f"\nthroughput, {rows[0]['runs']} trivial LangGraph runs submitted at once (worker_slots {results['slots']};"
        f" ratios against {rows[0]['workers']} worker(s), and against a fresh fork per run, in the same run):"
    )
    for row in rows:
        cpu = row["cpu_ms_per_run"]
        parts = ", ".join(f"{role} {ms:.1f}" for role, ms in cpu.items() if role != "total")
        mode = "fresh fork" if row["runs_per_process"] == 1 else f"{row['runs_per_process']} runs/process"
        against = fresh.get(row["workers"])
        versus = f" x{row['runs_per_second'] / against:.2f} vs fresh fork" if against and mode != "fresh fork" else ""
        print(
            f"  {row['workers']} worker(s), {mode}: {row['runs_per_second']:6.1f} runs/s  "
            f"x{row['runs_per_second'] / base:.2f}{versus}"
            f"  (load {row['load_1min_before']:.1f} -> {row['load_1min_after']:.1f}); CPU per run "
            f"{cpu['total']:.1f} ms: {parts}"
        )
        for what, found in row["latency"].items():
            print(
                f"      {what.replace('_', ' ')}: p50 {found['p50_ms']:.1f}, p99 {found['p99_ms']:.1f}, "
                f"mean {found['mean_ms']:.1f} ms"
            )
    print("\nthe queue alone (claim, 3 events, finish; no process forked):")
    for row in results["queue"]:
        print(
            f"  claimed {row['claimed_per_round_trip']} per round trip: {row['round_trips_per_run']:.2f} round trips "
            f"and {row['ms_per_run']:.2f} ms per run; PostgreSQL CPU {row['postgres_cpu_ms_per_run']:.2f} ms per run"
            f" (load {row['load_1min_before']:.1f})"
        )
        for part in ("claim", "events", "finish"):
            found = row[part]
            print(f"      {part}: p50 {found['p50_ms']:.2f}, p99 {found['p99_ms']:.2f}, mean {found['mean_ms']:.2f} ms")
    if len(results["queue"]) > 1:
        one, many = results["queue"][0], results["queue"][-1]
        print(
            f"  claiming {many['claimed_per_round_trip']} at a time against one at a time (same run): "
            f"x{one['ms_per_run'] / many['ms_per_run']:.2f} faster, "
            f"x{one['round_trips_per_run'] / many['round_trips_per_run']:.2f} fewer round trips"
        )
    best = min(rows, key=lambda row: row["cpu_ms_per_run"]["total"])
    cores = os.cpu_count() or 1
    pg_ms = results["queue"][-1]["postgres_cpu_ms_per_run"]
    print(
        f"\nprojection: a run costs the machine {best['cpu_ms_per_run']['total']:.1f} ms of CPU "
        f"({cores} cores here: at most {cores * 1000 / best['cpu_ms_per_run']['total']:.0f} runs/s); "
        f"per extra core about {1000 / best['cpu_ms_per_run']['total']:.0f} runs/s while PostgreSQL keeps up; "
        f"the queue's share of PostgreSQL is {pg_ms:.2f} ms per run, so one PostgreSQL core carries the queue of "
        f"about {1000 / pg_ms:.0f} runs/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker process counts")
    parser.add_argument("--runs", type=int, default=200, help="runs submitted at once for each worker count")
    parser.add_argument("--queue-runs", type=int, default=300, help="runs driven through the queue alone")
    parser.add_argument("--worker-slots", type=int, default=4, help="worker_slots of each worker")
    parser.add_argument("--submit-concurrency", type=int, default=16, help="client threads submitting the runs")
    parser.add_argument(
        "--runs-per-process",
        default="1,100",
        help="comma-separated runs_per_process settings measured at each worker count (1: a fresh fork per run)",
    )
    args = parser.parse_args()
    counts = [int(count) for count in args.workers.split(",") if count]
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_at_start": os.getloadavg()},
        "slots": args.worker_slots,
    }
    with throwaway("obs-") as procs:
        session = open_session(procs)
        results["queue"] = queue_cost(procs, session, args)
        results["throughput"] = []
        for count in counts:
            for reuse in [int(value) for value in args.runs_per_process.split(",") if value]:
                row = throughput(procs, session, count, args, reuse)
                print(
                    f"{count} worker(s), {reuse} run(s) per process: {row['runs_per_second']} runs/s, "
                    f"CPU ms per run {row['cpu_ms_per_run']}"
                )
                results["throughput"].append(row)
    report(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    main()
