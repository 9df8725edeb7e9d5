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
  ``ORCHESTRATOR_DATA_DIR`` and ``ORCHESTRATOR_ENCRYPTION_KEYS``). Before each
  run the benchmark waits until the worker's processes are idle (under 5% of a
  CPU over 100 ms: whatever the worker keeps warm is ready), at most
  ``--settle-max`` seconds. Ours includes what the direct call does not do:
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
This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

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
    logged_problems,
    modes,
    orchestrator,
    postmaster,
    set_tier,
    shared_postgres,
    start_server,
    throughput,
    timestamp,
    wait_for,
    watched,
    worker_pid,
)

BENCH = Path(__file__).resolve().parent
RUNTIMES = BENCH.parent / "runtimes" / "orchestrator_runtimes"
RESULTS = BENCH / "results" / "runtimes.json"
FRAMEWORKS = ("langgraph", "crewai", "agno")
MODEL_FRAMEWORKS = frozenset({"crewai", "agno"})
#: ``--model``: deterministic in-process models (bench/fake_agents.py), or the local model server
MODELS = ("fake", "local")
#: ``--model fake``: the code-first builder both sides run (the baseline here, ours named by the spec)
FAKE_BUILDERS = {"crewai": "fake_agents:build_crew", "agno": "fake_agents:build_team"}
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
#: the frameworks must not phone home from the benchmark either (this process and, inherited, the server's)
QUIET = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "AGNO_TELEMETRY": "false",
    "OTEL_SDK_DISABLED": "true",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}

#: issue 15's targets: overhead p50 over the direct call, per framework, and LangGraph's runs/s through 2 workers
OVERHEAD_P50_TARGET_MS = {"langgraph": 25.0, "crewai": 60.0, "agno": 60.0}
LANGGRAPH_RUNS_PER_SECOND_TARGET = 100.0


# ---- the work ----------------------------------------------------------------------


def code_node(node_id: str, body: str) -> dict[str, Any]:
    return {"id": node_id, "type": "code", "config": {"source": f"def run(values):\n    return {body}"}}


#: the CrewAI crew: (agent node id, role, the task node id, its description); each task receives the previous one
CREW = (
    ("researcher", "Researcher", "research", "Name one fact about tea."),
    ("writer", "Writer", "write", "Write one sentence about tea from the research."),
)
CREW_EXPECTED = "One short sentence."
#: the Agno team: its leader hands the message to its one member, whose answer is the team's (mode ``route``)
AGNO_TEAM = ("desk", "Desk")
AGNO_MEMBER = ("writer", "Writer", "Answer in one short sentence.")
AGNO_MESSAGE = "Name one fact about tea."
#: what the runtime gives a team leader's forced delegation: at least these tokens, a task this long at most
AGNO_DELEGATION_MIN_TOKENS = 160
AGNO_TASK_CHARS = 200


def fake_agents() -> Any:
    """``bench/fake_agents.py``, imported as the workers import it (the top-level module ``fake_agents``)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("fake_agents")


def spec_of(framework: str, max_tokens: int, model: str) -> dict[str, Any]:
    """The benchmark's two-step workflow as our spec."""
    if framework == "langgraph":
        return {
            "nodes": [code_node("a", "1"), code_node("b", "values['a'] + 1")],
            "edges": [{"source": "a", "target": "b"}],
        }
    if model == "fake":
        return {"nodes": [], "edges": [], "options": {"callable": FAKE_BUILDERS[framework]}}
    options = {"max_tokens": max_tokens, "temperature": 0}
    if framework == "crewai":
        agents = [
            {
                "id": agent,
                "type": "agent",
                "config": {"role": role, "goal": f"Help briefly as the {role}.", "backstory": f"You are a {role}."},
            }
            for agent, role, _, _ in CREW
        ]
        tasks = []
        for index, (agent, _, task, description) in enumerate(CREW):
            config: dict[str, Any] = {"description": description, "expected_output": CREW_EXPECTED, "agent": agent}
            if index:
                config["context"] = [CREW[index - 1][2]]
            tasks.append({"id": task, "type": "task", "config": config})
        return {"nodes": [*agents, *tasks], "edges": [], "options": options}
    if framework == "agno":
        member, name, instructions = AGNO_MEMBER
        team, team_name = AGNO_TEAM
        return {
            "nodes": [
                {"id": member, "type": "agent", "config": {"name": name, "instructions": instructions}},
                {"id": team, "type": "team", "config": {"name": team_name, "members": [member], "mode": "route"}},
            ],
            "edges": [],
            "options": options,
        }
    raise ValueError(framework)


