"""Latency and throughput of framework runs (LangGraph, CrewAI, Agno), against each framework called directly.

    python bench/runtimes.py [--frameworks langgraph,crewai,agno] [--runs 50] [--warmup 3] [--throughput-runs 200]
                             [--model fake|local] [--observe both|sse|poll] [--runs-per-process 100]

One run, on 127.0.0.1 only, no network. What is measured is our overhead: for
each framework, the same trivial two-step workflow is run

* baseline: in this process, by the framework itself, one call after the other
  (wall time of each call):

  - LangGraph: a ``StateGraph`` of two nodes (``a`` returns 1, ``b`` returns
    ``a + 1``), no checkpointer; baseline A compiled once and invoked for each
    call, baseline B built and compiled in each call;
  - CrewAI: a sequential ``Crew`` of two agents and two tasks (the second
    task receives the first one's output), built and kicked off in each call;
  - Agno: a ``Team`` in ``route`` mode with one member ``Agent``, built and
    run (``Team.run``) in each call: the leader's one model call delegates the
    message to the member, the member's answer is the team's;

* ours, twice in the same run: with the organization's default
  ``runs_per_process`` 1 (a fresh fork for every run), then with
  ``--runs-per-process`` N (its opt-in: one forked process serves N of its runs
  in turn, ``orchestrator_ext/engine/reuse.py``), with fresh workers each time;
  the report gives both, their ratios, and judges the targets on the opt-in
  mode where it is measured (``--runs-per-process 1``: only the fresh fork).
  Each is the same work as a workflow spec, ``POST /workflows/{id}/execute`` to
  ``succeeded`` seen by the client, one run at a time after warm-up runs not
  counted. The client sees the end (``--observe``, as in ``bench/executions.py``)
  on the SSE stream ``GET /executions/{id}/events`` opened right after the 202
  (``sse``), or by polling ``GET /executions/{id}`` every 2 ms (``poll``: on a
  2-CPU machine the poller's requests take a CPU from the API server and the
  workers), or ``both``, taking turns (the default). The overhead uses the SSE
  runs unless the stream left a final status unseen for more than a second in
  any run (a lost wake-up); then it uses the polled runs, and says so.
  ``jupyter orchestrator`` runs with ``--OrchestratorApp.run_engine=False``
  and ``--OrchestratorApp.local_model=False`` (a throw-away data dir, embedded
  PostgreSQL); the runs go to a separate ``jupyter orchestrator worker``
  (``worker_slots=4``, ``runner_pool_size=1``, ``runner_preload=<framework>``,
  ``kernel_pool_size=0``) on the same embedded database (same
  ``ORCHESTRATOR_DATA_DIR`` and ``ORCHESTRATOR_ENCRYPTION_KEYS``). The runs
  come back to back, as a user's do: the next is sent as soon as the client
  saw the last one end. ``--settle-max`` S makes each wait until the worker's
  processes are idle (under 5% of a CPU over 100 ms), at most S seconds, and
  ``--pause`` adds seconds before each; the report says so. Ours includes what the direct call does not do:
  the queue, a runner process, the spec turned into the framework's objects,
  LangGraph's checkpointer (in memory; written to the runs' database only by a run
  that waits for a human or fails), the events and
  the result written to PostgreSQL. *Overhead* is ours p50 minus baseline
  (A for LangGraph) p50, in milliseconds and as a ratio;
* ours, throughput: a second worker joins (same settings); ``--throughput-runs``
  runs (``--model-throughput-runs`` for CrewAI and Agno) are submitted at once
  from a thread pool, and the clock stops when none of them is queued or
  running any more (all must have succeeded).

LangGraph's work is two ``code`` nodes. CrewAI's and Agno's need a model (``--model``):

* ``fake`` (the default): deterministic models in the calling process, answering
  at once (``bench/fake_agents.py``), so the figures are the frameworks' and
  ours, not a model's. Both sides run the SAME code-first builder:
  ``fake_agents:build_crew`` and ``fake_agents:build_team``, called here for the
  baseline (build, then kickoff/run, in each call) and named by the spec for
  ours (``{"options": {"callable": "fake_agents:build_crew"}}``), which the
  workers import from their files root (``--OrchestratorApp.files_root`` =
  ``bench/``). Each run's answer is a fixed text, checked on both sides;
* ``local``: SmolLM2-135M-Instruct (``orchestrator_ext.local_model.start_server``)
  serves the baselines and ours; it is registered through ``POST /integrations``
  as the organization's ``default`` integration of kind ``openai-compatible``,
  which the workers hand to the runs. Ours is then a declarative spec (CrewAI:
  two ``agent`` and two ``task`` nodes; Agno: an ``agent`` node and a ``team``
  node, mode ``route``, whose member it is); the Agno baseline pins the
  leader's call to the delegation (the member's id as the only choice, a task
  of at most 200 characters, at least 160 tokens), as the runtime does. Answers
  are kept short (``--max-tokens``, temperature 0); a model's answer of another
  length makes the two sides differ, which the model calls and tokens show.

The model calls and tokens of a run are printed for both sides (the framework's
own count for the baseline, ``outputs.usage`` for ours), and the steps of ours
(``outputs.steps``). A framework whose runtime module (``runtimes/orchestrator_runtimes/<name>/``)
is missing, fails to import or rejects the benchmark's spec, or whose library,
fake builder or local model is not installed or fails, is reported as skipped, with why.

The workers get the runs' databases (one per organization, ``orch_runs_<hash>`` in the embedded
server) from ``prepare_database``; after the throughput runs, their checkpoints there are counted:
those runs all succeed, so none needs one and none is written (durability ``exit``). The organization is moved to the
``enterprise`` tier first (``jupyter orchestrator set-tier``) so its concurrency
limit is not the bottleneck. Prints p50/p99/mean of each measure and the
targets (overhead p50 <= 25 ms for LangGraph, <= 60 ms for CrewAI and Agno; >= 100 LangGraph
runs/s through 2 workers; no checkpoint written by a run that succeeded) as PASS/FAIL; the figures go
to ``bench/results/runtimes.json``.
Every process started here is stopped at the end, also on Ctrl-C or a failure.
This is a measurement, not a test. The work is ``bench/framework_work.py``, the
baselines ``bench/framework_baselines.py``, ours ``bench/framework_runs.py``, the
report ``bench/runtimes_report.py``; the server and the workers start as every
benchmark's do (``bench/startup.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from framework_baselines import baselines_of, measure_baseline
from framework_runs import OBSERVE, Session, measure_ours, overhead_of
from framework_work import BENCH, FRAMEWORKS, MODEL_FRAMEWORKS, MODELS, unavailable
from harness import API, Processes, logged_problems, set_tier, watched
from runtimes_report import report, write_results
from startup import new_agent, postgres_pid, run_main, set_runs_per_process, start_api, throwaway

RESULTS = BENCH / "results" / "runtimes.json"
#: the frameworks must not phone home from the benchmark either (this process and, inherited, the server's)
QUIET = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "AGNO_TELEMETRY": "false",
    "OTEL_SDK_DISABLED": "true",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}


def code_state() -> dict[str, Any]:
    """The commit measured, and the files that differ from it (the figures belong to this state of the code)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    paths = ("orchestrator_ext", "runtimes")
    changed = [line.split(maxsplit=1)[-1] for line in git("status", "--porcelain", "--", *paths).splitlines()]
    diff = hashlib.sha1(git("diff", "HEAD", "--", *paths).encode()).hexdigest()[:12]
    return {"commit": git("rev-parse", "HEAD") or None, "changed_files": changed, "diff_sha1": diff}


