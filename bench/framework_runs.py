"""Ours, in ``bench/runtimes.py``: the same work as a workflow run through the API by workers, one run at a time
(back to back by default: the next sent as soon as the last end was seen; seen ending on the SSE stream or by
polling), then many at once through two
workers; where the time went, which worker ran what, and what the runs left in the runs' databases.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psutil
from batch import throughput
from framework_baselines import median_usage
from framework_work import BENCH, MODEL_FRAMEWORKS, expected_output, inputs_of, spec_of
from harness import (
    API,
    FINAL,
    Client,
    Processes,
    Started,
    distribution,
    logged_problems,
    modes,
    runs_per_worker,
    shared_postgres,
    timestamp,
    watched,
)
from startup import framework_worker, new_workflow, start_worker, superuser_database

#: ``--observe``: how the client sees a run's end (as in bench/executions.py)
OBSERVE = ("both", "sse", "poll")
OBSERVED = {"sse": "SSE", "poll": "poll 2 ms"}
#: a final status seen this long after it was written: the SSE client was not woken (as in bench/executions.py)
STALL_SECONDS = 1.0
LAST_PHASE = "4 finished row -> seen by client"
POLL_SECONDS = 0.002
RUN_DEADLINE_SECONDS = 300.0
#: a worker whose processes use less than this share of one CPU over IDLE_WINDOW seconds is idle
IDLE_CPU_SHARE = 0.05
IDLE_WINDOW = 0.1


@dataclass
class Session:
    """The server and what the frameworks share: its client, the organization, the PostgreSQL it started."""

    procs: Processes
    port: int
    token: str
    client: Client
    server: Started
    org_id: str
    postgres_pid: int
    #: each measured framework's agent id
    agents: dict[str, str]


def tree_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds so far of each process in the trees under ``pids``."""
    found: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            top = psutil.Process(pid)
            for proc in [top, *top.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    found[proc.pid] = times.user + times.system + times.children_user + times.children_system
    return found


#: the longest wait for both workers to be ready and idle before the batch of the throughput measure
BATCH_SETTLE_SECONDS = 30.0


def spacing(args: argparse.Namespace) -> str:
    """How the sequential runs follow one another, as the report says it."""
    if args.settle_max <= 0 and args.pause <= 0:
        return "back to back (no pause)"
    waits = [f"each once the worker is idle (at most {args.settle_max:g} s)"] if args.settle_max > 0 else []
    waits += [f"PAUSED {args.pause:g} s before each"] if args.pause > 0 else []
    return ", ".join(waits)


def wait_idle(pids: list[int], most: float) -> float | None:
    """Wait until the trees under ``pids`` are idle (what the workers keep warm is ready); the seconds waited,
    None when they were still busy after ``most`` seconds."""
    started = time.perf_counter()
    before = tree_cpu(pids)
    while True:
        time.sleep(IDLE_WINDOW)
        after = tree_cpu(pids)
        spent = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
        if spent < IDLE_CPU_SHARE * IDLE_WINDOW:
            return time.perf_counter() - started
        if time.perf_counter() - started > most:
            return None
        before = after


@dataclass
class Run:
    """One sequential run: the client's clocks, the execution as last read, and how long its worker took to idle."""

    t0_wall: float
    t0: float
    observed: float
    execution: dict[str, Any]
    idle_wait: float | None

    def phases(self) -> dict[str, float] | None:
        """Where the time went, in seconds, from the client's, the database's and the worker's clocks."""
        e = self.execution
        if not e.get("started_at") or not e.get("finished_at"):
            return None
        created, started, finished = (timestamp(e[k]) for k in ("created_at", "started_at", "finished_at"))
        steps = (e.get("outputs") or {}).get("steps") or []
        inside = sum(float(step.get("latency_ms") or 0) for step in steps) / 1000
        observed_wall = self.t0_wall + (self.observed - self.t0)
        return {
            "1 POST -> queued row inserted": created - self.t0_wall,
            "2 queued -> started (claimed)": started - created,
            "3 started -> finished (worker)": finished - started,
            "   of which the steps themselves (runtime's latency_ms)": inside,
            "4 finished row -> seen by client": observed_wall - finished,
        }


def execute_once(
    client: Client, workflow_id: str, inputs: dict[str, Any], observe: str
) -> tuple[float, float, float, Any]:
    """POST, then see the run end: on its SSE stream, opened right after the 202 (``sse``), or by a GET every
    2 ms (``poll``). (wall clock before, perf_counter before, when the end was seen, the run as read after)."""
    t0_wall = time.time()
    t0 = time.perf_counter()
    execution = client.call("POST", f"{API}/workflows/{workflow_id}/execute", {"inputs": inputs}, expect=(202,))
    path = f"{API}/executions/{execution['id']}"
    deadline = t0 + RUN_DEADLINE_SECONDS
    if observe == "sse":
        for event, at in client.events(execution["id"]):
            if event.get("kind") == "status" and (event.get("data") or {}).get("status") in FINAL:
                return t0_wall, t0, at, client.call("GET", path)  # the run as written (outputs), not timed
            if time.perf_counter() > deadline:
                break
        # the stream ended without the final status (it should not): polling, as below, says when it ends
    while True:
        current = client.call("GET", path)
        if current["status"] in FINAL:
            return t0_wall, t0, time.perf_counter(), current
        if time.perf_counter() > deadline:
            raise SystemExit(f"run {execution['id']} did not end within {RUN_DEADLINE_SECONDS:.0f} s")
        time.sleep(POLL_SECONDS)


def sequential(
    client: Client, framework: str, workflow_id: str, runs: int, warmup: int, worker: Started, args: argparse.Namespace
) -> dict[str, list[Run]]:
    """One run at a time, back to back (``--settle-max`` > 0: each once the worker is idle; ``--pause``: that many
    seconds before each); with both ways of observing, they take turns (the same conditions for each)."""
    kept: dict[str, list[Run]] = {mode: [] for mode in modes(args.observe)}
    for i in range(warmup + runs):
        for mode, runs_seen in kept.items():
            idle = wait_idle([worker.process.pid], args.settle_max) if args.settle_max > 0 else 0.0
            if args.pause > 0:
                time.sleep(args.pause)
            t0_wall, t0, observed, execution = execute_once(client, workflow_id, inputs_of(framework, args.model), mode)
            if execution["status"] != "succeeded":
                raise SystemExit(
                    f"{framework} run {execution['id']} ended {execution['status']}: "
                    f"{json.dumps(execution.get('error'))}"
                )
            problem = expected_output(framework, (execution.get("outputs") or {}).get("output"), args.model)
            if problem:
                raise SystemExit(f"{framework} run {execution['id']}: {problem}")
            if i >= warmup:
                runs_seen.append(Run(t0_wall, t0, observed, execution, idle))
    return kept


def steps_of(execution: dict[str, Any]) -> str:
    """A run's steps (``outputs.steps``), as ``node (type)`` in their order."""
    steps = (execution.get("outputs") or {}).get("steps") or []
    return ", ".join(f"{step.get('node')} ({step.get('type')})" for step in steps) or "none"


def summarize(runs: list[Run]) -> dict[str, Any]:
    phases = [p for r in runs if (p := r.phases()) is not None]
    busy = [r for r in runs if r.idle_wait is None]
    usages = [(r.execution.get("outputs") or {}).get("usage") or {} for r in runs]
    late = [p[LAST_PHASE] for p in phases if p[LAST_PHASE] > STALL_SECONDS]
    return {
        "usage_median": median_usage(usages),
        "steps": dict(Counter(steps_of(r.execution) for r in runs)),
        "end_to_end": distribution([r.observed - r.t0 for r in runs]),
        "phases": {name: distribution([p[name] for p in phases]) for name in phases[0]} if phases else {},
        "idle_wait": distribution([r.idle_wait for r in runs if r.idle_wait is not None]),
        "runs_started_on_a_busy_worker": len(busy),
        "stalled_runs": len(late),
    }


def choose_primary(summaries: dict[str, dict[str, Any]]) -> dict[str, str]:
    """SSE if it works; if the stream let a run's end wait (a wake-up lost until the keep-alive), polling."""
    if "sse" in summaries and "poll" in summaries and summaries["sse"]["stalled_runs"]:
        why = f"SSE missed the final status of {summaries['sse']['stalled_runs']} runs for > {STALL_SECONDS:.0f} s"
        return {"primary": "poll", "primary_because": why}
    mode = "sse" if "sse" in summaries else "poll"
    if len(summaries) == 1:
        return {"primary": mode, "primary_because": f"only {OBSERVED[mode]} was measured"}
    return {"primary": mode, "primary_because": "SSE worked"}


def checkpointed(procs: Processes, execution_ids: list[str]) -> dict[str, Any]:
    """How many of these runs have LangGraph checkpoints in their organization's runs' database (their thread
    is the run's id)."""
    import psycopg

    threads, checkpoints = 0, 0
    try:
        with psycopg.connect(superuser_database(procs, "postgres")) as conn:
            query = "SELECT datname FROM pg_database WHERE datname LIKE 'orch\\_runs\\_%'"
            names = [row[0] for row in conn.execute(query)]
        for name in names:
            with psycopg.connect(superuser_database(procs, name)) as conn:
                if conn.execute("SELECT to_regclass('checkpoints')").fetchone() == (None,):
                    continue  # no run of this organization ever needed a checkpoint: no table
                row = conn.execute(
                    "SELECT count(DISTINCT thread_id), count(*) FROM checkpoints WHERE thread_id = ANY(%s)",
                    (execution_ids,),
                ).fetchone()
            assert row is not None  # an aggregate answers one row
            threads, checkpoints = threads + int(row[0]), checkpoints + int(row[1])
    except psycopg.Error as exc:
        return {"runs": len(execution_ids), "checkpointed_runs": 0, "checkpoints": 0, "problem": str(exc).strip()}
    return {"runs": len(execution_ids), "checkpointed_runs": threads, "checkpoints": checkpoints}


def worker_options(framework: str, args: argparse.Namespace) -> list[str]:
    options = list(framework_worker(framework, slots=args.worker_slots, runners=args.runner_pool_size))
    if framework in MODEL_FRAMEWORKS and args.model == "fake":
        options.append(f"--OrchestratorApp.files_root={BENCH}")  # where the runs import fake_agents from
    return options


def measure_ours(
    session: Session, framework: str, args: argparse.Namespace, machine: dict[str, Any], tag: str = ""
) -> dict[str, Any]:
    """Ours, sequential then throughput, on fresh workers (``tag`` in their names: their own logs)."""
    procs, client = session.procs, session.client
    model = framework in MODEL_FRAMEWORKS
    runs = args.model_runs if model else args.runs
    tput_runs = args.model_throughput_runs if model else args.throughput_runs
    spec = spec_of(framework, args.max_tokens, args.model)
    inputs = inputs_of(framework, args.model)
    agent_id = session.agents[framework]
    workflows = [new_workflow(client, agent_id, name, spec)["id"] for name in ("latency", "throughput")]
    worker_a = start_worker(procs, f"{framework}{tag}-worker-1", *worker_options(framework, args))
    print(
        f"  {worker_a.name} (pid {worker_a.process.pid}: {' '.join(worker_options(framework, args))}) started; "
        f"{shared_postgres(procs, session.postgres_pid, [worker_a])}"
    )
    observed = " and ".join(OBSERVED[mode] for mode in modes(args.observe))
    print(
        f"  ours, sequential: {args.warmup} warm-up + {runs} runs seen ending by each of {observed}"
        f"{', taking turns' if args.observe == 'both' else ''}, {spacing(args)} ..."
    )
    with watched(machine, f"{framework}{tag}: ours, sequential"):
        runs_seen = sequential(client, framework, workflows[0], runs, args.warmup, worker_a, args)
    procs.note_descendants()
    per_worker = runs_per_worker(procs.root / "data" / "pgdata", workflows[0])
    if set(per_worker) != {str(worker_a.process.pid)}:
        raise SystemExit(f"runs were claimed by {per_worker}, not only {worker_a.name} (pid {worker_a.process.pid})")
    summaries = {mode: summarize(seen) for mode, seen in runs_seen.items()}
    for mode, summary in summaries.items():
        print(
            f"    {OBSERVED[mode]}: p50 {summary['end_to_end']['p50_ms']:.1f} ms, "
            f"p99 {summary['end_to_end']['p99_ms']:.1f} ms"
        )
    primary = choose_primary(summaries)

    worker_b = start_worker(procs, f"{framework}{tag}-worker-2", *worker_options(framework, args))
    print(
        f"  {worker_b.name} (pid {worker_b.process.pid}) started; "
        f"{shared_postgres(procs, session.postgres_pid, [worker_a, worker_b])}"
    )
    # the batch arrives at two ready workers (the second one's fork server started): not a pause between runs
    settled = wait_idle([worker_a.process.pid, worker_b.process.pid], max(args.settle_max, BATCH_SETTLE_SECONDS))
    print(f"  ours, throughput: {tput_runs} runs submitted at once through 2 workers ...")
    with watched(machine, f"{framework}{tag}: ours, throughput"):
        tput = throughput(session.port, session.token, workflows[1], tput_runs, args.submit_concurrency, inputs)
    tput["workers_idle_before"] = settled is not None
    tput["per_worker_pid"] = runs_per_worker(procs.root / "data" / "pgdata", workflows[1])
    if framework == "langgraph":
        tput["checkpoints"] = checkpointed(procs, tput["execution_ids"])
    print(
        f"    {tput['runs_per_second']:.2f} runs/s ({tput['wall_seconds']:.2f} s), statuses {tput['statuses']}, "
        f"per worker pid {tput['per_worker_pid']}"
    )
    procs.note_descendants()
    problems = {entry.name: logged_problems(entry.log) for entry in (worker_a, worker_b)}
    for entry in (worker_b, worker_a):
        procs.stop(entry)
    return {
        "spec": spec,
        "inputs": inputs,
        "workers": {"count_sequential": 1, "count_throughput": 2, "options": worker_options(framework, args)},
        "worker_pids": [worker_a.process.pid, worker_b.process.pid],
        #: the runs the overhead is measured on (``observed_by``); each way of observing in ``sequential_by_observe``
        "observed_by": primary["primary"],
        "observed_by_because": primary["primary_because"],
        "sequential": summaries[primary["primary"]],
        "sequential_by_observe": summaries,
        "throughput": tput,
        "logged_problems": problems,
    }


def overhead_of(baselines: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Ours (POST -> succeeded seen) minus the first baseline (the framework called in this process)."""
    primary = next(iter(baselines.values()))
    seen = ours["sequential"]["end_to_end"]
    return {
        "against": next(iter(baselines)),
        "ours_observed_by": ours["observed_by"],
        "p50_ms": round(seen["p50_ms"] - primary["p50_ms"], 2),
        "p50_ratio": round(seen["p50_ms"] / primary["p50_ms"], 2),
        "p99_ms": round(seen["p99_ms"] - primary["p99_ms"], 2),
        "mean_ms": round(seen["mean_ms"] - primary["mean_ms"], 2),
    }