def inputs_of(framework: str, model: str) -> dict[str, Any]:
    if framework != "agno":
        return {}
    return {"message": fake_agents().AGNO_MESSAGE if model == "fake" else AGNO_MESSAGE}


def expected_output(framework: str, output: Any, model: str) -> str | None:
    """Why a run's output is not what the work produces (None: it is)."""
    if framework == "langgraph":
        return None if output == 2 else f"the output is {output!r}, not 2"
    if model == "fake":
        wanted = fake_agents().FINAL_ANSWERS[framework]
        return None if output == wanted else f"the final answer is {output!r}, not the fake model's {wanted!r}"
    if not isinstance(output, str) or not output.strip():
        return f"the final answer is {output!r}, not a text"
    return None


class TwoSteps(TypedDict, total=False):
    a: int
    b: int


def langgraph_baselines() -> dict[str, Callable[[], Any]]:
    from langgraph.graph import END, START, StateGraph

    def build() -> Any:
        graph: Any = StateGraph(TwoSteps)
        graph.add_node("a", lambda state: {"a": 1})
        graph.add_node("b", lambda state: {"b": state["a"] + 1})
        graph.add_edge(START, "a")
        graph.add_edge("a", "b")
        graph.add_edge("b", END)
        return graph.compile()

    compiled = build()

    def once() -> Any:
        return compiled.invoke({})["b"], None

    def built_each_call() -> Any:
        return build().invoke({})["b"], None

    return {"A: StateGraph compiled once, invoke()": once, "B: StateGraph built and compiled per call": built_each_call}


def crewai_baselines(base_url: str, max_tokens: int, workdir: Path) -> dict[str, Callable[[], Any]]:
    os.environ["CREWAI_STORAGE_DIR"] = str(workdir / "crewai")
    logging.getLogger("crewai").setLevel(logging.ERROR)  # a warning per call: SmolLM2 has no native token count
    from crewai import LLM, Agent, Crew, Task

    from orchestrator_ext.local_model import MODEL_ALIAS

    def llm() -> Any:
        return LLM(
            model=f"openai/{MODEL_ALIAS}",
            base_url=base_url,
            api_key="none",
            max_tokens=max_tokens,
            temperature=0,
            max_retries=0,
        )

    def once() -> Any:
        tasks: list[Any] = []
        agents: list[Any] = []
        for _, role, task, description in CREW:
            agent = Agent(
                role=role,
                goal=f"Help briefly as the {role}.",
                backstory=f"You are a {role}.",
                llm=llm(),  # one each: the crew's token_usage adds up each agent's LLM, a shared one twice
                allow_delegation=False,
                max_iter=2,
                verbose=False,
            )
            context = {"context": [tasks[-1]]} if tasks else {}
            tasks.append(
                Task(name=task, description=description, expected_output=CREW_EXPECTED, agent=agent, **context)
            )
            agents.append(agent)
        crew = Crew(agents=agents, tasks=tasks, verbose=False, memory=False, tracing=False)
        output = crew.kickoff()
        usage = output.token_usage
        return str(output.raw), {
            "model_calls": int(usage.successful_requests or 0),
            "prompt_tokens": int(usage.prompt_tokens or 0),
            "completion_tokens": int(usage.completion_tokens or 0),
        }

    return {"Crew built and kicked off per call": once}