def open_session(procs: Processes, base_url: str | None, frameworks: list[str]) -> Session:
    started = time.perf_counter()
    server = start_api(procs, "--OrchestratorApp.local_model=False")
    print(
        f"server on 127.0.0.1:{server.port} (run_engine=False, local_model=False), "
        f"up in {time.perf_counter() - started:.1f} s"
    )
    client = server.client
    agents = {framework: new_agent(client, f"bench-{framework}", framework) for framework in frameworks}
    org_id = str(next(iter(agents.values()))["org_id"])
    print(f"  {set_tier(procs, org_id)}")
    if base_url is not None:
        from orchestrator_ext.local_model import MODEL_ALIAS

        client.call(
            "POST",
            f"{API}/integrations",
            {"kind": "openai-compatible", "name": "default", "config": {"base_url": base_url, "model": MODEL_ALIAS}},
            expect=(201,),
        )
        print(f"  integration 'default' (openai-compatible) -> {base_url}, model {MODEL_ALIAS}")
    agent_ids = {name: str(a["id"]) for name, a in agents.items()}
    return Session(procs, server.port, server.token, client, server.process, org_id, postgres_pid(procs), agent_ids)


def measure(
    session: Session, framework: str, base_url: str | None, args: argparse.Namespace, machine: dict[str, Any]
) -> dict[str, Any]:
    model = framework in MODEL_FRAMEWORKS
    runs = args.model_runs if model else args.runs
    results: dict[str, Any] = {"baselines": {}}
    for label, once in baselines_of(framework, base_url, args, session.procs.root).items():
        print(f"  baseline {label}: {args.warmup} warm-up + {runs} calls ...")
        with watched(machine, f"{framework}: baseline {label}"):
            results["baselines"][label] = measure_baseline(framework, once, runs, args.warmup, args.model)
        row = results["baselines"][label]
        print(f"    p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms")
    results["ours"] = measure_ours(session, framework, args, machine)
    results["overhead"] = overhead_of(results["baselines"], results["ours"])
    if args.runs_per_process > 1:  # the organization's opt-in: one forked process serves N of its runs in turn
        print(f"  the same with runs_per_process {args.runs_per_process} (one process serves that many runs):")
        set_runs_per_process(session.client, session.org_id, args.runs_per_process)
        try:
            reused = measure_ours(session, framework, args, machine, f"-reuse{args.runs_per_process}")
        finally:
            set_runs_per_process(session.client, session.org_id, 1)
        results["reused"] = {
            "runs_per_process": args.runs_per_process,
            "ours": reused,
            "overhead": overhead_of(results["baselines"], reused),
        }
    return results


