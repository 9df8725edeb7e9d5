"""A spec's nodes and edges as a LangGraph ``StateGraph`` (pure: nothing runs until the graph does).

The state every node reads and writes (:class:`GraphState`) has a reducer on
each key a node writes, so branches that run in the same step (a fan-out) each
add their output: ``values`` merges outputs by node id, ``last`` and
``output`` keep the last written, ``steps`` appends, ``visits`` counts how many
times each node ran (``visits.draft < 3`` bounds a loop).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from ..code import load_callable
from ..errors import ErrorKind, RunError
from ..expressions import ExpressionError, evaluate, parse_condition, render
from ..models import METER, model_endpoint, model_failure
from ..tools import call_tool, load_tool
from ..tracking import step_record
from .spec import NODE_MODELS

if TYPE_CHECKING:
    from ..runtime import RunContext
    from ..spec import Edge, Node


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


def _concat(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # a Python function, not operator.add: LangGraph inspects the reducer's signature, and a builtin's is
    # parsed from text (copying its module's namespace, ~5 ms in a freshly forked run)
    return left + right


def _latest(left: Any, right: Any) -> Any:
    return right


def _count(left: dict[str, int] | None, right: dict[str, int] | None) -> dict[str, int]:
    counts = dict(left or {})
    for name, added in (right or {}).items():
        counts[name] = counts.get(name, 0) + added
    return counts


class GraphState(TypedDict, total=False):
    """What flows through a spec's graph (and is checkpointed)."""

    inputs: dict[str, Any]
    values: Annotated[dict[str, Any], _merge]
    last: Annotated[Any, _latest]
    output: Annotated[Any, _latest]
    steps: Annotated[list[dict[str, Any]], _concat]
    visits: Annotated[dict[str, int], _count]


def names(state: Mapping[str, Any]) -> dict[str, Any]:
    """What templates and conditions see: inputs, every node's output by id, ``last``, ``visits``."""
    inputs = state.get("inputs") or {}
    return {
        **inputs,
        "inputs": inputs,
        **(state.get("values") or {}),
        "last": state.get("last"),
        "visits": dict(state.get("visits") or {}),
    }


