"""LangGraph as its users draw and write it: fan-out and fan-in, bounded loops, subgraphs, and the
documented code-first patterns (tests/runtimes/langgraph_patterns.py) compared with the graph invoked
directly, in-process here and through the API in test_langgraph_api.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from orchestrator_runtimes.langgraph import LangGraphRuntime
from orchestrator_runtimes.langgraph.messages import to_json
from orchestrator_runtimes.runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, RunWaiting
from orchestrator_runtimes.spec import WorkflowSpec, validate_spec

from . import langgraph_patterns as patterns

RUNTIME = LangGraphRuntime()


def code(body: str) -> dict[str, Any]:
    return {"source": f"def run(values):\n    return {body}"}


def spec(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], **options: Any) -> WorkflowSpec:
    checked, problems = validate_spec({"nodes": nodes, "edges": edges, "options": options}, "langgraph")
    assert checked is not None, problems
    return checked


def problems_of(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, str]:
    _, problems = validate_spec({"nodes": nodes, "edges": edges}, "langgraph")
    return {p.field: p.message for p in problems}


def run_all(items: Iterator[Any]) -> tuple[list[dict[str, Any]], Any]:
    events, end = [], None
    for item in items:
        if isinstance(item, RunEvent):
            events.append(item.data)
        else:
            end = item
    return events, end


def ran(workflow: WorkflowSpec, inputs: dict[str, Any], context: RunContext) -> RunResult:
    _, result = run_all(RUNTIME.run(workflow, inputs, context))
    assert isinstance(result, RunResult), result
    return result


# ---- graphs drawn as specs ------------------------------------------------------------------------


def test_fan_out_and_fan_in(run_context: Callable[..., RunContext]) -> None:
    drawn = spec(
        [
            {"id": "start", "type": "input"},
            {"id": "double", "type": "code", "config": code("values['n'] * 2")},
            {"id": "square", "type": "code", "config": code("values['n'] ** 2")},
            {"id": "join", "type": "code", "config": code("values['double'] + values['square']")},
        ],
        [
            {"source": "start", "target": "double"},
            {"source": "start", "target": "square"},
            {"source": "double", "target": "join"},
            {"source": "square", "target": "join"},
        ],
    )
    result = ran(drawn, {"n": 5}, run_context())
    assert result.outputs["output"] == 35
    assert result.outputs["values"] == {"start": {"n": 5}, "double": 10, "square": 25, "join": 35}
    assert sorted(s["node"] for s in result.outputs["steps"]) == ["double", "join", "square", "start"]


def test_branches_of_different_lengths_meet_once_with_wait_for(run_context: Callable[..., RunContext]) -> None:
    nodes = [
        {"id": "start", "type": "input"},
        {"id": "a", "type": "code", "config": code("1")},
        {"id": "b", "type": "code", "config": code("values['a'] + 1")},
        {"id": "c", "type": "code", "config": code("10")},
        {"id": "join", "type": "code", "config": {**code("values['b'] + values['c']"), "wait_for": ["b", "c"]}},
    ]
    edges = [
        {"source": "start", "target": "a"},
        {"source": "a", "target": "b"},
        {"source": "start", "target": "c"},
        {"source": "b", "target": "join"},
        {"source": "c", "target": "join"},
    ]
    result = ran(spec(nodes, edges), {}, run_context())
    assert [s["node"] for s in result.outputs["steps"]].count("join") == 1
    eager = ran(
        spec([*nodes[:4], {**nodes[4], "config": code("values.get('b', 0) + values['c']")}], edges), {}, run_context()
    )
    assert [s["node"] for s in eager.outputs["steps"]].count("join") == 2  # LangGraph's default: after each branch
    assert result.outputs["output"] == 12
    wrong = problems_of([*nodes[:4], {**nodes[4], "config": {**code("1"), "wait_for": ["a"]}}], edges)
    assert "'a'" in wrong["spec.nodes.4.config.wait_for.0"]


def test_a_loop_bounded_by_its_condition(run_context: Callable[..., RunContext]) -> None:
    looping = spec(
        [
            {"id": "start", "type": "input"},
            {"id": "inc", "type": "code", "config": code("(values.get('inc') or 0) + 1")},
            {"id": "done", "type": "output", "config": {"from": "inc"}},
        ],
        [
            {"source": "start", "target": "inc"},
            {"source": "inc", "target": "inc", "condition": "visits.inc < 3"},
            {"source": "inc", "target": "done"},
        ],
    )
    result = ran(looping, {}, run_context())
    assert [s["node"] for s in result.outputs["steps"]] == ["start", "inc", "inc", "inc", "done"]
    assert result.outputs["output"] == 3


def test_validation_refuses_what_cannot_run_naming_the_node() -> None:
    forever = problems_of(
        [{"id": "start", "type": "input"}, {"id": "a", "type": "router"}, {"id": "b", "type": "router"}],
        [{"source": "start", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
    )
    assert any("loop" in message and ("'a'" in message or "'b'" in message) for message in forever.values())
    waiting_inside = problems_of(
        [
            {"id": "start", "type": "input"},
            {"id": "sub", "type": "subgraph", "config": {"nodes": [{"id": "ok", "type": "human_approval"}]}},
        ],
        [{"source": "start", "target": "sub"}],
    )
    assert "'sub'" in waiting_inside["spec.nodes.1.config.nodes.0.type"]
    broken_inside = problems_of(
        [{"id": "sub", "type": "subgraph", "config": {"nodes": [{"id": "m", "type": "model", "config": {}}]}}], []
    )
    assert "prompt" in broken_inside["spec.nodes.0.config.nodes.0.config.prompt"]
    unknown = problems_of([{"id": "m", "type": "model", "config": {"prompt": "hi", "colour": "red"}}], [])
    assert "unknown model setting" in unknown["spec.nodes.0.config.colour"]


def test_a_subgraph_runs_as_one_node(run_context: Callable[..., RunContext]) -> None:
    inner = {
        "nodes": [
            {"id": "twice", "type": "code", "config": code("values['n'] * 2")},
            {"id": "plus", "type": "code", "config": code("values['twice'] + values['first']")},
            {"id": "out", "type": "output", "config": {"from": "plus"}},
        ],
        "edges": [{"source": "twice", "target": "plus"}, {"source": "plus", "target": "out"}],
    }
    drawn = spec(
        [
            {"id": "start", "type": "input"},
            {"id": "first", "type": "code", "config": code("100")},
            {"id": "sub", "type": "subgraph", "config": inner},
            {"id": "end", "type": "output", "config": {"from": "sub"}},
        ],
        [
            {"source": "start", "target": "first"},
            {"source": "first", "target": "sub"},
            {"source": "sub", "target": "end"},
        ],
    )
    result = ran(drawn, {"n": 4}, run_context())
    assert result.outputs["output"] == 108
    nodes = [s["node"] for s in result.outputs["steps"]]
    assert nodes == ["start", "first", "sub/twice", "sub/plus", "sub/out", "sub", "end"]


# ---- LangGraph's documented patterns, code first ---------------------------------------------------


def code_first(name: str) -> WorkflowSpec:
    return spec([], [], callable=f"tests.runtimes.langgraph_patterns:{name}")


PATTERNS = [
    ("build_quickstart", {"graph_state": "Hi, this is Lance."}),
    ("build_map_reduce", {"subjects": ["cats", "dogs", "lions"]}),
    ("build_subgraph", {"foo": "foo"}),
]


@pytest.mark.parametrize(("builder", "inputs"), PATTERNS)
def test_documented_patterns_give_what_the_graph_gives(
    run_context: Callable[..., RunContext], builder: str, inputs: dict[str, Any]
) -> None:
    reference = getattr(patterns, builder)().invoke(inputs)
    assert ran(code_first(builder), inputs, run_context()).outputs["output"] == reference


def test_a_react_agent_s_messages_keep_their_roles_and_tool_calls(run_context: Callable[..., RunContext]) -> None:
    question = {"messages": [{"role": "user", "content": "What is 3 times 5?"}]}
    reference = patterns.build_react_agent().invoke(question)["messages"]
    result = ran(code_first("build_react_agent"), question, run_context())
    messages = result.outputs["output"]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "What is 3 times 5?"),
        ("assistant", ""),
        ("tool", "15"),
        ("assistant", "The answer is 15."),
    ]
    assert [(m["role"], m["content"]) for m in messages] == [(m["role"], m["content"]) for m in to_json(reference)]
    assert messages[1]["tool_calls"] == [{"id": "call_1", "name": "multiply", "args": {"a": 3, "b": 5}}]
    assert messages[2]["tool_call_id"] == "call_1"
    agent_step = next(s for s in result.outputs["steps"] if s["node"] == "agent")
    assert agent_step["output"]["messages"][0]["role"] == "assistant"


def test_interrupt_with_its_own_checkpointer_waits_and_resumes_in_another_process(
    run_context: Callable[..., RunContext], state_url: str
) -> None:
    reference = patterns.build_interrupt()
    thread = {"configurable": {"thread_id": "reference"}}
    asked = reference.invoke({"some_text": "original"}, thread)["__interrupt__"][0].value
    expected = reference.invoke(patterns.Command(resume="edited"), thread)

    context = run_context(state_url=state_url)
    _, waiting = run_all(RUNTIME.run(code_first("build_interrupt"), {"some_text": "original"}, context))
    assert isinstance(waiting, RunWaiting)
    assert waiting.node == "human_node"
    assert waiting.request == {**asked, "node": "human_node"}
    resumed = RunContext(**{**context.__dict__, "attempt": 2, "resume": {"answer": "edited"}})
    assert ran(code_first("build_interrupt"), {"some_text": "original"}, resumed).outputs["output"] == expected
    # without the runs' database nothing could keep the checkpoint: refused, saying what to configure
    with pytest.raises(RunError, match="runs_database_url") as caught:
        run_all(RUNTIME.run(code_first("build_interrupt"), {"some_text": "x"}, run_context()))
    assert caught.value.kind is ErrorKind.CONFIGURATION