def frameworks_argument(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FRAMEWORKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"frameworks are a comma-separated list of {', '.join(FRAMEWORKS)}")
    return list(dict.fromkeys(names))


def start_model(procs: Processes) -> str:
    from orchestrator_ext import local_model

    started = time.perf_counter()
    procs.model, base_url = local_model.start_server()
    try:
        local_model.wait_until_ready(base_url, procs.model, timeout=120.0)
    except RuntimeError as exc:
        raise SystemExit(f"the local model server did not start: {exc}") from exc
    print(f"local model {local_model.MODEL_ALIAS} at {base_url}, up in {time.perf_counter() - started:.1f} s")
    return str(base_url)


#: the numeric options: flag, type, default (None: from another, after parsing), help
NUMBERS: tuple[tuple[str, type, Any, str], ...] = (
    ("--runs", int, 50, "measured runs of each sequential measure (LangGraph)"),
    ("--warmup", int, 3, "warm-up runs of each, not counted"),
    ("--throughput-runs", int, 200, "LangGraph runs submitted at once"),
    (
        "--model-runs",
        int,
        None,
        "measured runs of each sequential measure of CrewAI and Agno (--model fake: runs; local: min(runs, 10))",
    ),
    (
        "--model-throughput-runs",
        int,
        None,
        "CrewAI and Agno runs submitted at once (--model fake: throughput-runs; local: min(throughput-runs, 20))",
    ),
    ("--max-tokens", int, 16, "max_tokens of every call of the local model"),
    ("--worker-slots", int, 4, "worker_slots of each worker"),
    ("--runner-pool-size", int, 1, "runner_pool_size of each worker"),
    ("--submit-concurrency", int, 16, "client threads submitting them"),
    ("--pause", float, 0.0, "seconds before each sequential run of ours (0: back to back)"),
    (
        "--runs-per-process",
        int,
        100,
        "also measure ours with the organization's runs_per_process at this (1: only a fresh fork per run)",
    ),
    ("--settle-max", float, 0.0, "longest wait for an idle worker before each sequential run (0: none)"),
)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frameworks",
        type=frameworks_argument,
        default=list(FRAMEWORKS),
        help="comma-separated: langgraph,crewai,agno",
    )
    for flag, kind, default, text in NUMBERS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="fake",
        help="CrewAI's and Agno's model: deterministic in-process models answering at once (bench/fake_agents.py), "
        "or the local model server (SmolLM2-135M)",
    )
    parser.add_argument(
        "--observe",
        choices=OBSERVE,
        default="both",
        help="how the client sees a run end: SSE, polling every 2 ms, or both taking turns (the overhead uses SSE)",
    )
    parser.add_argument("--logs", type=Path, help="copy the server's, the workers' logs to this directory")
    args = parser.parse_args()
    fake = args.model == "fake"
    if args.model_runs is None:
        args.model_runs = args.runs if fake else min(args.runs, 10)
    if args.model_throughput_runs is None:
        args.model_throughput_runs = args.throughput_runs if fake else min(args.throughput_runs, 20)
    return args


