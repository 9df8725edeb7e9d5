"""The CrewAI runtime: a crew of agents working through tasks (entry point ``orchestrator.runtimes: crewai``).

A spec describes the crew with nodes:

- ``agent`` nodes: ``config`` = ``role``, ``goal``, ``backstory`` (required), ``model`` (a model integration's
  name; else ``options.model``, else the organization's default model), ``tools`` (``module:function``
  references or built-in tool names such as ``calculator``), ``allow_delegation`` and ``max_iter``;
- ``task`` nodes, run in the order of the nodes: ``config`` = ``description`` (``{placeholders}`` are filled
  from the run's inputs), ``expected_output``, ``agent`` (the id of the agent node doing it; not needed in a
  hierarchical crew, whose manager delegates) and ``context`` (ids of earlier task nodes whose outputs the
  task receives). An edge from a task to a later task means the same as ``context``;
- ``input`` and ``output`` nodes may be there for the editor; the crew ignores them.

``options``: ``process`` (``sequential``, the default, or ``hierarchical``), ``model``, ``manager_model``
(the hierarchical manager's model), ``manager_max_iter``, ``max_tokens`` and ``temperature`` (for every
model call), ``tool_failure`` (``raise``, the default: a tool that raises fails the run with kind ``tool``;
``warn``: the agent reads the error and goes on), and ``callable`` for a code-first crew: a
``module:function`` (or ``notebook.ipynb:function``) that builds and returns a ``crewai.Crew``, called with
those of ``llm`` (a CrewAI LLM for the run's model), ``endpoint`` (the :class:`ModelEndpoint`) and
``inputs`` it accepts.

The crew runs in a thread; each task reports a ``step`` event as soon as it finishes (agent = the role
that did it, output = the task's raw output, with its latency and the tokens it spent), then the run
ends with the crew's final output and every task's output.
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
import json
import os
import queue
import re
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .checks import nonempty, positive_int, temperature_problems, tool_list_problems
from .code import check_reference, load_callable
from .models import METER, ModelEndpoint, Usage, model_endpoint, model_failure
from .runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, RunWaiting, invalid_spec
from .tools import load_tool
from .tracking import StepTracker

if TYPE_CHECKING:
    from .spec import SpecError, WorkflowSpec

NAME = "crewai"
PROCESSES = ("sequential", "hierarchical")
TOOL_FAILURES = ("raise", "warn")
#: an agent's default bound on its reasoning iterations (each tool call is one)
DEFAULT_MAX_ITER = 2
MAX_ITER_LIMIT = 50
AGENT_KEYS = frozenset({"role", "goal", "backstory", "model", "tools", "allow_delegation", "max_iter"})
TASK_KEYS = frozenset({"description", "expected_output", "agent", "context"})
OPTION_KEYS = frozenset(
    {"process", "model", "manager_model", "manager_max_iter", "max_tokens", "temperature", "tool_failure", "callable"}
)
#: the keyword arguments a code-first callable may take
CALLABLE_ARGUMENTS = ("llm", "endpoint", "inputs")
#: node types the crew ignores (they are there for the editor)
IGNORED_TYPES = frozenset({"input", "output"})
#: CrewAI's own placeholder syntax (``{topic}``), to check the inputs before the crew starts
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)}")
#: the environment CrewAI reads: no telemetry, no tracing, no prompt waiting for a person
QUIET_ENVIRONMENT = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "OTEL_SDK_DISABLED": "true",
}
#: what :meth:`CrewAIRuntime.preload` imports
PRELOADED = (
    "crewai",
    "crewai.tools",
    "crewai.tools.tool_failure",
    "crewai.llms.hooks.base",
    "crewai.llms.providers.openai.completion",
    "crewai.utilities.i18n",
)
#: how long the crew's thread is given to end after the run's consumer went away
_JOIN_SECONDS = 1.0


# ---- validation ----------------------------------------------------------------------------


def _option_problems(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in sorted(set(options) - OPTION_KEYS):
        problems.append(
            (f"options.{key}", f"unknown option (the crewai runtime knows: {', '.join(sorted(OPTION_KEYS))})")
        )
    process = options.get("process", "sequential")
    if process not in PROCESSES:
        problems.append(("options.process", f"unknown process {process!r}: use 'sequential' or 'hierarchical'"))
    for key in ("model", "manager_model"):
        if key in options and not nonempty(options[key]):
            problems.append((f"options.{key}", "must name a model integration (a non-empty string)"))
    if "manager_max_iter" in options and not positive_int(options["manager_max_iter"], MAX_ITER_LIMIT):
        problems.append(("options.manager_max_iter", f"must be an integer from 1 to {MAX_ITER_LIMIT}"))
    if "max_tokens" in options and not positive_int(options["max_tokens"], 1_000_000):
        problems.append(("options.max_tokens", "must be a positive integer"))
    problems.extend(temperature_problems(options))
    if options.get("tool_failure", "raise") not in TOOL_FAILURES:
        problems.append(("options.tool_failure", "must be 'raise' or 'warn'"))
    if "callable" in options:
        reference = options["callable"]
        problem = check_reference(reference) if isinstance(reference, str) else "must be a string"
        if problem:
            problems.append(("options.callable", f"{problem} (a function that builds and returns a crewai.Crew)"))
    return problems


def _agent_problems(index: int, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    where = f"nodes.{index}.config"
    problems: list[tuple[str, str]] = []
    for key in sorted(set(config) - AGENT_KEYS):
        problems.append((f"{where}.{key}", f"unknown agent setting (known: {', '.join(sorted(AGENT_KEYS))})"))
    for key in ("role", "goal", "backstory"):
        if not nonempty(config.get(key)):
            problems.append((f"{where}.{key}", f"an agent needs a {key} (a non-empty string)"))
    if "model" in config and not nonempty(config["model"]):
        problems.append((f"{where}.model", "must name a model integration (a non-empty string)"))
    if "allow_delegation" in config and not isinstance(config["allow_delegation"], bool):
        problems.append((f"{where}.allow_delegation", "must be true or false"))
    if "max_iter" in config and not positive_int(config["max_iter"], MAX_ITER_LIMIT):
        problems.append((f"{where}.max_iter", f"must be an integer from 1 to {MAX_ITER_LIMIT}"))
    problems.extend(tool_list_problems(where, config.get("tools", [])))
    return problems


def _task_problems(
    index: int, config: Mapping[str, Any], agents: set[str], earlier_tasks: set[str], hierarchical: bool
) -> list[tuple[str, str]]:
    where = f"nodes.{index}.config"
    problems: list[tuple[str, str]] = []
    for key in sorted(set(config) - TASK_KEYS):
        problems.append((f"{where}.{key}", f"unknown task setting (known: {', '.join(sorted(TASK_KEYS))})"))
    for key, what in (("description", "a description"), ("expected_output", "an expected_output")):
        if not nonempty(config.get(key)):
            problems.append((f"{where}.{key}", f"a task needs {what} (a non-empty string)"))
    agent = config.get("agent")
    if agent is None:
        if not hierarchical:
            problems.append((f"{where}.agent", "a task needs the id of the agent node that does it"))
    elif not isinstance(agent, str) or agent not in agents:
        known = ", ".join(sorted(agents)) or "none"
        problems.append((f"{where}.agent", f"no agent node {agent!r} (agent nodes: {known})"))
    context = config.get("context", [])
    if not isinstance(context, list):
        problems.append((f"{where}.context", "must be a list of task node ids"))
        return problems
    for position, name in enumerate(context):
        if not isinstance(name, str) or name not in earlier_tasks:
            problems.append(
                (f"{where}.context.{position}", f"{name!r} is no task node before this one (tasks run in node order)")
            )
    return problems


def spec_problems(spec: WorkflowSpec) -> list[tuple[str, str]]:
    """(field, message) for each problem keeping ``spec`` from running as a crew; fields relative to the spec."""
    options = spec.options
    problems = _option_problems(options)
    hierarchical = options.get("process") == "hierarchical"
    code_first = "callable" in options
    agents = {node.id for node in spec.nodes if node.type == "agent"}
    tasks: set[str] = set()
    order: dict[str, int] = {}
    for index, node in enumerate(spec.nodes):
        kind = str(node.type)
        if kind in IGNORED_TYPES:
            continue
        if code_first:
            problems.append(
                (f"nodes.{index}", "a code-first crew (options.callable) is built by its callable: it takes no nodes")
            )
        elif kind == "agent":
            problems.extend(_agent_problems(index, node.config))
        elif kind == "task":
            problems.extend(_task_problems(index, node.config, agents, set(tasks), hierarchical))
            tasks.add(node.id)
            order[node.id] = index
        else:
            problems.append((f"nodes.{index}.type", f"the crewai runtime runs 'agent' and 'task' nodes, not '{kind}'"))
    if code_first:
        return problems
    if not tasks:
        problems.append(("nodes", "a crew needs at least one 'task' node (or options.callable for a code-first crew)"))
    if hierarchical and not agents:
        problems.append(("nodes", "a hierarchical crew needs at least one 'agent' node for its manager to delegate to"))
    for index, edge in enumerate(spec.edges):
        if edge.source not in tasks or edge.target not in tasks:
            continue
        if edge.condition is not None:
            problems.append((f"edges.{index}.condition", "the crewai runtime does not support conditional edges"))
        if order[edge.source] >= order[edge.target]:
            problems.append(
                (
                    f"edges.{index}",
                    f"the task '{edge.target}' cannot receive the output of '{edge.source}', which runs after it "
                    "(tasks run in node order)",
                )
            )
    return problems


# ---- the run --------------------------------------------------------------------------------


@dataclass
class _Sink:
    """Where a run's finishing tasks report (read by :func:`_task_finished` in the crew's threads)."""

    tracker: StepTracker
    events: queue.Queue[tuple[str, Any]]
    chained: Callable[[Any], Any] | None = None
    finished: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SINK: contextvars.ContextVar[_Sink | None] = contextvars.ContextVar("orchestrator_crewai_sink", default=None)


def _task_finished(output: Any) -> Any:
    """CrewAI's task callback (a module-level function, as CrewAI wants): a ``step`` event for the task."""
    sink = _SINK.get()
    if sink is None:
        return None
    with sink.lock:
        node = str(getattr(output, "name", None) or "task")
        raw = str(getattr(output, "raw", "") or "")
        agent = str(getattr(output, "agent", "") or "") or None
        event = sink.tracker.step(node, "task", raw, agent=agent)
        sink.finished.append({"node": node, "agent": agent, "output": raw})
    sink.events.put(("step", event))
    if sink.chained is not None:
        return sink.chained(output)
    return None