def start_state(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {"inputs": dict(inputs), "values": {}, "steps": [], "visits": {}}


@dataclass(frozen=True)
class _Nested:
    """A node's output with the steps it ran inside (a subgraph's)."""

    output: Any
    steps: list[dict[str, Any]]


Work = Callable[[GraphState], Any]


def build_graph(nodes: list[Node], edges: list[Edge], options: Any, context: RunContext) -> Any:
    """The ``StateGraph`` of a graph's nodes and edges (not compiled)."""
    from langgraph.graph import END, START, StateGraph

    graph: Any = StateGraph(GraphState)
    for node in nodes:
        graph.add_node(node.id, _node_function(node, options, context))
    targets = {edge.target for edge in edges}
    for node in nodes:
        if node.id not in targets:
            graph.add_edge(START, node.id)
    waits = {node.id: list(node.config.get("wait_for") or []) for node in nodes}
    by_source: dict[str, list[Edge]] = {}
    for edge in edges:
        by_source.setdefault(edge.source, []).append(edge)
    for node in nodes:
        outgoing = by_source.get(node.id, [])
        if not outgoing:
            graph.add_edge(node.id, END)
        elif all(edge.condition is None for edge in outgoing):
            for edge in outgoing:
                if node.id not in waits.get(edge.target, []):
                    graph.add_edge(node.id, edge.target)
        else:
            graph.add_conditional_edges(node.id, _router(outgoing, END), [*{e.target for e in outgoing}, END])
    for target, sources in waits.items():
        if sources:
            graph.add_edge(sources if len(sources) > 1 else sources[0], target)
    return graph


def _router(edges: list[Edge], end: str) -> Callable[[GraphState], Any]:
    conditioned = [(edge.target, parse_condition(edge.condition)) for edge in edges if edge.condition is not None]
    fallback = [edge.target for edge in edges if edge.condition is None]

    def route(state: GraphState) -> Any:
        seen = names(state)
        for target, tree in conditioned:
            try:
                if evaluate(tree, seen):
                    return target
            except ExpressionError as exc:
                raise RunError(ErrorKind.CONFIGURATION, f"the condition to '{target}' failed: {exc}") from exc
        if not fallback:
            return end
        return fallback if len(fallback) > 1 else fallback[0]

    return route


def _node_function(node: Node, options: Any, context: RunContext) -> Callable[[GraphState], dict[str, Any]]:
    kind = str(node.type)
    config = NODE_MODELS[kind].model_validate(node.config)
    work = _WORK[kind](node, config, options, context)

    def run_node(state: GraphState) -> dict[str, Any]:
        mark, started = METER.snapshot(), time.perf_counter()
        output = work(state)
        inner: list[dict[str, Any]] = []
        if isinstance(output, _Nested):
            output, inner = output.output, output.steps
        step = step_record(node.id, kind, output, mark, started, agent=node.label)
        if inner:  # the subgraph's own steps carry its model calls: counted once
            step.update(dict.fromkeys(("model_calls", "prompt_tokens", "completion_tokens", "total_tokens"), 0))
        update: dict[str, Any] = {
            "values": {node.id: output},
            "last": output,
            "steps": [*inner, step],
            "visits": {node.id: 1},
        }
        if kind == "output":
            update["output"] = output
        return update

    return run_node


def _input_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    return lambda state: dict(state.get("inputs") or {})


def _output_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    source = config.from_

    def output(state: GraphState) -> Any:
        if source is None:
            return state.get("last")
        return (state.get("values") or {}).get(str(source))

    return output


def _pass_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    return lambda state: state.get("last")


def _filled(node: Node, template: str, state: GraphState) -> str:
    try:
        return render(template, names(state))
    except ExpressionError as exc:
        raise RunError(ErrorKind.INPUT, f"node '{node.id}': {exc}", node=node.id) from exc


def _model_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    endpoint = model_endpoint(context, config.model or options.model)
    client = endpoint.openai_client()

    def call_model(state: GraphState) -> Any:
        prompt = _filled(node, config.prompt, state)
        system = _filled(node, config.system, state) if config.system else None
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        try:
            reply = client.chat.completions.create(
                model=endpoint.model,
                messages=messages,
                max_tokens=config.max_tokens,
                temperature=config.temperature,
            )
        except Exception as exc:
            failure = model_failure(exc, endpoint) or RunError(ErrorKind.MODEL, f"{type(exc).__name__}: {exc}")
            failure.details["node"] = node.id
            raise failure from exc
        return (reply.choices[0].message.content or "").strip()

    return call_model


def _tool_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    tool = load_tool(config.tool, context.files_root)

    def call(state: GraphState) -> Any:
        filled = {k: _filled(node, v, state) if isinstance(v, str) else v for k, v in config.args.items()}
        return call_tool(config.tool, tool, filled)

    return call


def _code_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    if config.callable is not None:
        function = load_callable(config.callable, context.files_root)
    else:
        namespace: dict[str, Any] = {}
        # the workflow's own code, run in the run's own isolated process
        exec(compile(config.source, f"<node {node.id}>", "exec"), namespace)  # noqa: S102  # nosec B102
        function = namespace["run"]

    def call(state: GraphState) -> Any:
        try:
            return function(names(state))
        except RunError:
            raise
        except Exception as exc:
            raise RunError(
                ErrorKind.CODE,
                f"the code of node '{node.id}' raised {type(exc).__name__}: {exc}",
                node=node.id,
                traceback=traceback.format_exception(exc)[-10:],
            ) from exc

    return call


def _approval_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    from langgraph.types import interrupt

    def ask(state: GraphState) -> Any:
        try:
            asked = render(config.question, names(state))
        except ExpressionError:
            asked = config.question
        return interrupt({"node": node.id, "question": asked, "last": state.get("last")})

    return ask


def _subgraph_work(node: Node, config: Any, options: Any, context: RunContext) -> Work:
    from ..spec import WorkflowSpec

    inner = WorkflowSpec.model_validate({"nodes": config.nodes, "edges": config.edges})
    compiled = build_graph(inner.nodes, inner.edges, options, context).compile()

    def run_subgraph(state: GraphState) -> Any:
        seen = {k: v for k, v in names(state).items() if k not in ("inputs", "last", "visits")}
        ended = compiled.invoke(start_state(seen), {"recursion_limit": options.recursion_limit})
        steps = [{**step, "node": f"{node.id}/{step['node']}"} for step in ended.get("steps") or []]
        return _Nested(ended.get("output", ended.get("last")), steps)

    return run_subgraph


_WORK: dict[str, Callable[[Node, Any, Any, RunContext], Work]] = {
    "input": _input_work,
    "output": _output_work,
    "router": _pass_work,
    "condition": _pass_work,
    "model": _model_work,
    "tool": _tool_work,
    "code": _code_work,
    "human_approval": _approval_work,
    "subgraph": _subgraph_work,
}
