"""The LangGraph runtime: a spec's nodes and edges become a ``StateGraph``, checkpointed in PostgreSQL.

Nodes (``config`` keys):

- ``input``: the run's inputs (its output is the inputs object);
- ``model``: ``prompt`` (a ``{name}`` template), ``system``, ``model`` (an
  integration name), ``max_tokens``, ``temperature``: one chat completion;
- ``tool``: ``tool`` (a built-in name or ``module:function``) and ``args``
  (values, strings being templates): one tool call;
- ``code``: ``callable`` (``module:function``) or ``source`` (Python defining
  ``run(values)``): called with every value so far, its return is the output;
- ``router`` / ``condition``: pass the latest output on; their outgoing edges
  carry the conditions;
- ``human_approval``: ``question``: the run stops (status ``waiting``) until
  ``POST /executions/{id}/resume`` gives the answer, which becomes the output;
- ``output``: ``from`` (a node id) or the latest output: the run's final output.

An edge's ``condition`` (:mod:`.expressions`) is tested in edge order; edges
without one are taken when no condition holds. Each node's output is named by
its id in templates and conditions (``{draft}``, ``approve.approved``).

The thread of a run is its execution id: with ``context.state_url`` every step
is checkpointed by ``langgraph-checkpoint-postgres``, so a waiting run resumes
from its checkpoint in any process, and a retried attempt goes on from the
last checkpoint instead of starting over.

Code-first: ``options.callable`` names a function that returns a ``StateGraph``
(compiled here with the checkpointer) or a compiled graph; it is called with
whichever of ``client`` (a metered ``openai.OpenAI``), ``model`` (the model
name), ``endpoint`` and ``inputs`` it accepts.
"""

from __future__ import annotations

import importlib
import inspect
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

from .code import check_reference, load_callable
from .expressions import ExpressionError, evaluate, parse_condition, render
from .models import METER, ModelEndpoint, Usage, model_endpoint, model_failure
from .runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, RunWaiting, invalid_spec
from .tools import call_tool, load_tool, tool_problem

if TYPE_CHECKING:
    from .spec import Node, SpecError, WorkflowSpec

_WARM_UP = {
    "nodes": [
        {"id": "a", "type": "code", "config": {"source": "def run(values):\n    return 1"}},
        {"id": "b", "type": "output", "config": {"from": "a"}},
    ],
    "edges": [{"source": "a", "target": "b"}],
}
NODE_TYPES = ("input", "output", "model", "tool", "code", "router", "condition", "human_approval")
DEFAULT_MAX_TOKENS = 256
#: when checkpoints are written: "exit" (when the run stops: it ends, fails or waits for a human), "async" or
#: "sync" (after every step; a lost worker's retry then goes on from the last step instead of starting over)
DURABILITY = ("exit", "async", "sync")
DEFAULT_DURABILITY = "exit"
#: set in a fork server's environment once the checkpoint tables exist, so its runs skip the check
PREPARED_ENV = "ORCHESTRATOR_CHECKPOINTS_READY"


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