def _usage_in(body: bytes) -> tuple[int, int] | None:
    """(prompt, completion) tokens of a completion's response body (JSON, or a stream's chunks), else None."""
    text = body.decode("utf-8", "replace")
    documents = [text]
    if text.lstrip().startswith("data:"):
        documents = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    found: tuple[int, int] | None = None
    for document in documents:
        try:
            usage = json.loads(document).get("usage")
        except (ValueError, AttributeError):
            continue
        if isinstance(usage, dict):
            found = (
                int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
                int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
            )
    return found


def _compatible_body(body: bytes) -> bytes | None:
    """``body`` with ``null`` assistant contents made ``""``, or None when it needs no change.

    CrewAI sends an assistant turn that called tools with ``"content": null`` (as OpenAI allows); some
    OpenAI-compatible servers (llama-cpp-python's) refuse that with a 500, which would end every crew whose
    agents use tools or delegate.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    messages = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(messages, list):
        return None
    changed = False
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant" and message.get("content") is None:
            message["content"] = ""
            changed = True
    return json.dumps(payload).encode() if changed else None


def _meter_interceptor() -> Any:
    """A CrewAI transport interceptor: counts each model call and its tokens in :data:`METER`, and fixes bodies.

    The client it hooks only calls the model (chat completions), so every answer that is no error counts.
    """
    import httpx
    from crewai.llms.hooks.base import BaseInterceptor

    def outbound(request: httpx.Request) -> httpx.Request:
        if request.method != "POST":
            return request
        body = _compatible_body(request.read())
        if body is None:
            return request
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        return httpx.Request(request.method, request.url, headers=headers, content=body, extensions=request.extensions)

    class Meter(BaseInterceptor[httpx.Request, httpx.Response]):
        def on_outbound(self, message: httpx.Request) -> httpx.Request:
            return outbound(message)

        def on_inbound(self, message: httpx.Response) -> httpx.Response:
            if message.status_code < 400:
                METER.add(*(_usage_in(message.read()) or (0, 0)))
            return message

        async def aon_outbound(self, message: httpx.Request) -> httpx.Request:
            return outbound(message)

        async def aon_inbound(self, message: httpx.Response) -> httpx.Response:
            if message.status_code < 400:
                METER.add(*(_usage_in(await message.aread()) or (0, 0)))
            return message

    return Meter()


def crewai_llm(endpoint: ModelEndpoint, options: Mapping[str, Any] | None = None) -> Any:
    """A ``crewai.LLM`` for ``endpoint`` whose calls and tokens :data:`METER` counts (no client retries)."""
    from crewai import LLM

    settings: dict[str, Any] = {}
    for key in ("max_tokens", "temperature"):
        if (options or {}).get(key) is not None:
            settings[key] = (options or {})[key]
    return LLM(
        model=f"openai/{endpoint.model}",
        base_url=endpoint.base_url,
        api_key=endpoint.key,
        max_retries=0,
        interceptor=_meter_interceptor(),
        **settings,
    )


def _quiet_environment(context: RunContext) -> dict[str, str | None]:
    """Turn CrewAI's telemetry and tracing off and keep its files in the run's directory; what to restore."""
    wanted = {**QUIET_ENVIRONMENT, "CREWAI_STORAGE_DIR": str(context.workdir / ".crewai")}
    previous = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    return previous


def _restore_environment(previous: Mapping[str, str | None]) -> None:
    for name, value in previous.items():
        if name not in QUIET_ENVIRONMENT:  # telemetry stays off for the process: CrewAI reads it once
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _missing_inputs(spec: WorkflowSpec, inputs: Mapping[str, Any]) -> RunError | None:
    """An ``input`` error naming the first placeholder no input fills, or None."""
    keys = {"agent": ("role", "goal", "backstory"), "task": ("description", "expected_output")}
    for node in spec.nodes:
        for key in keys.get(str(node.type), ()):
            for name in PLACEHOLDER.findall(str(node.config.get(key, ""))):
                if name not in inputs:
                    return RunError(
                        ErrorKind.INPUT,
                        f"the input '{name}' is missing: the {node.type} '{node.id}' uses {{{name}}} in its {key}",
                        node=node.id,
                        input=name,
                    )
    return None


class _Builder:
    """Builds the ``crewai.Crew`` of a spec: its LLMs (one per model integration), agents, tools and tasks."""

    def __init__(self, spec: WorkflowSpec, context: RunContext) -> None:
        self.spec = spec
        self.context = context
        self.options = spec.options
        self.endpoints: dict[str | None, ModelEndpoint] = {}
        self.llms: dict[str, Any] = {}

    def endpoint(self, name: str | None) -> ModelEndpoint:
        wanted = name or self.options.get("model") or None
        if wanted not in self.endpoints:
            self.endpoints[wanted] = model_endpoint(self.context, wanted)
        return self.endpoints[wanted]

    def llm(self, name: str | None) -> Any:
        endpoint = self.endpoint(name)
        if endpoint.integration not in self.llms:
            self.llms[endpoint.integration] = crewai_llm(endpoint, self.options)
        return self.llms[endpoint.integration]

    def tool(self, node: str, reference: str) -> Any:
        from crewai.tools import BaseTool, tool

        target: Any = load_tool(reference, self.context.files_root)
        if isinstance(target, BaseTool):
            return self.guarded(target.model_copy())
        name = getattr(target, "__name__", reference.rsplit(":", 1)[-1])
        if not (getattr(target, "__doc__", None) or "").strip():
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"the tool '{reference}' of the agent '{node}' has no docstring: CrewAI shows it to the model "
                "as the tool's description",
                node=node,
                tool=reference,
            )
        try:
            return self.guarded(tool(name)(target))
        except (TypeError, ValueError) as exc:
            raise RunError(
                ErrorKind.CONFIGURATION, f"the tool '{reference}' of the agent '{node}' is unusable: {exc}", node=node
            ) from exc

    def guarded(self, tool: Any) -> Any:
        """``tool``, failing the run when it fails (unless ``options.tool_failure`` is ``warn``).

        The policy is the tool's own, not the crew's: a model asking for a tool that does not exist, or a
        hierarchical manager fumbling its delegation tools, is told so and goes on.
        """
        from crewai.tools.tool_failure import ToolFailurePolicy

        if self.options.get("tool_failure", "raise") == "raise":
            tool.tool_failure_policy = ToolFailurePolicy.RAISE
        return tool

    def crew(self) -> Any:
        from crewai import Agent, Crew, Process, Task
        from crewai.tools.tool_failure import ToolFailurePolicy

        agents: dict[str, Any] = {}
        for node in self.spec.nodes:
            if node.type != "agent":
                continue
            config = node.config
            agents[node.id] = Agent(
                role=config["role"],
                goal=config["goal"],
                backstory=config["backstory"],
                llm=self.llm(config.get("model")),
                tools=[self.tool(node.id, reference) for reference in config.get("tools", [])],
                allow_delegation=bool(config.get("allow_delegation", False)),
                max_iter=int(config.get("max_iter", DEFAULT_MAX_ITER)),
                verbose=False,
            )
        receives: dict[str, list[str]] = {}
        for edge in self.spec.edges:
            receives.setdefault(edge.target, []).append(edge.source)
        tasks: dict[str, Any] = {}
        for node in self.spec.nodes:
            if node.type != "task":
                continue
            config = node.config
            sources = [*config.get("context", []), *receives.get(node.id, [])]
            context = [tasks[name] for name in dict.fromkeys(sources) if name in tasks]
            settings: dict[str, Any] = {"context": context} if context else {}
            if config.get("agent"):
                settings["agent"] = agents[config["agent"]]
            tasks[node.id] = Task(
                name=node.id, description=config["description"], expected_output=config["expected_output"], **settings
            )
        crew_settings: dict[str, Any] = {}
        if self.options.get("process") == "hierarchical":
            crew_settings = {"process": Process.hierarchical, "manager_agent": self.manager()}
        return Crew(
            agents=list(agents.values()),
            tasks=list(tasks.values()),
            tool_failure_policy=ToolFailurePolicy.WARN,
            verbose=False,
            tracing=False,
            memory=False,
            **crew_settings,
        )

    def manager(self) -> Any:
        """The hierarchical crew's manager: CrewAI's own manager persona, on the manager model, bounded."""
        from crewai import Agent
        from crewai.utilities.i18n import get_i18n

        i18n = get_i18n()
        return Agent(
            role=i18n.retrieve("hierarchical_manager_agent", "role"),
            goal=i18n.retrieve("hierarchical_manager_agent", "goal"),
            backstory=i18n.retrieve("hierarchical_manager_agent", "backstory"),
            llm=self.llm(self.options.get("manager_model")),
            allow_delegation=True,
            max_iter=int(self.options.get("manager_max_iter", DEFAULT_MAX_ITER)),
            verbose=False,
        )


def _code_first_crew(
    spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
) -> tuple[Any, ModelEndpoint | None]:
    """The crew a code-first spec's callable builds, and the endpoint handed to it (if it asked for one)."""
    from crewai import Crew

    reference = str(spec.options["callable"])
    build = load_callable(reference, context.files_root)
    try:
        parameters = inspect.signature(build).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    wanted = [name for name in CALLABLE_ARGUMENTS if takes_any or name in parameters]
    endpoint: ModelEndpoint | None = None
    arguments: dict[str, Any] = {}
    if "llm" in wanted or "endpoint" in wanted:
        endpoint = model_endpoint(context, spec.options.get("model") or None)
        if "llm" in wanted:
            arguments["llm"] = crewai_llm(endpoint, spec.options)
        if "endpoint" in wanted:
            arguments["endpoint"] = endpoint
    if "inputs" in wanted:
        arguments["inputs"] = dict(inputs)
    try:
        crew = build(**arguments)
    except RunError:
        raise
    except Exception as exc:
        raise _failure(exc, [endpoint] if endpoint else [], f"the callable '{reference}' raised") from exc
    if not isinstance(crew, Crew):
        raise RunError(
            ErrorKind.CONFIGURATION,
            f"the callable '{reference}' returned {type(crew).__name__}, not a crewai.Crew",
            callable=reference,
        )
    return crew, endpoint


