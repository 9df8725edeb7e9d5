"""The baselines of ``bench/runtimes.py``: each framework called directly in the benchmark's process, one call
after the other, the wall time of each call and the model calls and tokens the framework counts.

* LangGraph: a ``StateGraph`` of two nodes, compiled once and invoked per call (A), or built and compiled per
  call (B);
* CrewAI and Agno: the crew and the team of ``bench/fake_agents.py``, built and run per call: on its fake
  models (``--model fake``: its builders, which ours names in its spec), or on the local model server
  (``--model local``), Agno's leader pinned to the delegation as the runtime pins it.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from framework_work import AGNO_DELEGATION_MIN_TOKENS, AGNO_TASK_CHARS, FAKE_BUILDERS, expected_output, fake_agents
from harness import distribution

#: a direct call: the work's output, and its model calls and tokens as the framework counts them (None: none)
Call = Callable[[], tuple[Any, dict[str, int] | None]]


class TwoSteps(TypedDict, total=False):
    a: int
    b: int


def langgraph_baselines() -> dict[str, Call]:
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


def local_settings(base_url: str, max_tokens: int) -> dict[str, Any]:
    """What each model object of the local baselines is given: the server, short deterministic answers, no retry."""
    return {"base_url": base_url, "api_key": "none", "max_tokens": max_tokens, "temperature": 0, "max_retries": 0}


def crewai_baselines(base_url: str, max_tokens: int, workdir: Path) -> dict[str, Call]:
    os.environ["CREWAI_STORAGE_DIR"] = str(workdir / "crewai")
    logging.getLogger("crewai").setLevel(logging.ERROR)  # a warning per call: SmolLM2 has no native token count
    from crewai import LLM

    from orchestrator_ext.local_model import MODEL_ALIAS

    def llm() -> Any:
        return LLM(model=f"openai/{MODEL_ALIAS}", **local_settings(base_url, max_tokens))

    def once() -> Any:
        return crew_result(fake_agents().crew(llm))

    return {"Crew built and kicked off per call": once}


def crew_result(crew: Any) -> tuple[str, dict[str, int]]:
    """A crew kicked off: its final answer, and its model calls and tokens as CrewAI counts them."""
    output = crew.kickoff()
    usage = output.token_usage
    return str(output.raw), {
        "model_calls": int(usage.successful_requests or 0),
        "prompt_tokens": int(usage.prompt_tokens or 0),
        "completion_tokens": int(usage.completion_tokens or 0),
    }


def agno_baselines(base_url: str, max_tokens: int) -> dict[str, Call]:
    from agno.models.openai.like import OpenAILike

    from orchestrator_ext.local_model import MODEL_ALIAS

    fake = fake_agents()
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
                    "member_id": {"type": "string", "enum": [fake.AGNO_MEMBER[0]]},
                    "task": {"type": "string", "maxLength": AGNO_TASK_CHARS},
                },
                "required": ["member_id", "task"],
            },
        },
    }
    pinned = {"tools": [delegate], "tool_choice": {"type": "function", "function": {"name": "delegate_task_to_member"}}}

    def once() -> Any:
        member = OpenAILike(id=MODEL_ALIAS, **local_settings(base_url, max_tokens))
        leader_tokens = max(max_tokens, AGNO_DELEGATION_MIN_TOKENS)
        leader = OpenAILike(id=MODEL_ALIAS, **local_settings(base_url, leader_tokens), request_params=pinned)
        return team_result(fake.team(member, leader), fake.AGNO_MESSAGE)

    return {"Team (route, one member) built and run per call": once}


def team_result(team: Any, message: str) -> tuple[Any, dict[str, int]]:
    """A team run on ``message``: its answer, and the model calls and tokens of the team and its members."""
    output = team.run(message)
    return output.content, agno_usage([output, *(output.member_responses or [])])


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


def fake_baselines(framework: str) -> dict[str, Call]:
    """``--model fake``: the builder ours runs, called here; what it builds, run (build and run in each call)."""
    fake = fake_agents()
    build = getattr(fake, FAKE_BUILDERS[framework].split(":")[1])
    if framework == "crewai":
        return {"fake_agents.build_crew() + kickoff() per call": lambda: crew_result(build())}
    return {"fake_agents.build_team() + run() per call": lambda: team_result(build(), fake.AGNO_MESSAGE)}


def baselines_of(framework: str, base_url: str | None, args: argparse.Namespace, workdir: Path) -> dict[str, Call]:
    """The direct calls of a framework, by label; the first one is the one overhead is measured against."""
    if framework == "langgraph":
        return langgraph_baselines()
    if args.model == "fake":
        return fake_baselines(framework)
    assert base_url is not None
    if framework == "crewai":
        return crewai_baselines(base_url, args.max_tokens, workdir)
    return agno_baselines(base_url, args.max_tokens)


def measure_baseline(framework: str, once: Call, runs: int, warmup: int, model: str) -> dict[str, Any]:
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
