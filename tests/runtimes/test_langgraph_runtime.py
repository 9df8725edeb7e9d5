"""The LangGraph runtime in-process: routing, tools, code, code first, checkpoints, errors (no model needed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestrator_runtimes.expressions import ExpressionError, evaluate, parse_condition, render
from orchestrator_runtimes.langgraph import LangGraphRuntime
from orchestrator_runtimes.runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, RunWaiting
from orchestrator_runtimes.spec import WorkflowSpec, validate_spec
from orchestrator_runtimes.tools import calculator

RUNTIME = LangGraphRuntime()


def code(source: str) -> dict[str, Any]:
    return {"source": source}


def spec(nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **options: Any) -> WorkflowSpec:
    data = {"nodes": nodes, "edges": edges or [], "options": options}
    checked, problems = validate_spec(data, "langgraph")
    assert checked is not None, problems
    return checked


def run_all(items: Iterator[Any]) -> tuple[list[dict[str, Any]], Any]:
    events, end = [], None
    for item in items:
        if isinstance(item, RunEvent):
            events.append(item.data)
        else:
            end = item
    return events, end


def failure(items: Iterator[Any]) -> RunError:
    with pytest.raises(RunError) as caught:
        run_all(items)
    return caught.value


ROUTED = [
    {"id": "start", "type": "input"},
    {"id": "calc", "type": "tool", "config": {"tool": "calculator", "args": {"expression": "{a} * 2"}}},
    {"id": "route", "type": "condition"},
    {"id": "big", "type": "code", "config": code("def run(values):\n    return 'big ' + str(values['calc'])")},
    {"id": "small", "type": "code", "config": code("def run(values):\n    return 'small'")},
    {"id": "end", "type": "output", "config": {"from": "big"}},
]
ROUTES = [
    {"source": "start", "target": "calc"},
    {"source": "calc", "target": "route"},
    {"source": "route", "target": "big", "condition": "calc > 10 and contains(str(calc), '1')"},
    {"source": "route", "target": "small"},
    {"source": "big", "target": "end"},
]


@pytest.mark.parametrize(("a", "path", "output"), [(7, ["big", "end"], "big 14"), (2, ["small"], 4)])
def test_conditional_edges_route_the_run(
    run_context: Callable[..., RunContext], a: int, path: list[str], output: Any
) -> None:
    events, result = run_all(RUNTIME.run(spec(ROUTED, ROUTES), {"a": a}, run_context()))
    assert isinstance(result, RunResult)
    assert [e["node"] for e in events] == ["start", "calc", "route", *path]
    assert all(e["framework"] == "langgraph" and e["latency_ms"] >= 0 for e in events)
    assert result.outputs["steps"] == [{k: v for k, v in e.items() if k != "framework"} for e in events]
    assert result.outputs["usage"] == {"model_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    expected = output if path[-1] == "end" else "small"
    assert result.outputs["output"] == expected


def test_the_validator_names_every_node_at_fault() -> None:
    data = {
        "nodes": [
            {"id": "a", "type": "agent"},
            {"id": "b", "type": "model", "config": {"prompt": "", "max_tokens": 0}},
            {"id": "c", "type": "code", "config": {}},
            {"id": "d", "type": "code", "config": {"source": "def run(:"}},
            {"id": "e", "type": "tool", "config": {"tool": "nope", "args": []}},
            {"id": "f", "type": "code", "config": {"callable": "not a reference"}},
            {"id": "g", "type": "human_approval", "config": {"question": 3}},
        ],
        "edges": [{"source": "a", "target": "b", "condition": "__import__('os')"}],
    }
    _, problems = validate_spec(data, "langgraph")
    fields = {p.field for p in problems}
    assert {
        "spec.nodes.0.type",
        "spec.nodes.1.config.prompt",
        "spec.nodes.1.config.max_tokens",
        "spec.nodes.2.config",
        "spec.nodes.3.config.source",
        "spec.nodes.4.config.tool",
        "spec.nodes.4.config.args",
        "spec.nodes.5.config.callable",
        "spec.nodes.6.config.question",
        "spec.edges.0.condition",
    } <= fields
    cycle = {"nodes": [{"id": "a", "type": "input"}], "edges": [{"source": "a", "target": "a"}]}
    assert "spec.edges" in {p.field for p in validate_spec(cycle, "langgraph")[1]}


def test_a_tool_or_code_that_raises_has_its_kind(run_context: Callable[..., RunContext]) -> None:
    tool = spec([{"id": "t", "type": "tool", "config": {"tool": "calculator", "args": {"expression": "1 / 0"}}}])
    error = failure(RUNTIME.run(tool, {}, run_context()))
    assert error.kind is ErrorKind.TOOL
    assert "calculator" in error.message
    broken = spec([{"id": "boom", "type": "code", "config": code("def run(values):\n    return values['x']")}])
    error = failure(RUNTIME.run(broken, {}, run_context()))
    assert error.kind is ErrorKind.CODE
    assert "boom" in error.message
    assert error.details["traceback"]


def test_a_template_naming_nothing_is_an_input_error(run_context: Callable[..., RunContext]) -> None:
    model = {"kind": "openai-compatible", "config": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}
    asks = spec([{"id": "ask", "type": "model", "config": {"prompt": "about {missing}"}}])
    context = run_context(integrations={"m": model}, default_model="m")
    error = failure(RUNTIME.run(asks, {}, context))
    assert error.kind is ErrorKind.INPUT
    assert "{missing}" in error.message


def test_no_model_integration_is_a_configuration_error(run_context: Callable[..., RunContext]) -> None:
    asks = spec([{"id": "ask", "type": "model", "config": {"prompt": "hi"}}])
    error = failure(RUNTIME.run(asks, {}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "openai-compatible" in error.message
    tool = {"kind": "tool", "config": {}}
    error = failure(RUNTIME.run(asks, {}, run_context(integrations={"t": tool}, default_model="t")))
    assert "not 'openai-compatible'" in error.message


def test_a_loop_past_the_recursion_limit_fails_clearly(run_context: Callable[..., RunContext]) -> None:
    looping = spec(
        [{"id": "a", "type": "input"}, {"id": "b", "type": "router"}],
        [{"source": "a", "target": "b"}, {"source": "b", "target": "b", "condition": "true"}],
        recursion_limit=5,
    )
    error = failure(RUNTIME.run(looping, {}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "more than 5 steps" in error.message


def test_code_first_module_and_notebook(run_context: Callable[..., RunContext], tmp_path: Path) -> None:
    builder = """
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict, total=False):
    n: int
    doubled: int