def main() -> None:
    args = parse()
    os.environ.update(QUIET)
    started = time.perf_counter()
    code = code_state()
    print(
        f"code: {code['commit']}" + (f", changed: {', '.join(code['changed_files'])}" if code["changed_files"] else "")
    )
    results: dict[str, Any] = {"frameworks": {}, "model": args.model, "observe": args.observe}
    machine: dict[str, Any] = {}
    results["machine_load"] = machine
    with throwaway("obr-", QUIET) as procs:
        try:
            run_all(procs, args, results, machine)
        finally:
            procs.stop_all()  # before the logs are copied: their last lines are the stops
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in procs.root.glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    results["code"] = code
    results["code_changed_meanwhile"] = code_state() != code
    if results["code_changed_meanwhile"]:
        print("!! the code under orchestrator_ext or runtimes changed while this ran: the processes may differ")
    checks = report(results)
    passed = bool(checks) and all(checks.values())
    print(f"\nall targets: {'PASS' if passed else 'FAIL'}; whole run {time.perf_counter() - started:.0f} s")
    write_results(RESULTS, vars(args), results, checks)
    print(f"written to {RESULTS.relative_to(BENCH.parent)}")


def run_all(procs: Processes, args: argparse.Namespace, results: dict[str, Any], machine: dict[str, Any]) -> None:
    """Each framework that can be measured here, on one server (the local model first, where it is needed)."""
    os.environ["TMPDIR"] = tempfile.tempdir = procs.env["TMPDIR"]  # the in-process baselines' files too
    os.environ["CREWAI_STORAGE_DIR"] = str(procs.root / "crewai")  # what CrewAI keeps, here (fake builds it already)
    measured: list[str] = []
    for framework in args.frameworks:
        why = unavailable(framework, args)
        if why is None:
            measured.append(framework)
        else:
            results["frameworks"][framework] = {"skipped": why}
            print(f"{framework}: skipped: {why}")
    local = args.model == "local" and any(f in MODEL_FRAMEWORKS for f in measured)
    base_url = start_model(procs) if local else None
    if measured:
        session = open_session(procs, base_url, measured)
        for framework in measured:
            print(f"\n{framework}:")
            results["frameworks"][framework] = measure(session, framework, base_url, args, machine)
        session.client.close()
        results["logged_problems_server"] = logged_problems(session.server.log)


if __name__ == "__main__":
    run_main(main)  # SIGTERM and Ctrl-C stop every process started here