def _failing_endpoint(exc: BaseException, endpoints: list[ModelEndpoint]) -> ModelEndpoint | None:
    """The endpoint whose URL the failed request went to (else the first one)."""
    current: BaseException | None = exc
    for _ in range(20):
        if current is None:
            break
        try:
            url = str(current.request.url)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - httpx raises RuntimeError when an error has no request
            url = ""
        for endpoint in endpoints:
            if url and url.startswith(endpoint.base_url):
                return endpoint
        current = current.__cause__ or current.__context__
    return endpoints[0] if endpoints else None


#: tool failures that are the model's mistakes (a tool that does not exist, arguments that do not fit)
_MODEL_TOOL_MISTAKES = frozenset({"invalid_input", "unknown_tool", "repeated_call"})


def _failure(exc: BaseException, endpoints: list[ModelEndpoint], what: str = "the crew failed") -> RunError:
    """The taxonomy's error for what a crew raised: model, tool, input, or the code's own failure."""
    from crewai.tools.tool_failure import ToolExecutionFailedError

    model = model_failure(exc, _failing_endpoint(exc, endpoints))
    if model is not None:
        return model
    if isinstance(exc, ToolExecutionFailedError):
        record = exc.record
        where = f" in the task '{record.task_name}'" if record.task_name else ""
        agent = f" (agent '{record.agent_role}')" if record.agent_role else ""
        if getattr(record.failure.reason, "value", record.failure.reason) in _MODEL_TOOL_MISTAKES:
            return RunError(
                ErrorKind.MODEL,
                f"the model called the tool '{record.tool_name}' wrongly{where}{agent}: "
                f"{record.failure.as_agent_message()}",
                tool=record.tool_name,
                node=record.task_name,
            )
        return RunError(
            ErrorKind.TOOL,
            f"the tool '{record.tool_name}' failed{where}{agent}: {record.failure.as_agent_message()}",
            tool=record.tool_name,
            node=record.task_name,
        )
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError) and message.startswith("Invalid response from LLM call"):
        return RunError(ErrorKind.MODEL, f"the model gave an empty answer: {message}", retryable=True)
    if isinstance(exc, ValueError) and "template variable" in message:
        return RunError(ErrorKind.INPUT, f"{what}: {message} (pass it in the run's inputs)")
    return RunError(
        ErrorKind.CODE,
        f"{what}: {type(exc).__name__}: {message}",
        traceback="".join(traceback.format_exception(exc)[-20:]),
    )