def build(inputs):
    graph = StateGraph(State)
    graph.add_node("double", lambda state: {"doubled": state["n"] * 2})
    graph.add_edge(START, "double")
    graph.add_edge("double", END)
    return graph
"""
    (tmp_path / "graphs_mod.py").write_text(builder)
    cell = {"cell_type": "code", "id": "b", "metadata": {}, "outputs": [], "execution_count": None, "source": builder}
    magic = {**cell, "id": "m", "source": "%matplotlib inline\n!echo hi"}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [magic, cell]}
    (tmp_path / "graphs.ipynb").write_text(json.dumps(notebook))
    for reference in ("graphs_mod:build", "graphs.ipynb:build"):
        first_code = validate_spec({"options": {"callable": reference}}, "langgraph")[0]
        assert first_code is not None
        events, result = run_all(RUNTIME.run(first_code, {"n": 21}, run_context()))
        assert isinstance(result, RunResult)
        assert result.outputs["output"] == {"n": 21, "doubled": 42}
        assert [e["node"] for e in events] == ["double"]
    missing = validate_spec({"options": {"callable": "graphs_mod:absent"}}, "langgraph")[0]
    assert missing is not None
    assert failure(RUNTIME.run(missing, {}, run_context())).kind is ErrorKind.CONFIGURATION
    bad = validate_spec({"options": {"callable": "../x.ipynb:f"}}, "langgraph")[1]
    assert bad[0].field == "spec.options.callable"


def test_a_notebook_whose_state_has_a_reducer_builds(run_context: Callable[..., RunContext], tmp_path: Path) -> None:
    """A notebook's annotations stay objects (the loader's own ``from __future__ import annotations`` made them
    strings, and LangGraph could not resolve ``Annotated`` in them: NameError)."""
    source = """from typing import Annotated, TypedDict
