"""The work ``bench/runtimes.py`` measures: each framework's two-step workflow as our spec, its inputs, the
answer both sides must give, and whether a framework can be measured here at all.

The same work on both sides: LangGraph's two ``code`` nodes; CrewAI's crew and Agno's team as
``bench/fake_agents.py`` builds them (``--model fake``: its builders named by the spec; ``--model local``:
the same agents, tasks and team as declarative nodes, on the local model server).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RUNTIMES = BENCH.parent / "runtimes" / "orchestrator_runtimes"
FRAMEWORKS = ("langgraph", "crewai", "agno")
MODEL_FRAMEWORKS = frozenset({"crewai", "agno"})
#: ``--model``: deterministic in-process models (bench/fake_agents.py), or the local model server
MODELS = ("fake", "local")
#: ``--model fake``: the code-first builder both sides run (the baseline here, ours named by the spec)
FAKE_BUILDERS = {"crewai": "fake_agents:build_crew", "agno": "fake_agents:build_team"}
#: what the runtime gives a team leader's forced delegation: at least these tokens, a task this long at most
AGNO_DELEGATION_MIN_TOKENS = 160
AGNO_TASK_CHARS = 200


def fake_agents() -> Any:
    """``bench/fake_agents.py``, imported as the workers import it (the top-level module ``fake_agents``)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("fake_agents")


def code_node(node_id: str, body: str) -> dict[str, Any]:
    return {"id": node_id, "type": "code", "config": {"source": f"def run(values):\n    return {body}"}}


#: LangGraph's work: two ``code`` nodes, ``a`` returns 1, ``b`` returns ``a + 1`` (bench/scale.py runs it too)
LANGGRAPH_SPEC: dict[str, Any] = {
    "nodes": [code_node("a", "1"), code_node("b", "values['a'] + 1")],
    "edges": [{"source": "a", "target": "b"}],
}


def spec_of(framework: str, max_tokens: int, model: str) -> dict[str, Any]:
    """The benchmark's two-step workflow as our spec."""
    if framework == "langgraph":
        return LANGGRAPH_SPEC
    if model == "fake":
        return {"nodes": [], "edges": [], "options": {"callable": FAKE_BUILDERS[framework]}}
    options = {"max_tokens": max_tokens, "temperature": 0}
    fake = fake_agents()
    if framework == "crewai":
        return {"nodes": crew_nodes(fake.CREW, fake.CREW_EXPECTED), "edges": [], "options": options}
    if framework == "agno":
        member, name, instructions = fake.AGNO_MEMBER
        team, team_name = fake.AGNO_TEAM
        return {
            "nodes": [
                {"id": member, "type": "agent", "config": {"name": name, "instructions": instructions}},
                {"id": team, "type": "team", "config": {"name": team_name, "members": [member], "mode": "route"}},
            ],
            "edges": [],
            "options": options,
        }
    raise ValueError(framework)


def crew_nodes(crew: tuple[tuple[str, str, str, str], ...], expected: str) -> list[dict[str, Any]]:
    """The crew (role, task, description, answer) as ``agent`` nodes (their id the role in lower case) and
    ``task`` nodes, each task receiving the previous one."""
    agents = [
        {
            "id": role.lower(),
            "type": "agent",
            "config": {"role": role, "goal": f"Help briefly as the {role}.", "backstory": f"You are a {role}."},
        }
        for role, _, _, _ in crew
    ]
    tasks = []
    for index, (role, task, description, _) in enumerate(crew):
        config: dict[str, Any] = {"description": description, "expected_output": expected, "agent": role.lower()}
        if index:
            config["context"] = [crew[index - 1][1]]
        tasks.append({"id": task, "type": "task", "config": config})
    return [*agents, *tasks]


def inputs_of(framework: str, model: str) -> dict[str, Any]:
    return {"message": fake_agents().AGNO_MESSAGE} if framework == "agno" else {}


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
        return f"the runtime rejects the benchmark's spec (bench/framework_work.py spec_of needs updating): {found}"
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