class CrewAIRuntime:
    """Runs crewai workflows: a crew from the spec's nodes, or one built by the spec's callable."""

    name = NAME
    capabilities: Mapping[str, bool] = {
        "streaming": True,
        "multi_agent": True,
        "tools": True,
        "checkpoints": False,
        "human_in_the_loop": False,
        "multi_modal": False,
        "gpu": False,
    }

    def preload(self) -> None:
        """Import CrewAI and the parts a run uses (a warm runner does this before its job; ~3 s saved per run).

        Telemetry and tracing are off first: CrewAI reads those settings when it is imported. Nothing here
        starts a thread or writes a file, so the warm process can fork.
        """
        os.environ.update(QUIET_ENVIRONMENT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CrewAI's import trips ImportWarning and its own deprecations
            for module in PRELOADED:
                importlib.import_module(module)

    def validate(self, spec: WorkflowSpec) -> list[SpecError]:
        """What keeps ``spec`` from running as a crew (fields relative to the spec, ``nodes.1.config.role``)."""
        from .spec import SpecError

        return [SpecError(where, message) for where, message in spec_problems(spec)]

    def run(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        problems = spec_problems(spec)
        if problems:
            raise invalid_spec(problems, "the crew's spec")
        previous = _quiet_environment(context)
        try:
            yield from self._run(spec, inputs, context)
        finally:
            _restore_environment(previous)

    def _run(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        try:
            import crewai  # noqa: F401
        except ImportError as exc:
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"CrewAI is not installed on this worker ({exc}): pip install 'orchestrator[crewai]'",
            ) from exc
        tracker = StepTracker(NAME)
        endpoints: list[ModelEndpoint] = []
        if "callable" in spec.options:
            crew, endpoint = _code_first_crew(spec, inputs, context)
            endpoints = [endpoint] if endpoint else []
            for index, task in enumerate(crew.tasks):
                task.name = task.name or f"task_{index}"  # a step's node: its task's name, else its place
        else:
            missing = _missing_inputs(spec, inputs)
            if missing is not None:
                raise missing
            builder = _Builder(spec, context)
            try:
                crew = builder.crew()
            except RunError:
                raise
            except Exception as exc:
                raise _failure(exc, list(builder.endpoints.values()), "CrewAI could not build the crew") from exc
            endpoints = list(builder.endpoints.values())

        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        sink = _Sink(tracker=tracker, events=events, chained=crew.task_callback)
        crew.task_callback = _task_finished

        def kickoff() -> None:
            _SINK.set(sink)
            try:
                events.put(("done", crew.kickoff(inputs=dict(inputs))))
            except BaseException as exc:  # noqa: BLE001 - handed to the run's thread, which maps it
                events.put(("error", exc))

        start = METER.snapshot()
        tracker.begin()
        thread = threading.Thread(target=kickoff, name=f"crewai-{context.execution_id}", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = events.get()
                if kind == "step":
                    yield value
                elif kind == "error":
                    raise _failure(value, endpoints) from value
                else:
                    yield self._result(tracker, sink, value, METER.snapshot() - start)
                    return
        finally:
            thread.join(timeout=_JOIN_SECONDS)

    @staticmethod
    def _result(tracker: StepTracker, sink: _Sink, output: Any, metered: Usage) -> RunResult:
        with sink.lock:
            tasks = list(sink.finished)
        final = str(getattr(output, "raw", "") or "")
        extra: dict[str, Any] = {"tasks": tasks}
        usage = getattr(output, "token_usage", None)
        requests = int(getattr(usage, "successful_requests", 0) or 0)
        if metered.model_calls == 0 and usage is not None and requests > 0:
            # the crew used models of its own (a code-first crew): CrewAI's own count is all there is
            prompt, completion = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
            extra["usage"] = Usage(requests, prompt, completion).as_json()
        return tracker.result(final, **extra)
