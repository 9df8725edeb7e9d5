"""Latency and throughput of notebook executions, on both notebook engines, against papermill.

    python bench/executions.py [--runs 40] [--paused-runs 10] [--pause 0] [--paused 1.0]
                               [--throughput-runs 200] [--engines zygote,kernel] [--baseline-runs 8]

One run, on 127.0.0.1 only, no network: the same notebook (a ``parameters``
cell ``x = 1`` and one code cell ``y = x + 1``) is executed

* baseline A: ``papermill in.ipynb out.ipynb``, the CLI as a subprocess (wall time);
* baseline B: ``papermill.execute_notebook(in, out)`` in this process (a fresh kernel each call);
* ours, for each notebook engine (``--engines``; ``notebook_engine=zygote``, the
  default, and ``kernel``, the previous engine, as the before/after baseline of
  the same run), in two configurations, each with a throw-away data dir and
  embedded PostgreSQL:

  - *personal mode*: ``jupyter orchestrator`` with its own in-process worker;
  - *split mode, 2 workers*: the server with ``run_engine=False`` and two
    ``jupyter orchestrator worker`` processes on its database.

  Every worker, of either engine, has ``worker_slots=--slots`` (8) and
  ``kernel_pool_size=2`` (used by the kernel engine only).

  In each, runs go one after another **back to back** (``--pause``, default 0:
  the next POST as soon as the last run's end was seen), and then ``--paused-runs``
  runs with ``--paused`` seconds before each (so that a warm kernel pool can
  refill; printed beside, and labelled as paused). *End to end* is the client's
  ``time.time()`` just before ``POST /workflows/{id}/execute`` to the
  ``succeeded`` status event read on ``GET /executions/{id}/events`` (SSE,
  opened right after the 202; ``--observe poll`` polls ``GET /executions/{id}``
  every 2 ms instead); *dispatch* is to the worker's first ``step`` event.
  Through 2 workers, ``--throughput-runs`` runs are then submitted at once from
  a thread pool; the clock stops when none is queued or running (all must have
  succeeded).

The organization is moved to the ``enterprise`` tier first so its concurrency
limit is not the bottleneck. Prints p50/p99/mean, the load average beside each
measure, and issue 15's targets as PASS/FAIL (the zygote engine's figures,
each configuration); the figures go to ``bench/results/executions.json``. Every
process started here is stopped at the end, also on Ctrl-C or a failure. This
is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from batch import throughput
from harness import (
    API,
    Client,
    Processes,
    bench_env,
    distribution,
    logged_problems,
    runs_per_worker,
    set_tier,
)
from notebook_runs import (
    baseline_api,
    baseline_cli,
    notebook,
    sequential,
    summarize,
)
from startup import run_main, start_api, start_worker

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results" / "executions.json"
#: issue 15's targets, back to back, for the zygote engine in each configuration
P50_TARGET_MS, P99_TARGET_MS = 60.0, 150.0
VS_PAPERMILL_API_TARGET, VS_PAPERMILL_CLI_TARGET = 10.0, 30.0
RUNS_PER_SECOND_TARGET = 40.0


def load() -> float:
    return round(os.getloadavg()[0], 2)


@contextlib.contextmanager
def configuration(root: Path, name: str) -> Iterator[Processes]:
    """A throw-away data dir and its processes, all stopped when the measure ends."""
    folder = root / name
    folder.mkdir()
    procs = Processes(env=bench_env(folder), root=folder)
    try:
        yield procs
    finally:
        procs.stop_all()


def prepare(procs: Processes, client: Client) -> list[str]:
    """An agent with two notebook workflows (sequential, throughput), its organization on the enterprise tier."""
    nb = notebook()
    agent = client.call("POST", f"{API}/agents", {"name": "bench-notebook", "framework": "notebook"}, expect=(201,))
    workflows = [
        client.call(
            "POST",
            f"{API}/agents/{agent['id']}/workflows",
            {"name": name, "spec": {"notebook": {"content": nb}}},
            expect=(201,),
        )["id"]
        for name in ("latency", "throughput")
    ]
    set_tier(procs, agent["org_id"])
    return workflows


def latency(client: Client, workflow_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """Back to back, then paused: each with the load average at its end."""
    found: dict[str, Any] = {}
    for label, runs, pause in (("back_to_back", args.runs, args.pause), ("paused", args.paused_runs, args.paused)):
        if runs <= 0:
            continue
        kept = sequential(client, workflow_id, runs, args.warmup, pause, args.observe)
        found[label] = {**summarize(kept), "pause_seconds": pause, "load_1min": load()}
    return found


def engine_options(engine: str, args: argparse.Namespace) -> tuple[str, ...]:
    """The same settings for both engines: the engine, the slots, two warm kernels (used by 'kernel' only)."""
    return (
        f"--OrchestratorApp.notebook_engine={engine}",
        f"--OrchestratorApp.worker_slots={args.slots}",
        "--OrchestratorApp.kernel_pool_size=2",
    )


def personal(root: Path, engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """The personal mode: the server runs its own worker."""
    with configuration(root, f"{engine}-personal") as procs:
        server = start_api(procs, "--OrchestratorApp.run_engine=True", *engine_options(engine, args))
        workflows = prepare(procs, server.client)
        print(f"  {engine}, personal mode: {args.runs} back to back + {args.paused_runs} paused ...", flush=True)
        found = latency(server.client, workflows[0], args)
        server.client.close()
        procs.note_descendants()
        return {**found, "logged_problems": logged_problems(server.process.log)}


def split(root: Path, engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """The split mode: the server without an engine, two worker processes."""
    with configuration(root, f"{engine}-split") as procs:
        server = start_api(procs)
        workflows = prepare(procs, server.client)
        workers = [start_worker(procs, f"worker-{n}", *engine_options(engine, args)) for n in (1, 2)]
        time.sleep(args.settle)  # their warm processes start
        print(f"  {engine}, 2 workers: {args.runs} back to back + {args.paused_runs} paused ...", flush=True)
        found = latency(server.client, workflows[0], args)
        print(f"  {engine}, 2 workers: {args.throughput_runs} runs submitted at once ...", flush=True)
        tput = throughput(server.port, server.token, workflows[1], args.throughput_runs, args.submit_concurrency)
        tput["load_1min"] = load()
        tput["per_worker_pid"] = runs_per_worker(procs.root / "data" / "pgdata", workflows[1])
        server.client.close()
        procs.note_descendants()
        problems = {entry.name: logged_problems(entry.log) for entry in (server.process, *workers)}
        return {**found, "throughput": tput, "logged_problems": problems}


def row(name: str, values: dict[str, Any], note: str = "") -> None:
    print(
        f"{name:<52}{values['n']:>5}{values['p50_ms']:>9.1f}{values['p99_ms']:>9.1f}{values['mean_ms']:>9.1f}  {note}"
    )


def report(results: dict[str, Any]) -> dict[str, bool]:
    a, b = results["baseline_cli"], results["baseline_api"]
    print(f"\n{'POST -> succeeded seen (end to end)':<52}{'n':>5}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}  load")
    row("baseline A: papermill CLI (subprocess)", a, f"{a.get('load_1min', '')}")
    row("baseline B: papermill.execute_notebook", b, f"{b.get('load_1min', '')}")
    checks: dict[str, bool] = {}
    for engine, modes in results["ours"].items():
        for mode, found in modes.items():
            for label in ("back_to_back", "paused"):
                if label not in found:
                    continue
                measure = found[label]
                paused = f"PAUSED {measure['pause_seconds']:g} s before each, " if label == "paused" else ""
                row(
                    f"{engine}, {mode}: {label.replace('_', ' ')}",
                    measure["end_to_end"],
                    f"{paused}{measure['load_1min']}",
                )
            if engine == "zygote" and "back_to_back" in found:
                checks.update(targets(mode, found["back_to_back"]["end_to_end"], a, b))
            if "throughput" in found:
                tput = found["throughput"]
                print(
                    f"{engine}, {mode}: throughput{'':<30}{tput['runs']:>5}  {tput['runs_per_second']:.1f} runs/s "
                    f"({tput['wall_seconds']:.2f} s wall; server-side {tput['server_runs_per_second']:.1f} runs/s; "
                    f"per worker {tput['per_worker_pid']}; statuses {tput['statuses']})  load {tput['load_1min']}"
                )
                if engine == "zygote":
                    rate = tput["runs_per_second"]
                    ok = rate >= RUNS_PER_SECOND_TARGET and tput["statuses"] == {"succeeded": tput["runs"]}
                    checks[f"{mode}: >= {RUNS_PER_SECOND_TARGET:.0f} runs/s, all succeeded ({rate:.1f})"] = ok
    phases(results["ours"])
    before_after(results["ours"])
    print("\ntargets (zygote engine, back to back):")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return checks


def targets(mode: str, e2e: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> dict[str, bool]:
    vs_api, vs_cli = b["p50_ms"] / e2e["p50_ms"], a["p50_ms"] / e2e["p50_ms"]
    return {
        f"{mode}: p50 <= {P50_TARGET_MS:.0f} ms ({e2e['p50_ms']:.1f})": e2e["p50_ms"] <= P50_TARGET_MS,
        f"{mode}: p99 <= {P99_TARGET_MS:.0f} ms ({e2e['p99_ms']:.1f})": e2e["p99_ms"] <= P99_TARGET_MS,
        f"{mode}: >= {VS_PAPERMILL_API_TARGET:.0f}x papermill in-process ({vs_api:.1f}x)": vs_api
        >= VS_PAPERMILL_API_TARGET,
        f"{mode}: >= {VS_PAPERMILL_CLI_TARGET:.0f}x papermill CLI ({vs_cli:.1f}x)": vs_cli >= VS_PAPERMILL_CLI_TARGET,
    }


def phases(ours: dict[str, Any]) -> None:
    """Where the time of a back-to-back run goes (client, database and worker clocks, one machine)."""
    for engine, modes in ours.items():
        for mode, found in modes.items():
            measured = found.get("back_to_back", {}).get("phases") or {}
            if measured:
                title = f"where the time goes, {engine}, {mode}, back to back:"
                print(f"\n{title:<54}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
            for name, values in measured.items():
                print(f"  {name:<52}{values['p50_ms']:>9.1f}{values['p99_ms']:>9.1f}{values['mean_ms']:>9.1f}")


def before_after(ours: dict[str, Any]) -> None:
    """The zygote engine against the previous (kernel) engine, measured in this same run."""
    if "zygote" not in ours or "kernel" not in ours:
        return
    print("\nzygote vs kernel engine (same run), back to back p50 / mean:")
    for mode, found in ours["zygote"].items():
        old = ours["kernel"].get(mode, {}).get("back_to_back")
        new = found.get("back_to_back")
        if old and new:
            o, n = old["end_to_end"], new["end_to_end"]
            p50, mean = f"{o['p50_ms']:.1f} -> {n['p50_ms']:.1f}", f"{o['mean_ms']:.1f} -> {n['mean_ms']:.1f}"
            print(f"  {mode}: {p50} ms p50, {mean} ms mean")
        if "throughput" in found and "throughput" in ours["kernel"].get(mode, {}):
            before, after = ours["kernel"][mode]["throughput"], found["throughput"]
            print(f"  {mode}: {before['runs_per_second']:.1f} -> {after['runs_per_second']:.1f} runs/s")


def baselines(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = bench_env(root)
    (root / "in.ipynb").write_text(json.dumps(notebook()))
    found: dict[str, Any] = {}
    print(f"baselines: papermill CLI and in-process, {args.warmup} warm-up + {args.baseline_runs} runs each ...")
    found["baseline_cli"] = {**distribution(baseline_cli(root, env, args.baseline_runs, 1)), "load_1min": load()}
    found["baseline_api"] = {**distribution(baseline_api(root, args.baseline_runs, 1)), "load_1min": load()}
    return found


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="back-to-back runs of each configuration")
    parser.add_argument("--paused-runs", type=int, default=10, help="runs with --paused seconds before each")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs before each series, not counted")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds before each back-to-back run (0)")
    parser.add_argument("--paused", type=float, default=1.0, help="seconds before each paused run")
    parser.add_argument("--throughput-runs", type=int, default=200, help="runs submitted at once through 2 workers")
    parser.add_argument("--submit-concurrency", type=int, default=16, help="client threads submitting them")
    parser.add_argument("--baseline-runs", type=int, default=8, help="runs of each papermill baseline")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds for the workers' warm processes")
    parser.add_argument("--slots", type=int, default=8, help="worker_slots of every worker (both engines)")
    parser.add_argument("--engines", default="zygote,kernel", help="notebook engines measured, in this order")
    parser.add_argument("--modes", default="personal,split", help="configurations measured")
    parser.add_argument("--observe", choices=["sse", "poll"], default="sse", help="how the client sees the end")
    parser.add_argument("--skip-baselines", action="store_true", help="ours only (no ratios; for trying things)")
    return parser.parse_args()


def main() -> None:
    args = parse()
    started = time.perf_counter()
    results: dict[str, Any] = {"ours": {}}
    with tempfile.TemporaryDirectory(prefix="orch-bench-exec-") as tmp:
        root = Path(tmp)
        try:
            if args.skip_baselines:
                nothing = {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
                results["baseline_cli"] = results["baseline_api"] = nothing
            else:
                results.update(baselines(root, args))
            for engine in args.engines.split(","):
                measures = {"personal": personal, "split": split}
                results["ours"][engine] = {m: measures[m](root, engine, args) for m in args.modes.split(",")}
        finally:
            for proc in psutil.Process().children(recursive=True):  # papermill's kernels of an interrupted run
                with contextlib.suppress(psutil.Error):
                    proc.kill()
    checks = report(results)
    passed = all(checks.values())
    print(f"\nall targets: {'PASS' if passed else 'FAIL'}; whole run {time.perf_counter() - started:.0f} s")
    if not args.skip_baselines:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
        document = {"settings": vars(args), "machine": machine, **results, "targets": checks, "passed": passed}
        RESULTS.write_text(json.dumps(document, indent=2, default=str))
        print(f"written to {RESULTS.relative_to(BENCH.parent)}")


if __name__ == "__main__":
    run_main(main)  # SIGTERM and Ctrl-C stop every process started here