def agno_baselines(base_url: str, max_tokens: int) -> dict[str, Callable[[], Any]]:
    from agno.agent import Agent
    from agno.models.openai.like import OpenAILike
    from agno.team import Team
    from agno.team.mode import TeamMode

    from orchestrator_ext.local_model import MODEL_ALIAS

    member_id, member_name, instructions = AGNO_MEMBER
    # the leader's one call delegates to the member, as the runtime makes it (a 135M model left free to choose
    # invents member ids and never-ending tasks): the delegation tool with the member's id as its only choice
    delegate = {
        "type": "function",
        "function": {
            "name": "delegate_task_to_member",
            "description": "Use this function to delegate a task to the selected team member.",
            "parameters": {
                "type": "object",
                "properties": {
                    "member_id": {"type": "string", "enum": [member_id]},
                    "task": {"type": "string", "maxLength": AGNO_TASK_CHARS},
                },
                "required": ["member_id", "task"],
            },
        },
    }
    pinned = {"tools": [delegate], "tool_choice": {"type": "function", "function": {"name": "delegate_task_to_member"}}}

    def model(tokens: int, **settings: Any) -> Any:
        return OpenAILike(
            id=MODEL_ALIAS,
            base_url=base_url,
            api_key="none",
            max_tokens=tokens,
            temperature=0,
            max_retries=0,
            **settings,
        )

    def once() -> Any:
        member = Agent(
            id=member_id,
            name=member_name,
            instructions=instructions,
            model=model(max_tokens),
            markdown=False,
            telemetry=False,
        )
        team = Team(
            id=AGNO_TEAM[0],
            name=AGNO_TEAM[1],
            members=[member],
            mode=TeamMode.route,
            model=model(max(max_tokens, AGNO_DELEGATION_MIN_TOKENS), request_params=pinned),
            markdown=False,
            telemetry=False,
        )
        output = team.run(AGNO_MESSAGE)
        return output.content, agno_usage([output, *(output.member_responses or [])])

    return {"Team (route, one member) built and run per call": once}