import operator
from langgraph.graph import StateGraph, START

class State(TypedDict):
    seen: Annotated[list[str], operator.add]

def build():
    graph = StateGraph(State)
    graph.add_node("visit", lambda state: {"seen": ["visited"]})
    graph.add_edge(START, "visit")
    return graph
"""
    cell = {"cell_type": "code", "id": "s", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{**cell, "source": source}]}
    (tmp_path / "reducer.ipynb").write_text(json.dumps(notebook))
    first_code = validate_spec({"options": {"callable": "reducer.ipynb:build"}}, "langgraph")[0]
    assert first_code is not None
    _, result = run_all(RUNTIME.run(first_code, {"seen": ["start"]}, run_context()))
    assert isinstance(result, RunResult), result
    assert result.outputs["output"] == {"seen": ["start", "visited"]}


def test_human_approval_checkpoints_and_resumes(run_context: Callable[..., RunContext], state_url: str) -> None:
    approval = spec(
        [
            {"id": "start", "type": "input"},
            {"id": "approve", "type": "human_approval", "config": {"question": "Ship {what}?"}},
            {"id": "yes", "type": "code", "config": code("def run(values):\n    return 'shipped'")},
            {"id": "no", "type": "code", "config": code("def run(values):\n    return 'held'")},
        ],
        [
            {"source": "start", "target": "approve"},
            {"source": "approve", "target": "yes", "condition": "approve.ok"},
            {"source": "approve", "target": "no"},
        ],
    )
    context = run_context(state_url=state_url)
    events, waiting = run_all(RUNTIME.run(approval, {"what": "v2"}, context))
    assert isinstance(waiting, RunWaiting)
    assert waiting.node == "approve"
    assert waiting.request["question"] == "Ship v2?"
    assert [e["node"] for e in events] == ["start"]
    # a new attempt (a new process, in the engine) resumes the same thread from PostgreSQL
    resumed = RunContext(**{**context.__dict__, "attempt": 2, "resume": {"answer": {"ok": True}}})
    events, result = run_all(RUNTIME.run(approval, {"what": "v2"}, resumed))
    assert isinstance(result, RunResult)
    assert [e["node"] for e in events] == ["approve", "yes"]
    assert [s["node"] for s in result.outputs["steps"]] == ["start", "approve", "yes"]
    assert result.outputs["output"] == "shipped"
    # without the runs' database there is nowhere to wait
    error = failure(RUNTIME.run(approval, {}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION


def test_expressions_are_a_small_safe_language() -> None:
    names = {"a": {"b": [1, 2, 3]}, "s": "Hello", "n": 4}
    assert evaluate("len(a.b) == 3 and a['b'][0] == 1", names) is True
    assert evaluate("lower(s) == 'hello' and s.startswith('He') and not missing", names) is True
    assert evaluate("n * 2 - 1 > 6 or null", names) is True
    assert evaluate("'x' in missing", names) is False
    assert evaluate("1 < 'a'", names) is False  # incomparable: false, not an error
    for bad in ("__import__('os')", "a.__class__", "lambda: 1", "f(x=1)", "open('x')", "s.format()", "1 +"):
        with pytest.raises(ExpressionError):
            parse_condition(bad)
    assert render("{s}, {a.b.1} {n}", names) == "Hello, 2 4"
    with pytest.raises(ExpressionError):
        render("{nothing}", names)
    assert calculator("(2 + 3) * 4") == 20
    for bad_sum in ("'a'", "1 / 0", "x"):
        with pytest.raises(ValueError, match=r"cannot calculate|is not arithmetic"):
            calculator(bad_sum)