def _concat(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # a Python function, not operator.add: LangGraph inspects the reducer's signature, and a builtin's is
    # parsed from text (copying its module's namespace, ~5 ms in a freshly forked run)
    return left + right


class GraphState(TypedDict, total=False):
    """What flows through a spec's graph (and is checkpointed)."""

    inputs: dict[str, Any]
    values: Annotated[dict[str, Any], _merge]
    last: Any
    output: Any
    steps: Annotated[list[dict[str, Any]], _concat]


def _names(state: Mapping[str, Any]) -> dict[str, Any]:
    inputs = state.get("inputs") or {}
    return {**inputs, "inputs": inputs, **(state.get("values") or {}), "last": state.get("last")}


class LangGraphRuntime:
    """Runs ``langgraph`` workflows (entry point ``orchestrator.runtimes: langgraph``)."""

    name = "langgraph"
    capabilities = {  # noqa: RUF012 - read-only declaration
        "streaming": True,
        "checkpoints": True,
        "multi_agent": True,
        "tools": True,
        "human_in_the_loop": True,
        "multi_modal": False,
        "gpu": False,
    }

    def preload(self) -> None:
        """Import LangGraph, its PostgreSQL checkpointer and the OpenAI client (a warm runner does this)."""
        for module in ("langgraph.graph", "langgraph.checkpoint.postgres", "openai"):
            importlib.import_module(module)
        # one tiny graph, so the first real run finds LangGraph's lazy imports and caches done
        from .spec import validate_spec

        warm, _ = validate_spec(_WARM_UP, self.name)
        if warm is not None:
            context = RunContext(execution_id="warm-up", attempt=1, workdir=Path.cwd())
            for _ in self.run(warm, {}, context):
                pass

    def prepare_state(self, url: str) -> None:
        """Create the checkpoint tables once (a fork server does this for all its runs)."""
        with _postgres_saver(url):
            os.environ[PREPARED_ENV] = url

    # ---- validation ------------------------------------------------------------

    def validate(self, spec: WorkflowSpec) -> list[SpecError]:
        from .spec import SpecError

        callable_ref = spec.options.get("callable")
        if callable_ref is not None:
            problem = check_reference(str(callable_ref))
            return [SpecError("options.callable", problem)] if problem else []
        problems: list[SpecError] = []
        if spec.options.get("durability", DEFAULT_DURABILITY) not in DURABILITY:
            problems.append(SpecError("options.durability", f"must be one of {', '.join(DURABILITY)}"))
        for index, node in enumerate(spec.nodes):
            problems.extend(SpecError(f"nodes.{index}.{where}", message) for where, message in _node_problems(node))
        targets = {edge.target for edge in spec.edges}
        for index, edge in enumerate(spec.edges):
            if edge.condition is not None:
                try:
                    parse_condition(edge.condition)
                except ExpressionError as exc:
                    problems.append(SpecError(f"edges.{index}.condition", str(exc)))
        if spec.nodes and all(node.id in targets for node in spec.nodes):
            problems.append(SpecError("edges", "every node has an incoming edge: the graph has no first node"))
        return problems

    # ---- running ---------------------------------------------------------------

    def run(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        problems = self.validate(spec)
        if problems:
            raise invalid_spec([(p.field, p.message) for p in problems])
        needs_checkpoints = any(node.type.value == "human_approval" for node in spec.nodes)
        if needs_checkpoints and not context.state_url:
            raise RunError(
                ErrorKind.CONFIGURATION,
                "a human approval needs checkpoints, and this worker has no runs' database (state_url)",
            )
        with self._checkpointer(context) as saver:
            graph, code_first = self._graph(spec, context, saver, dict(inputs))
            yield from self._stream(graph, code_first, spec, dict(inputs), context)

    def _checkpointer(self, context: RunContext) -> AbstractContextManager[Any]:
        if not context.state_url:
            from langgraph.checkpoint.memory import InMemorySaver

            return nullcontext(InMemorySaver())
        return _postgres_saver(context.state_url)

    def _graph(self, spec: WorkflowSpec, context: RunContext, saver: Any, inputs: dict[str, Any]) -> tuple[Any, bool]:
        callable_ref = spec.options.get("callable")
        if callable_ref is None:
            return _build(spec, context).compile(checkpointer=saver), False
        builder = load_callable(str(callable_ref), context.files_root)
        endpoint = _endpoint_or_none(context, spec.options.get("model"))
        offered: dict[str, Any] = {"endpoint": endpoint, "inputs": inputs}
        if endpoint is not None:
            offered.update(client=endpoint.openai_client(), model=endpoint.model)
        built = builder(**_accepted(builder, offered))
        if hasattr(built, "compile") and not hasattr(built, "stream"):
            built = built.compile(checkpointer=saver)
        if not hasattr(built, "stream"):
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"'{callable_ref}' returned {type(built).__name__}, not a LangGraph StateGraph or compiled graph",
            )
        return built, True

    def _stream(
        self, graph: Any, code_first: bool, spec: WorkflowSpec, inputs: dict[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        from langgraph.errors import GraphRecursionError
        from langgraph.types import Command

        config = {
            "configurable": {"thread_id": context.execution_id},
            "recursion_limit": int(spec.options.get("recursion_limit", 25)),
        }
        durability = str(spec.options.get("durability", DEFAULT_DURABILITY))
        payload: Any
        if context.resume is not None:
            payload = Command(resume=context.resume.get("answer"))
        elif context.attempt > 1 and _unfinished(graph, config):
            payload = None  # a retried attempt: go on from the last checkpoint
        else:
            payload = dict(inputs) if code_first else {"inputs": inputs, "values": {}, "steps": []}
        interrupted: list[Any] = []
        values: dict[str, Any] = {}
        mark, mark_time = METER.snapshot(), time.perf_counter()
        code_steps: list[dict[str, Any]] = []
        try:
            stream = graph.stream(payload, config, stream_mode=["updates", "values"], durability=durability)
            for mode, chunk in stream:
                if mode == "values":
                    values = dict(chunk)
                    continue
                for node, update in (chunk or {}).items():
                    if node == "__interrupt__":
                        interrupted.extend(update)
                        continue
                    if code_first:
                        step = _code_first_step(node, update, mark, mark_time)
                        mark, mark_time = METER.snapshot(), time.perf_counter()
                        code_steps.append(step)
                        yield RunEvent("step", {**step, "framework": self.name})
                        continue
                    for step in (update or {}).get("steps", []):
                        yield RunEvent("step", {**step, "framework": self.name})
        except GraphRecursionError as exc:
            raise RunError(
                ErrorKind.CONFIGURATION, f"the graph ran more than {config['recursion_limit']} steps: {exc}"
            ) from exc
        except RunError:
            raise
        except Exception as exc:
            raise _failure(exc) from exc
        steps = code_steps if code_first else list(values.get("steps") or [])
        usage = _total(steps)
        if interrupted:
            request = interrupted[0]
            asked = getattr(request, "value", request)
            node = asked.get("node", "") if isinstance(asked, dict) else ""
            outputs = {"steps": steps, "usage": usage, "framework": self.name, "waiting_for": asked}
            yield RunWaiting(node=node, request=asked if isinstance(asked, dict) else {"value": asked}, outputs=outputs)
            return
        if code_first:
            output: Any = values
        else:
            output = values.get("output", values.get("last"))
        outputs = {"output": output, "steps": steps, "usage": usage, "framework": self.name}
        if not code_first:
            outputs["values"] = values.get("values") or {}
        yield RunResult(outputs=outputs)


# ---- building the graph ----------------------------------------------------------


def _node_problems(node: Node) -> list[tuple[str, str]]:
    kind = node.type.value
    config = node.config
    if kind not in NODE_TYPES:
        return [("type", f"a langgraph workflow has no '{kind}' nodes (it has: {', '.join(NODE_TYPES)})")]
    problems: list[tuple[str, str]] = []
    if kind == "model":
        if not isinstance(config.get("prompt"), str) or not config["prompt"].strip():
            problems.append(("config.prompt", "a model node needs a prompt (a text; {name} inserts a value)"))
        for key in ("max_tokens",):
            if key in config and (not isinstance(config[key], int) or config[key] < 1):
                problems.append((f"config.{key}", "must be a positive integer"))
    elif kind == "tool":
        tool = config.get("tool")
        if not isinstance(tool, str) or not tool:
            problems.append(("config.tool", "a tool node needs 'tool': a built-in tool or 'module:function'"))
        elif (problem := tool_problem(tool)) is not None:
            problems.append(("config.tool", problem))
        if "args" in config and not isinstance(config["args"], dict):
            problems.append(("config.args", "must be an object of argument values"))
    elif kind == "code":
        has_callable, has_source = "callable" in config, "source" in config
        if has_callable == has_source:
            problems.append(("config", "a code node needs exactly one of 'callable' ('module:function') and 'source'"))
        elif has_callable and (problem := check_reference(str(config["callable"]))) is not None:
            problems.append(("config.callable", problem))
        elif has_source:
            problems.extend(_source_problems(config["source"]))
    elif kind == "human_approval" and "question" in config and not isinstance(config["question"], str):
        problems.append(("config.question", "must be a text"))
    return problems


def _source_problems(source: Any) -> list[tuple[str, str]]:
    if not isinstance(source, str):
        return [("config.source", "must be Python source defining run(values)")]
    try:
        compile(source, "<code node>", "exec")
    except SyntaxError as exc:
        return [("config.source", f"line {exc.lineno}: {exc.msg}")]
    if "def run(" not in source:
        return [("config.source", "must define run(values)")]
    return []


def _build(spec: WorkflowSpec, context: RunContext) -> Any:
    from langgraph.graph import END, START, StateGraph

    graph: Any = StateGraph(GraphState)
    for node in spec.nodes:
        graph.add_node(node.id, _node_function(node, spec, context))
    targets = {edge.target for edge in spec.edges}
    for node in spec.nodes:
        if node.id not in targets:
            graph.add_edge(START, node.id)
    by_source: dict[str, list[Any]] = {}
    for edge in spec.edges:
        by_source.setdefault(edge.source, []).append(edge)
    for node in spec.nodes:
        edges = by_source.get(node.id, [])
        if not edges:
            graph.add_edge(node.id, END)
        elif all(edge.condition is None for edge in edges):
            for edge in edges:
                graph.add_edge(node.id, edge.target)
        else:
            graph.add_conditional_edges(node.id, _router(edges, END), [*{e.target for e in edges}, END])
    return graph


def _router(edges: list[Any], end: str) -> Callable[[GraphState], Any]:
    conditioned = [(edge.target, parse_condition(edge.condition)) for edge in edges if edge.condition is not None]
    fallback = [edge.target for edge in edges if edge.condition is None]

    def route(state: GraphState) -> Any:
        names = _names(state)
        for target, tree in conditioned:
            try:
                if evaluate(tree, names):
                    return target
            except ExpressionError as exc:
                raise RunError(ErrorKind.CONFIGURATION, f"the condition to '{target}' failed: {exc}") from exc
        if not fallback:
            return end
        return fallback if len(fallback) > 1 else fallback[0]

    return route


def _node_function(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], dict[str, Any]]:
    kind = node.type.value
    work = _WORK[kind](node, spec, context)

    def run_node(state: GraphState) -> dict[str, Any]:
        mark, started = METER.snapshot(), time.perf_counter()
        output = work(state)
        spent = METER.snapshot() - mark
        step = {
            "node": node.id,
            "type": kind,
            "agent": node.label,
            "output": output,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            **spent.as_json(),
        }
        update: dict[str, Any] = {"values": {node.id: output}, "last": output, "steps": [step]}
        if kind == "output":
            update["output"] = output
        return update

    return run_node


def _input_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    return lambda state: dict(state.get("inputs") or {})


def _output_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    source = node.config.get("from")

    def output(state: GraphState) -> Any:
        if source is None:
            return state.get("last")
        return (state.get("values") or {}).get(str(source))

    return output


def _pass_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    return lambda state: state.get("last")


def _model_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    config = node.config
    endpoint = model_endpoint(context, config.get("model") or spec.options.get("model"))
    client = endpoint.openai_client()

    def call_model(state: GraphState) -> Any:
        try:
            prompt = render(str(config["prompt"]), _names(state))
            system = render(str(config["system"]), _names(state)) if config.get("system") else None
        except ExpressionError as exc:
            raise RunError(ErrorKind.INPUT, f"node '{node.id}': {exc}", node=node.id) from exc
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        try:
            reply = client.chat.completions.create(
                model=endpoint.model,
                messages=messages,
                max_tokens=int(config.get("max_tokens", DEFAULT_MAX_TOKENS)),
                temperature=float(config.get("temperature", 0.0)),
            )
        except Exception as exc:
            failure = model_failure(exc, endpoint) or RunError(ErrorKind.MODEL, f"{type(exc).__name__}: {exc}")
            failure.details["node"] = node.id
            raise failure from exc
        return (reply.choices[0].message.content or "").strip()

    return call_model


def _tool_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    reference = str(node.config["tool"])
    tool = load_tool(reference, context.files_root)
    arguments = node.config.get("args") or {}

    def call(state: GraphState) -> Any:
        names = _names(state)
        try:
            filled = {k: render(v, names) if isinstance(v, str) else v for k, v in arguments.items()}
        except ExpressionError as exc:
            raise RunError(ErrorKind.INPUT, f"node '{node.id}': {exc}", node=node.id) from exc
        return call_tool(reference, tool, filled)

    return call


def _code_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    if "callable" in node.config:
        function = load_callable(str(node.config["callable"]), context.files_root)
    else:
        namespace: dict[str, Any] = {}
        # the workflow's own code, run in the run's own isolated process
        exec(compile(str(node.config["source"]), f"<node {node.id}>", "exec"), namespace)  # noqa: S102  # nosec B102
        function = namespace["run"]

    def call(state: GraphState) -> Any:
        try:
            return function(_names(state))
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


def _approval_work(node: Node, spec: WorkflowSpec, context: RunContext) -> Callable[[GraphState], Any]:
    from langgraph.types import interrupt

    question = str(node.config.get("question", "Approve?"))

    def ask(state: GraphState) -> Any:
        try:
            asked = render(question, _names(state))
        except ExpressionError:
            asked = question
        return interrupt({"node": node.id, "question": asked, "last": state.get("last")})

    return ask


_WORK: dict[str, Callable[[Node, WorkflowSpec, RunContext], Callable[[GraphState], Any]]] = {
    "input": _input_work,
    "output": _output_work,
    "router": _pass_work,
    "condition": _pass_work,
    "model": _model_work,
    "tool": _tool_work,
    "code": _code_work,
    "human_approval": _approval_work,
}


# ---- helpers ------------------------------------------------------------------------


class _postgres_saver(AbstractContextManager[Any]):
    """A ``PostgresSaver`` on ``url`` with its tables created (``setup`` is idempotent)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._context: Any = None

    def __enter__(self) -> Any:
        from langgraph.checkpoint.postgres import PostgresSaver

        try:
            self._context = PostgresSaver.from_conn_string(self.url)
            saver = self._context.__enter__()
            if os.environ.get(PREPARED_ENV) != self.url:
                saver.setup()
        except Exception as exc:
            raise RunError(
                ErrorKind.INTERNAL, f"the runs' database cannot keep checkpoints: {exc}", retryable=True
            ) from exc
        return saver

    def __exit__(self, *exc_info: Any) -> None:
        if self._context is not None:
            self._context.__exit__(*exc_info)


def _unfinished(graph: Any, config: dict[str, Any]) -> bool:
    """True when this run's thread stopped part-way (a previous attempt was lost)."""
    try:
        state = graph.get_state(config)
    except ValueError:  # no checkpointer
        return False
    return bool(state.values) and bool(state.next) and not state.interrupts


def _endpoint_or_none(context: RunContext, name: Any) -> ModelEndpoint | None:
    try:
        return model_endpoint(context, str(name) if name else None)
    except RunError:
        return None


def _accepted(function: Callable[..., Any], offered: dict[str, Any]) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return offered
    return {name: value for name, value in offered.items() if name in parameters}


def _code_first_step(node: str, update: Any, mark: Usage, started: float) -> dict[str, Any]:
    spent = METER.snapshot() - mark
    return {
        "node": node,
        "type": "node",
        "agent": None,
        "output": update,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        **spent.as_json(),
    }


def _total(steps: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("model_calls", "prompt_tokens", "completion_tokens", "total_tokens")
    return {key: sum(int(step.get(key, 0)) for step in steps) for key in keys}


def _failure(exc: BaseException) -> RunError:
    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, RunError):
            return cause
    found = model_failure(exc, None)
    if found is not None:
        return found
    return RunError(ErrorKind.CODE, f"{type(exc).__name__}: {exc}", traceback=traceback.format_exception(exc)[-10:])