def agno_usage(outputs: list[Any]) -> dict[str, int]:
    """Model calls (the assistant's messages) and tokens of Agno run outputs, as Agno counts them."""
    usage = {"model_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
    for output in outputs:
        own = [m for m in output.messages or [] if m.role == "assistant" and not getattr(m, "from_history", False)]
        usage["model_calls"] += len(own)
        metrics = getattr(output, "metrics", None)
        usage["prompt_tokens"] += int(getattr(metrics, "input_tokens", 0) or 0)
        usage["completion_tokens"] += int(getattr(metrics, "output_tokens", 0) or 0)
    return usage


def fake_baselines(framework: str) -> dict[str, Callable[[], tuple[Any, dict[str, int] | None]]]:
    """``--model fake``: the builder ours runs, called here; what it builds, run (build and run in each call)."""
    fake = fake_agents()
    reference = FAKE_BUILDERS[framework]
    build = getattr(fake, reference.split(":")[1])
    if framework == "crewai":

        def kickoff() -> Any:
            output = build().kickoff()
            usage = output.token_usage
            return str(output.raw), {
                "model_calls": int(usage.successful_requests or 0),
                "prompt_tokens": int(usage.prompt_tokens or 0),
                "completion_tokens": int(usage.completion_tokens or 0),
            }

        return {"fake_agents.build_crew() + kickoff() per call": kickoff}

    def run() -> Any:
        output = build().run(fake.AGNO_MESSAGE)
        return output.content, agno_usage([output, *(output.member_responses or [])])

    return {"fake_agents.build_team() + run() per call": run}


def baselines_of(
    framework: str, base_url: str | None, args: argparse.Namespace, workdir: Path
) -> dict[str, Callable[[], tuple[Any, dict[str, int] | None]]]:
    """The direct calls of a framework, by label; the first one is the one overhead is measured against."""
    if framework == "langgraph":
        return langgraph_baselines()
    if args.model == "fake":
        return fake_baselines(framework)
    max_tokens = args.max_tokens
    assert base_url is not None
    if framework == "crewai":
        return crewai_baselines(base_url, max_tokens, workdir)
    return agno_baselines(base_url, max_tokens)


def unavailable(framework: str, args: argparse.Namespace) -> str | None:
    """Why ``framework`` cannot be measured here (None: it can)."""
    module = f"orchestrator_runtimes.{framework}"
    path = RUNTIMES / framework / "__init__.py"
    if not path.exists():
        return f"{path.relative_to(BENCH.parent)} does not exist"
    library = "langgraph" if framework == "langgraph" else framework
    if importlib.util.find_spec(library) is None:
        return f"the {library} package is not installed"
    try:
        importlib.import_module(module)
        from orchestrator_runtimes.runtime import load_runtime
        from orchestrator_runtimes.spec import WorkflowSpec

        runtime: Any = load_runtime(framework)
        problems = runtime.validate(WorkflowSpec.model_validate(spec_of(framework, args.max_tokens, args.model)))
    except Exception as exc:  # noqa: BLE001 - whatever it is, the framework is skipped and why is said
        return f"{module} fails to import: {type(exc).__name__}: {exc}"
    if problems:
        found = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return f"the runtime rejects the benchmark's spec (bench/runtimes.py spec_of needs updating): {found}"
    if framework in MODEL_FRAMEWORKS and args.model == "fake":
        reference = FAKE_BUILDERS[framework]
        try:
            getattr(fake_agents(), reference.split(":")[1])()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the framework is skipped and why is said
            return f"bench/fake_agents.py cannot build the work ({reference}): {type(exc).__name__}: {exc}"
    elif framework in MODEL_FRAMEWORKS:
        from orchestrator_ext import local_model

        if not local_model.installed():
            return "the local model is not installed: pip install 'orchestrator[local-model]'"
    return None


# ---- statistics ----------------------------------------------------------------


# ---- processes -----------------------------------------------------------------


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


# ---- HTTP ------------------------------------------------------------------------


# ---- baselines -------------------------------------------------------------------


def measure_baseline(
    framework: str, once: Callable[[], tuple[Any, dict[str, int] | None]], runs: int, warmup: int, model: str
) -> dict[str, Any]:
    """Each call's wall time, and the model calls and tokens of each (as the framework counts them)."""
    times: list[float] = []
    usages: list[dict[str, int]] = []
    for i in range(warmup + runs):
        started = time.perf_counter()
        output, usage = once()
        took = time.perf_counter() - started
        problem = expected_output(framework, output, model)
        if problem:
            raise SystemExit(f"the {framework} baseline went wrong: {problem}")
        if i >= warmup:
            times.append(took)
            if usage is not None:
                usages.append(usage)
    return {**distribution(times), **({"usage_median": median_usage(usages)} if usages else {})}


def median_usage(usages: list[dict[str, Any]]) -> dict[str, float]:
    """The median of each count (model calls, tokens) over runs."""
    keys = ("model_calls", "prompt_tokens", "completion_tokens")
    return {key: statistics.median(int(u.get(key) or 0) for u in usages) for key in keys}


# ---- ours ------------------------------------------------------------------------


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
    """One run at a time, each once the worker is idle; with both ways of observing, they take turns (the same
    conditions for each)."""
    kept: dict[str, list[Run]] = {mode: [] for mode in modes(args.observe)}
    for i in range(warmup + runs):
        for mode, runs_seen in kept.items():
            idle = wait_idle([worker.process.pid], args.settle_max)
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


def database(pgdata: Path, name: str) -> Any:
    """A superuser connection to one of the embedded server's databases (through its socket)."""
    import psycopg

    from orchestrator_ext.db.embedded import superuser_url

    return psycopg.connect(superuser_url(pgdata.parent, name))


def runs_per_worker(pgdata: Path, workflow_id: str) -> dict[str, int]:
    """Which worker ran how many of a workflow's runs (worker_id is not in the API's answers: ask the database)."""
    with database(pgdata, "orchestrator") as conn:
        rows = conn.execute(
            "SELECT worker_id, count(*) FROM workflow_executions WHERE workflow_id = %s GROUP BY worker_id",
            (workflow_id,),
        ).fetchall()
    return {worker_pid(name): int(count) for name, count in rows}


def checkpointed(pgdata: Path, execution_ids: list[str]) -> dict[str, Any]:
    """How many of these runs have LangGraph checkpoints in their organization's runs' database (their thread
    is the run's id)."""
    import psycopg

    threads, checkpoints = 0, 0
    try:
        with database(pgdata, "postgres") as conn:
            query = "SELECT datname FROM pg_database WHERE datname LIKE 'orch\\_runs\\_%'"
            names = [row[0] for row in conn.execute(query)]
        for name in names:
            with database(pgdata, name) as conn:
                if conn.execute("SELECT to_regclass('checkpoints')").fetchone() == (None,):
                    continue  # no run of this organization ever needed a checkpoint: no table
                row = conn.execute(
                    "SELECT count(DISTINCT thread_id), count(*) FROM checkpoints WHERE thread_id = ANY(%s)",
                    (execution_ids,),
                ).fetchone()
            threads, checkpoints = threads + int(row[0]), checkpoints + int(row[1])
    except psycopg.Error as exc:
        return {"runs": len(execution_ids), "checkpointed_runs": 0, "checkpoints": 0, "problem": str(exc).strip()}
    return {"runs": len(execution_ids), "checkpointed_runs": threads, "checkpoints": checkpoints}


def worker_options(framework: str, args: argparse.Namespace) -> list[str]:
    options = [
        "--OrchestratorApp.kernel_pool_size=0",
        f"--OrchestratorApp.worker_slots={args.worker_slots}",
        f"--OrchestratorApp.runner_pool_size={args.runner_pool_size}",
        f"--OrchestratorApp.runner_preload={framework}",
    ]
    if framework in MODEL_FRAMEWORKS and args.model == "fake":
        options.append(f"--OrchestratorApp.files_root={BENCH}")  # where the runs import fake_agents from
    return options


def start_worker(procs: Processes, name: str, framework: str, args: argparse.Namespace) -> Started:
    worker = procs.start(name, orchestrator("worker", *worker_options(framework, args)))
    wait_for(lambda: " started" in worker.log.read_text(errors="replace"), f"{name} did not start", worker)
    return worker


def code_state() -> dict[str, Any]:
    """The commit measured, and the files that differ from it (the figures belong to this state of the code)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=BENCH.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    paths = ("orchestrator_ext", "runtimes")
    changed = [line.split(maxsplit=1)[-1] for line in git("status", "--porcelain", "--", *paths).splitlines()]
    diff = hashlib.sha1(git("diff", "HEAD", "--", *paths).encode()).hexdigest()[:12]
    return {"commit": git("rev-parse", "HEAD") or None, "changed_files": changed, "diff_sha1": diff}


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


def open_session(procs: Processes, base_url: str | None, frameworks: list[str]) -> Session:
    port, token = free_port(), secrets.token_hex(16)
    started = time.perf_counter()
    server = start_server(procs, port, token, "--OrchestratorApp.local_model=False")
    print(
        f"server on 127.0.0.1:{port} (run_engine=False, local_model=False), up in {time.perf_counter() - started:.1f} s"
    )
    pg = postmaster(procs.root / "data" / "pgdata")
    assert pg is not None
    client = Client(port, token)
    agents = {
        framework: client.call(
            "POST", f"{API}/agents", {"name": f"bench-{framework}", "framework": framework}, expect=(201,)
        )
        for framework in frameworks
    }
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
    return Session(
        procs, port, token, client, server, org_id, pg[0], {name: str(a["id"]) for name, a in agents.items()}
    )


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
    workflows = [
        client.call("POST", f"{API}/agents/{agent_id}/workflows", {"name": name, "spec": spec}, expect=(201,))["id"]
        for name in ("latency", "throughput")
    ]
    worker_a = start_worker(procs, f"{framework}{tag}-worker-1", framework, args)
    print(
        f"  {worker_a.name} (pid {worker_a.process.pid}: {' '.join(worker_options(framework, args))}) started; "
        f"{shared_postgres(procs, session.postgres_pid, [worker_a])}"
    )
    observed = " and ".join(OBSERVED[mode] for mode in modes(args.observe))
    print(
        f"  ours, sequential: {args.warmup} warm-up + {runs} runs seen ending by each of {observed}"
        f"{', taking turns' if args.observe == 'both' else ''}, each once the worker is idle ..."
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

    worker_b = start_worker(procs, f"{framework}{tag}-worker-2", framework, args)
    print(
        f"  {worker_b.name} (pid {worker_b.process.pid}) started; "
        f"{shared_postgres(procs, session.postgres_pid, [worker_a, worker_b])}"
    )
    settled = wait_idle([worker_a.process.pid, worker_b.process.pid], args.settle_max)
    print(f"  ours, throughput: {tput_runs} runs submitted at once through 2 workers ...")
    with watched(machine, f"{framework}{tag}: ours, throughput"):
        tput = throughput(session.port, session.token, workflows[1], tput_runs, args.submit_concurrency, inputs)
    tput["workers_idle_before"] = settled is not None
    tput["per_worker_pid"] = runs_per_worker(procs.root / "data" / "pgdata", workflows[1])
    if framework == "langgraph":
        tput["checkpoints"] = checkpointed(procs.root / "data" / "pgdata", tput["execution_ids"])
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
        set_runs_per_process(session, args.runs_per_process)
        try:
            reused = measure_ours(session, framework, args, machine, f"-reuse{args.runs_per_process}")
        finally:
            set_runs_per_process(session, 1)
        results["reused"] = {
            "runs_per_process": args.runs_per_process,
            "ours": reused,
            "overhead": overhead_of(results["baselines"], reused),
        }
    return results


def set_runs_per_process(session: Session, runs: int) -> None:
    body = {"runs_per_process": runs}
    session.client.call("PATCH", f"{API}/organizations/{session.org_id}", body, expect=(200,))


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


def report_reused(found: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The opt-in mode's figures beside the fresh fork's of the same run (ratios); its overhead and throughput."""
    reused, fresh = found["reused"], found["ours"]
    ours, overhead = reused["ours"], reused["overhead"]
    seq, tput = ours["sequential"], ours["throughput"]
    label = f"runs_per_process {reused['runs_per_process']}"
    print(row(f"ours, {label}: POST -> succeeded seen ({OBSERVED[ours['observed_by']]})", seq["end_to_end"]))
    for name, dist in seq["phases"].items():
        print(row(f"  {name}", dist))
    before = fresh["sequential"]["end_to_end"]
    print(
        f"{label}: overhead p50 {overhead['p50_ms']:+.1f} ms, p99 {overhead['p99_ms']:+.1f} ms, mean "
        f"{overhead['mean_ms']:+.1f} ms; POST -> succeeded p50 x{before['p50_ms'] / seq['end_to_end']['p50_ms']:.2f} "
        f"faster than a fresh fork per run (same run)"
    )
    print(
        f"{label}: throughput {tput['runs_per_second']:.2f} runs/s through 2 workers "
        f"(x{tput['runs_per_second'] / fresh['throughput']['runs_per_second']:.2f} the fresh fork's; "
        f"{tput['wall_seconds']:.2f} s wall); runs per worker pid {tput['per_worker_pid']}"
    )
    if tput["statuses"] != {"succeeded": tput["runs"]}:
        print(f"  !! not every throughput run succeeded: {tput['statuses']}; errors: {tput['errors']}")
    return overhead, tput


# ---- report ----------------------------------------------------------------------


def row(name: str, r: dict[str, Any]) -> str:
    return f"{name:<60}{r['n']:>5}{r['p50_ms']:>11.1f}{r['p99_ms']:>11.1f}{r['mean_ms']:>11.1f}"


def usage_text(usage: dict[str, Any] | None) -> str:
    if not usage:
        return "not counted"
    return f"{usage['model_calls']:g} calls, {usage['prompt_tokens']:g} + {usage['completion_tokens']:g} tokens"


def report(results: dict[str, Any]) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    for framework, found in results["frameworks"].items():
        print(f"\n== {framework}")
        if "skipped" in found:
            print(f"  skipped: {found['skipped']}")
            continue
        ours = found["ours"]
        seq, tput = ours["sequential"], ours["throughput"]
        print(f"{'measure':<60}{'n':>5}{'p50 ms':>11}{'p99 ms':>11}{'mean ms':>11}")
        for label, dist in found["baselines"].items():
            print(row(f"baseline {label}", dist))
        primary = ours["observed_by"]
        by_observe = ours["sequential_by_observe"]
        for mode in sorted(by_observe, key=lambda m: m != primary):  # the one the overhead uses first
            print(row(f"ours: POST -> succeeded seen ({OBSERVED[mode]})", by_observe[mode]["end_to_end"]))
            if mode == primary:
                for name, dist in seq["phases"].items():
                    print(row(f"  {name}", dist))
        for mode, summary in by_observe.items():
            if summary["runs_started_on_a_busy_worker"]:
                print(
                    f"  !! {summary['runs_started_on_a_busy_worker']} runs ({OBSERVED[mode]}) started while the "
                    "worker was still busy"
                )
        print(f"ours observed by {OBSERVED[primary]} for the overhead: {ours['observed_by_because']}")
        if framework in MODEL_FRAMEWORKS:
            model = results.get("model", "local")
            print(
                f"model: {'fake, in-process (bench/fake_agents.py)' if model == 'fake' else 'local model server'}; "
                "model calls, prompt and completion tokens per run (medians):"
            )
            for label, dist in found["baselines"].items():
                print(f"  baseline {label}: {usage_text(dist.get('usage_median'))}  (as the framework counts them)")
            print(f"  ours: {usage_text(seq.get('usage_median'))}  (outputs.usage)")
            for steps, count in seq.get("steps", {}).items():
                print(f"  ours' steps (outputs.steps) in {count} of {seq['end_to_end']['n']} runs: {steps}")
        overhead = found["overhead"]
        print(
            f"overhead over baseline {overhead['against'].split(':')[0]} (ours seen by {OBSERVED[primary]}): "
            f"p50 {overhead['p50_ms']:+.1f} ms ({overhead['p50_ratio']:.1f}x), p99 {overhead['p99_ms']:+.1f} ms"
        )
        print(
            f"throughput: {tput['runs']} runs through 2 workers: {tput['runs_per_second']:.2f} runs/s "
            f"({tput['wall_seconds']:.2f} s wall, submitting took {tput['submit_seconds']:.2f} s; server-side "
            f"{tput['server_runs_per_second']} runs/s); runs per worker pid {tput['per_worker_pid']}"
        )
        if tput["statuses"] != {"succeeded": tput["runs"]}:
            print(f"  !! not every throughput run succeeded: {tput['statuses']}; errors: {tput['errors']}")
        checkpoints = tput.get("checkpoints")
        if checkpoints is not None:
            problem = f"; {checkpoints['problem']}" if "problem" in checkpoints else ""
            print(
                f"checkpoints in the runs' databases: {checkpoints['checkpointed_runs']} of {checkpoints['runs']} runs "
                f"({checkpoints['checkpoints']} checkpoints){problem}"
            )
        for name, problems in ours["logged_problems"].items():
            for message, count in problems.items():
                print(f"  !! {name} logged {count} x {message}")
        mode = ""
        if "reused" in found:  # the targets are judged on the opt-in mode, the fresh fork's figures are above
            mode = f" with runs_per_process {found['reused']['runs_per_process']}"
            checks[f"{framework}, fresh fork: all {tput['runs']} throughput runs succeeded ({tput['statuses']})"] = (
                tput["statuses"] == {"succeeded": tput["runs"]}
            )
            overhead, tput = report_reused(found)
        target = OVERHEAD_P50_TARGET_MS.get(framework, 60.0)
        checks[f"{framework}{mode}: overhead p50 <= {target:.0f} ms ({overhead['p50_ms']:.1f} ms)"] = (
            overhead["p50_ms"] <= target
        )
        checks[f"{framework}{mode}: all {tput['runs']} throughput runs succeeded ({tput['statuses']})"] = tput[
            "statuses"
        ] == {"succeeded": tput["runs"]}
        if framework == "langgraph":
            rate = tput["runs_per_second"]
            checks[
                f"langgraph{mode}: >= {LANGGRAPH_RUNS_PER_SECOND_TARGET:.0f} runs/s through 2 workers ({rate:.1f})"
            ] = rate >= LANGGRAPH_RUNS_PER_SECOND_TARGET
            if checkpoints is not None:
                # durability 'exit': a run writes its checkpoint only when it waits for a human or fails (its retry
                # or its answer reads it); nobody reads a succeeded run's, so none is written
                checks[
                    f"langgraph: no succeeded run wrote a checkpoint it does not need "
                    f"({checkpoints['checkpointed_runs']}/{checkpoints['runs']})"
                ] = checkpoints["checkpointed_runs"] == 0
    print("\ntargets:")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    machine = results.get("machine_load") or {}
    if machine:
        print(f"\nthe machine during each measure ({os.cpu_count()} CPUs; busy share of all of them, ours included):")
        for name, load in machine.items():
            print(
                f"  {name:<68}{load['seconds']:>7.0f} s  CPU busy {load['cpu_busy_percent']:>5.1f}%  "
                f"1-min load at the end {load['load_1min_at_end']:.2f}"
            )
    return checks


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
    return base_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frameworks",
        type=frameworks_argument,
        default=list(FRAMEWORKS),
        help="comma-separated: langgraph,crewai,agno",
    )
    parser.add_argument("--runs", type=int, default=50, help="measured runs of each sequential measure (LangGraph)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up runs of each, not counted")
    parser.add_argument("--throughput-runs", type=int, default=200, help="LangGraph runs submitted at once")
    parser.add_argument(
        "--model",
        choices=MODELS,
        default="fake",
        help="CrewAI's and Agno's model: deterministic in-process models answering at once (bench/fake_agents.py), "
        "or the local model server (SmolLM2-135M)",
    )
    parser.add_argument(
        "--model-runs",
        type=int,
        help="measured runs of each sequential measure of CrewAI and Agno (--model fake: runs; local: min(runs, 10))",
    )
    parser.add_argument(
        "--model-throughput-runs",
        type=int,
        help="CrewAI and Agno runs submitted at once (--model fake: throughput-runs; local: min(throughput-runs, 20))",
    )
    parser.add_argument(
        "--observe",
        choices=OBSERVE,
        default="both",
        help="how the client sees a run end: SSE, polling every 2 ms, or both taking turns (the overhead uses SSE)",
    )
    parser.add_argument("--max-tokens", type=int, default=16, help="max_tokens of every call of the local model")
    parser.add_argument("--worker-slots", type=int, default=4, help="worker_slots of each worker")
    parser.add_argument("--runner-pool-size", type=int, default=1, help="runner_pool_size of each worker")
    parser.add_argument("--submit-concurrency", type=int, default=16, help="client threads submitting them")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds before each sequential run of ours")
    parser.add_argument(
        "--runs-per-process",
        type=int,
        default=100,
        help="also measure ours with the organization's runs_per_process at this (1: only a fresh fork per run)",
    )
    parser.add_argument(
        "--settle-max", type=float, default=30.0, help="longest wait for an idle worker before a run (seconds)"
    )
    parser.add_argument("--logs", type=Path, help="copy the server's, the workers' logs to this directory")
    args = parser.parse_args()
    fake = args.model == "fake"
    if args.model_runs is None:
        args.model_runs = args.runs if fake else min(args.runs, 10)
    if args.model_throughput_runs is None:
        args.model_throughput_runs = args.throughput_runs if fake else min(args.throughput_runs, 20)

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the clean-up below

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even where started with SIGINT ignored
    os.environ.update(QUIET)
    started = time.perf_counter()
    code = code_state()
    print(
        f"code: {code['commit']}" + (f", changed: {', '.join(code['changed_files'])}" if code["changed_files"] else "")
    )
    results: dict[str, Any] = {"frameworks": {}, "model": args.model, "observe": args.observe}
    machine: dict[str, Any] = {}
    results["machine_load"] = machine
    measured: list[str] = []
    with tempfile.TemporaryDirectory(prefix="obr-") as tmp:
        root = Path(tmp)
        env = bench_env(root, QUIET)
        os.environ["TMPDIR"] = tempfile.tempdir = env["TMPDIR"]  # the in-process baselines' files too
        os.environ["CREWAI_STORAGE_DIR"] = str(root / "crewai")  # what CrewAI keeps, here (fake builds it already)
        for framework in args.frameworks:
            why = unavailable(framework, args)
            if why is None:
                measured.append(framework)
            else:
                results["frameworks"][framework] = {"skipped": why}
                print(f"{framework}: skipped: {why}")
        procs = Processes(env=env, root=root)
        try:
            local = args.model == "local" and any(f in MODEL_FRAMEWORKS for f in measured)
            base_url = start_model(procs) if local else None
            if measured:
                session = open_session(procs, base_url, measured)
                for framework in measured:
                    print(f"\n{framework}:")
                    results["frameworks"][framework] = measure(session, framework, base_url, args, machine)
                session.client.close()
                results["logged_problems_server"] = logged_problems(session.server.log)
        finally:
            procs.stop_all()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in root.glob("*.log"):
                    shutil.copy(log, args.logs / log.name)
    results["code"] = code
    results["code_changed_meanwhile"] = code_state() != code
    if results["code_changed_meanwhile"]:
        print("!! the code under orchestrator_ext or runtimes changed while this ran: the processes may differ")
    checks = report(results)
    passed = bool(checks) and all(checks.values())
    print(f"\nall targets: {'PASS' if passed else 'FAIL'}; whole run {time.perf_counter() - started:.0f} s")
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
                    "baseline": "the framework called in this process, one call after the other (wall time)",
                    "ours": "POST /workflows/{id}/execute, then the end seen on GET /executions/{id}/events (SSE, "
                    "opened right after the 202) or by GET /executions/{id} every 2 ms (--observe; both: taking "
                    "turns, the overhead on SSE unless it stalled); one run at a time, each once the worker's "
                    "processes are idle",
                    "model": "CrewAI and Agno: --model fake: the same code-first builder (bench/fake_agents.py) "
                    "on both sides, on deterministic in-process models; --model local: the local model server",
                    "overhead": "ours p50 minus the first baseline's p50",
                    "throughput": "runs submitted at once from a thread pool through 2 workers; the clock stops "
                    "when none is queued or running",
                    "server": "jupyter orchestrator --OrchestratorApp.run_engine=False "
                    "--OrchestratorApp.local_model=False",
                },
                **results,
                "targets": dict(checks),
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
