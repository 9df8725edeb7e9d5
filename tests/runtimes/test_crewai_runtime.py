"""The crewai runtime: spec validation, the run's events and result, error kinds, and real crews on the local model.

Unit tests drive real CrewAI crews with a scripted model (a ``BaseLLM`` answering from the test); the
integration tests run crews against the real local model (SmolLM2-135M), through a small recording proxy
where a test needs to see what the model received. The 135M model's wording is nonsense-ish: the tests
assert structure (steps, agents, tokens, what reached the prompts), never wording.
"""

from __future__ import annotations

import http.client
import http.server
import io
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from orchestrator_runtimes.crewai import CrewAIRuntime
from orchestrator_runtimes.crewai import models as crewai_models
from orchestrator_runtimes.models import METER
from orchestrator_runtimes.runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, Runtime
from orchestrator_runtimes.spec import WorkflowSpec

pytest.importorskip("crewai")

pytestmark = [
    # CrewAI warns about its own deprecated fields when it builds agents, and its package import trips ImportWarning
    pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai"),
    pytest.mark.filterwarnings("ignore::ImportWarning"),
]

MODEL = "test-model"
#: answers kept short so the 135M model is quick on two cores
SHORT = {"max_tokens": 24, "temperature": 0}


@pytest.fixture(autouse=True)
def _crewai_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """CrewAI writes its user data under HOME: a scratch one, as runs get their workdir."""
    home = tmp_path_factory.getbasetemp() / "crewai-home"
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))


def spec(nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None, **options: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate({"nodes": nodes, "edges": edges or [], "options": options})


def agent(node_id: str, role: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "agent",
        "config": {"role": role, "goal": f"Help as the {role}", "backstory": f"You are a {role}.", **config},
    }


def task(node_id: str, description: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "task",
        "config": {"description": description, "expected_output": "One short sentence.", **config},
    }


def two_agent_crew(**options: Any) -> WorkflowSpec:
    """A researcher, then a writer who receives the research (task 2 depends on task 1)."""
    return spec(
        [
            {"id": "in", "type": "input"},
            agent("researcher", "Researcher"),
            agent("writer", "Writer"),
            task("research", "Name one fact about {topic}.", agent="researcher"),
            task("write", "Write one sentence about {topic} from the research.", agent="writer", context=["research"]),
            {"id": "out", "type": "output"},
        ],
        **options,
    )


def collect(items: Iterator[Any]) -> tuple[list[RunEvent], RunResult]:
    events: list[RunEvent] = []
    for item in items:
        if isinstance(item, RunResult):
            return events, item
        events.append(item)
    raise AssertionError("the run ended without a result")


def run_error(items: Iterator[Any]) -> RunError:
    with pytest.raises(RunError) as caught:
        collect(items)
    return caught.value


# ---- a scripted CrewAI model ------------------------------------------------------------------------------


def _text(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    parts = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else str(message)
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


_SCRIPTED: type | None = None


def scripted_type() -> type:
    """A CrewAI ``BaseLLM`` whose answers come from ``reply(task_name, prompt_text, has_tools)``."""
    global _SCRIPTED
    if _SCRIPTED is None:
        from crewai.llms.base_llm import BaseLLM

        class ScriptedLLM(BaseLLM):
            reply: Any = None
            metered: bool = True
            prompts: list[dict[str, Any]] = []  # noqa: RUF012 - pydantic copies the default per instance

            def call(  # type: ignore[override]
                self,
                messages: Any,
                tools: Any = None,
                callbacks: Any = None,
                available_functions: Any = None,
                from_task: Any = None,
                from_agent: Any = None,
                response_model: Any = None,
            ) -> Any:
                name = getattr(from_task, "name", None)
                text = _text(messages)
                self.prompts.append({"task": name, "agent": getattr(from_agent, "role", None), "text": text})
                if self.metered:
                    METER.add(10, 5)  # as the metered HTTP client counts a real call
                else:  # a model of the crew's own: only CrewAI counts it
                    self._track_token_usage_internal({"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6})
                return self.reply(name, text, bool(tools))

            def supports_function_calling(self) -> bool:
                return True

        _SCRIPTED = ScriptedLLM
    return _SCRIPTED


def tool_call(name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``scripted(reply)``: the runtime's crews get this scripted model instead of one on an endpoint."""

    def install(reply: Callable[[str | None, str, bool], Any], metered: bool = True) -> Any:
        llm = scripted_type()(model=MODEL, reply=reply, metered=metered)
        monkeypatch.setattr(crewai_models, "crewai_llm", lambda endpoint, options=None: llm)
        return llm

    return install


@pytest.fixture
def fake_context(run_context: Callable[..., RunContext]) -> RunContext:
    """A context with a model integration that the scripted model stands in for."""
    integration = {"kind": "openai-compatible", "config": {"base_url": "http://127.0.0.1:9/v1", "model": MODEL}}
    return run_context(integrations={"model": integration}, default_model="model")


def write_module(root: Path, source: str) -> str:
    """A module of ``source`` under ``root`` (the run's files), with a fresh name; its name."""
    name = f"crew_code_{uuid.uuid4().hex[:8]}"
    (root / f"{name}.py").write_text(source)
    return name


# ---- validate ---------------------------------------------------------------------------------------------


def test_the_runtime_declares_itself() -> None:
    runtime = CrewAIRuntime()
    assert isinstance(runtime, Runtime)
    assert runtime.name == "crewai"
    assert runtime.capabilities["multi_agent"] is True
    assert runtime.capabilities["streaming"] is True
    assert runtime.capabilities["checkpoints"] is False


def test_a_valid_crew_has_no_problems() -> None:
    assert CrewAIRuntime().validate(two_agent_crew()) == []
    hierarchical = spec(
        [agent("a", "Analyst"), task("t", "Analyse {topic}.")],
        process="hierarchical",
        manager_model="local",
        manager_max_iter=1,
    )
    assert CrewAIRuntime().validate(hierarchical) == []
    with_tools = spec([agent("a", "Analyst", tools=["calculator", "tools_mod:lookup"]), task("t", "x", agent="a")])
    assert CrewAIRuntime().validate(with_tools) == []


def problems_of(workflow: WorkflowSpec) -> dict[str, str]:
    return {problem.field: problem.message for problem in CrewAIRuntime().validate(workflow)}


def test_validate_names_the_node_and_field_at_fault() -> None:
    found = problems_of(
        spec(
            [
                {"id": "a", "type": "agent", "config": {"role": "Analyst", "goal": ""}},
                agent("b", "Writer", max_iter=0, tools=["no reference", 3], colour="red"),
                task("t1", "First", agent="nobody", context=["t2"]),
                {"id": "t2", "type": "task", "config": {"agent": "a"}},
                {"id": "r", "type": "router", "config": {}},
            ],
            [{"source": "t2", "target": "t1"}],
        )
    )
    assert "goal" in found["nodes.0.config.goal"]
    assert "backstory" in found["nodes.0.config.backstory"]
    assert "nodes.0.config.role" not in found
    assert "nodes.1.config.max_iter" in found
    assert "nodes.1.config.tools.0" in found
    assert "string" in found["nodes.1.config.tools.1"]
    assert "unknown agent setting" in found["nodes.1.config.colour"]
    assert "nobody" in found["nodes.2.config.agent"]
    assert "'t2'" in found["nodes.2.config.context.0"]  # t2 comes after t1
    assert "description" in found["nodes.3.config.description"]
    assert "expected_output" in found["nodes.3.config.expected_output"]
    assert "router" in found["nodes.4.type"]
    assert "runs after it" in found["edges.0"]


def test_validate_the_crew_as_a_whole() -> None:
    assert "at least one 'task'" in problems_of(spec([agent("a", "Analyst")]))["nodes"]
    found = problems_of(spec([task("t", "Do it.")], process="parallel", callable_="x", model=""))
    assert "parallel" in found["options.process"]
    assert "unknown option" in found["options.callable_"]
    assert "options.model" in found
    assert "the id of the agent node" in found["nodes.0.config.agent"]  # sequential: a task needs its agent
    hierarchical = problems_of(spec([task("t", "Do it.")], process="hierarchical"))
    assert "nodes.0.config.agent" not in hierarchical
    assert "manager to delegate" in hierarchical["nodes"]
    bad_callable = problems_of(spec([], callable="not a reference"))
    assert "module:function" in bad_callable["options.callable"]
    code_first = spec([{"id": "in", "type": "input"}], callable="crews:build")
    assert CrewAIRuntime().validate(code_first) == []
    assert "nodes.0" in problems_of(spec([agent("a", "Analyst")], callable="crews:build"))
    conditional = problems_of(
        spec(
            [agent("a", "A"), task("t1", "x", agent="a"), task("t2", "y", agent="a")],
            [{"source": "t1", "target": "t2", "condition": "true"}],
        )
    )
    assert "edges.0.condition" in conditional


def test_a_run_of_an_invalid_spec_is_a_configuration_error(fake_context: RunContext) -> None:
    error = run_error(CrewAIRuntime().run(spec([agent("a", "Analyst")]), {}, fake_context))
    assert error.kind is ErrorKind.CONFIGURATION
    assert error.details["errors"][0]["field"] == "nodes"


# ---- runs with a scripted model ---------------------------------------------------------------------------


def test_each_task_is_a_step_with_its_agent_and_the_context_reaches_the_next(
    scripted: Callable[..., Any], fake_context: RunContext
) -> None:
    llm = scripted(lambda name, text, tools: f"{name} done: cats purr")
    events, result = collect(CrewAIRuntime().run(two_agent_crew(), {"topic": "cats"}, fake_context))

    steps = [event.data for event in events if event.kind == "step"]
    assert [step["node"] for step in steps] == ["research", "write"]
    assert [step["agent"] for step in steps] == ["Researcher", "Writer"]
    assert [step["type"] for step in steps] == ["task", "task"]
    assert steps[0]["output"] == "research done: cats purr"
    assert all(step["framework"] == "crewai" for step in steps)
    assert all(step["model_calls"] == 1 and step["total_tokens"] == 15 for step in steps)
    assert all(step["latency_ms"] >= 0 for step in steps)

    outputs = result.outputs
    assert outputs["framework"] == "crewai"
    assert outputs["output"] == "write done: cats purr"
    assert [step["node"] for step in outputs["steps"]] == ["research", "write"]
    assert outputs["usage"]["model_calls"] == 2
    assert outputs["usage"]["total_tokens"] == 30
    assert outputs["tasks"] == [
        {"node": "research", "agent": "Researcher", "output": "research done: cats purr"},
        {"node": "write", "agent": "Writer", "output": "write done: cats purr"},
    ]

    research, write = llm.prompts
    assert "Researcher" in research["text"]
    assert "Writer" not in research["text"]
    assert "Writer" in write["text"]
    assert "Name one fact about cats." in research["text"]  # the inputs fill the placeholders
    assert "research done: cats purr" in write["text"]  # the dependent task receives its context
    assert "research done" not in research["text"]


def test_an_edge_between_tasks_passes_the_output_as_context(
    scripted: Callable[..., Any], fake_context: RunContext
) -> None:
    llm = scripted(lambda name, text, tools: f"<{name} output>")
    workflow = spec(
        [agent("a", "Analyst"), task("first", "Count.", agent="a"), task("second", "Report.", agent="a")],
        [{"source": "first", "target": "second"}],
    )
    collect(CrewAIRuntime().run(workflow, {}, fake_context))
    first, second = llm.prompts
    assert "<first output>" in second["text"]
    assert "<first output>" not in first["text"]


def test_steps_stream_as_tasks_finish(scripted: Callable[..., Any], fake_context: RunContext) -> None:
    """The second task's model call waits until the consumer has seen the first task's step."""
    seen_first = threading.Event()
    waited: list[bool] = []

    def reply(name: str | None, text: str, tools: bool) -> str:
        if name == "write":
            waited.append(seen_first.wait(timeout=10))
        return f"{name} output"

    scripted(reply)
    for item in CrewAIRuntime().run(two_agent_crew(), {"topic": "cats"}, fake_context):
        if isinstance(item, RunEvent) and item.data["node"] == "research":
            seen_first.set()
    assert waited == [True]


def test_a_missing_input_is_an_input_error(scripted: Callable[..., Any], fake_context: RunContext) -> None:
    scripted(lambda name, text, tools: "never asked")
    error = run_error(CrewAIRuntime().run(two_agent_crew(), {"subject": "cats"}, fake_context))
    assert error.kind is ErrorKind.INPUT
    assert "topic" in error.message
    assert "research" in error.message


def test_a_tool_that_raises_fails_the_run_naming_the_tool(
    scripted: Callable[..., Any], fake_context: RunContext, tmp_path: Path
) -> None:
    module = write_module(
        tmp_path,
        'def explode(reason: str) -> str:\n    """Blow up."""\n    raise RuntimeError(f"kaboom: {reason}")\n',
    )
    scripted(lambda name, text, tools: tool_call("explode", {"reason": "test"}) if tools else "done")
    workflow = spec([agent("a", "Analyst", tools=[f"{module}:explode"]), task("t", "Use the tool.", agent="a")])
    error = run_error(CrewAIRuntime().run(workflow, {}, fake_context))
    assert error.kind is ErrorKind.TOOL
    assert "'explode'" in error.message
    assert "kaboom: test" in error.message
    assert error.details["tool"] == "explode"
    assert error.details["node"] == "t"


def test_a_builtin_tool_answers_the_agent(scripted: Callable[..., Any], fake_context: RunContext) -> None:
    def reply(name: str | None, text: str, tools: bool) -> Any:
        if "14" not in text:
            return tool_call("calculator", {"expression": "2 * (3 + 4)"})
        return "the answer is 14"

    llm = scripted(reply)
    workflow = spec([agent("a", "Analyst", tools=["calculator"]), task("t", "Compute.", agent="a")])
    _, result = collect(CrewAIRuntime().run(workflow, {}, fake_context))
    assert result.outputs["output"] == "the answer is 14"
    assert len(llm.prompts) == 2
    assert "14" in llm.prompts[1]["text"]  # the tool's result went back to the model


def test_with_tool_failure_warn_the_agent_reads_the_error(
    scripted: Callable[..., Any], fake_context: RunContext, tmp_path: Path
) -> None:
    module = write_module(tmp_path, 'def explode() -> str:\n    """Blow up."""\n    raise RuntimeError("kaboom")\n')

    def reply(name: str | None, text: str, tools: bool) -> Any:
        return "recovered" if "kaboom" in text else tool_call("explode", {})

    scripted(reply)
    workflow = spec(
        [agent("a", "Analyst", tools=[f"{module}:explode"]), task("t", "Use the tool.", agent="a")],
        tool_failure="warn",
    )
    _, result = collect(CrewAIRuntime().run(workflow, {}, fake_context))
    assert result.outputs["output"] == "recovered"


def test_a_hierarchical_crew_is_run_by_its_manager(scripted: Callable[..., Any], fake_context: RunContext) -> None:
    """The manager delegates to a coworker by role, reads the coworker's answer, and ends the task."""

    def reply(name: str | None, text: str, tools: bool) -> Any:
        if "You are Analyst" in text:
            return "the coworker's analysis"
        if tools and "the coworker's analysis" not in text:
            delegation = {"task": "Analyse the plan", "context": "A note about tea", "coworker": "Analyst"}
            return tool_call("delegate_work_to_coworker", delegation)
        return f"{name} managed"

    llm = scripted(reply)
    workflow = spec(
        [agent("a", "Analyst"), agent("w", "Writer"), task("t1", "Plan."), task("t2", "Write.", context=["t1"])],
        process="hierarchical",
        manager_max_iter=3,
    )
    events, result = collect(CrewAIRuntime().run(workflow, {}, fake_context))
    steps = [event.data for event in events]
    assert [step["node"] for step in steps] == ["t1", "t2"]
    assert {step["agent"] for step in steps} == {"Crew Manager"}
    assert result.outputs["output"] == "t2 managed"
    manager = [prompt for prompt in llm.prompts if "You are Crew Manager" in prompt["text"]]
    coworker = [prompt for prompt in llm.prompts if "You are Analyst" in prompt["text"]]
    assert coworker
    assert "Analyse the plan" in coworker[0]["text"]
    assert any("the coworker's analysis" in prompt["text"] for prompt in manager)  # and its answer came back
    assert "Writer" not in " ".join(prompt["text"] for prompt in coworker)


def test_a_code_first_crew(scripted: Callable[..., Any], fake_context: RunContext, tmp_path: Path) -> None:
    """The callable gets the run's LLM and inputs; the crew's placeholders are filled; unnamed tasks get a place."""
    module = write_module(
        tmp_path,
        "from crewai import Agent, Crew, Task\n\n"
        "def build(llm, inputs):\n"
        "    poet = Agent(role='Poet', goal='Write', backstory='A poet.', llm=llm, max_iter=1)\n"
        "    line = Task(name='poem', description=f\"A line about {inputs['topic']}\", expected_output='A line',\n"
        "                agent=poet)\n"
        "    title = Task(description='A title for the {topic} poem', expected_output='A title', agent=poet)\n"
        "    return Crew(agents=[poet], tasks=[line, title])\n",
    )
    llm = scripted(lambda name, text, tools: f"roses for {name}")
    workflow = spec([], callable=f"{module}:build")
    events, result = collect(CrewAIRuntime().run(workflow, {"topic": "the sea"}, fake_context))
    assert [(event.data["node"], event.data["agent"]) for event in events] == [("poem", "Poet"), ("task_1", "Poet")]
    assert result.outputs["output"] == "roses for task_1"
    assert "A line about the sea" in llm.prompts[0]["text"]
    assert "A title for the the sea poem" in llm.prompts[1]["text"]  # CrewAI filled the placeholder
    assert result.outputs["usage"]["model_calls"] == 2


def test_a_code_first_crew_on_models_of_its_own_reports_crewai_usage(
    scripted: Callable[..., Any], fake_context: RunContext, tmp_path: Path
) -> None:
    module = write_module(
        tmp_path,
        "from crewai import Agent, Crew, Task\n\n"
        "def build(llm):\n"
        "    poet = Agent(role='Poet', goal='Write', backstory='A poet.', llm=llm, max_iter=1)\n"
        "    return Crew(agents=[poet], tasks=[Task(description='A line', expected_output='A line', agent=poet)])\n",
    )
    scripted(lambda name, text, tools: "roses", metered=False)
    _, result = collect(CrewAIRuntime().run(spec([], callable=f"{module}:build"), {}, fake_context))
    assert result.outputs["usage"] == {"model_calls": 1, "prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}


def test_code_first_failures(fake_context: RunContext, tmp_path: Path) -> None:
    module = write_module(
        tmp_path,
        "def not_a_crew():\n    return 42\n\ndef broken(inputs):\n    raise KeyError('missing setting')\n",
    )
    error = run_error(CrewAIRuntime().run(spec([], callable=f"{module}:not_a_crew"), {}, fake_context))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "int" in error.message
    assert "crewai.Crew" in error.message
    error = run_error(CrewAIRuntime().run(spec([], callable=f"{module}:broken"), {}, fake_context))
    assert error.kind is ErrorKind.CODE
    assert "missing setting" in error.message
    assert "broken" in error.message
    error = run_error(CrewAIRuntime().run(spec([], callable=f"{module}:absent"), {}, fake_context))
    assert error.kind is ErrorKind.CONFIGURATION


def test_what_else_fails_inside_the_crew_is_a_code_error(
    scripted: Callable[..., Any], fake_context: RunContext
) -> None:
    def reply(name: str | None, text: str, tools: bool) -> str:
        raise RuntimeError("the crew's own machinery broke")

    scripted(reply)
    error = run_error(CrewAIRuntime().run(two_agent_crew(), {"topic": "cats"}, fake_context))
    assert error.kind is ErrorKind.CODE
    assert "the crew's own machinery broke" in error.message
    assert "RuntimeError" in error.details["traceback"]


def test_an_empty_answer_is_a_model_error(scripted: Callable[..., Any], fake_context: RunContext) -> None:
    scripted(lambda name, text, tools: "")
    error = run_error(CrewAIRuntime().run(two_agent_crew(), {"topic": "cats"}, fake_context))
    assert error.kind is ErrorKind.MODEL
    assert "empty" in error.message


def test_a_missing_model_integration_is_a_configuration_error(run_context: Callable[..., RunContext]) -> None:
    error = run_error(CrewAIRuntime().run(two_agent_crew(), {"topic": "cats"}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "model integration" in error.message
    named = two_agent_crew(model="team-model")
    error = run_error(CrewAIRuntime().run(named, {"topic": "cats"}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "team-model" in error.message


def test_the_run_keeps_crewai_quiet_and_in_its_workdir(
    scripted: Callable[..., Any], fake_context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, str | None] = {}

    def reply(name: str | None, text: str, tools: bool) -> str:
        for variable in (
            "CREWAI_DISABLE_TELEMETRY",
            "CREWAI_TRACING_ENABLED",
            "OTEL_SDK_DISABLED",
            "CREWAI_STORAGE_DIR",
        ):
            seen[variable] = os.environ.get(variable)
        return "ok"

    contacted: list[Any] = []
    real_connect, real_lookup = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> Any:
        contacted.append(address)
        return real_connect(sock, address)

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        contacted.append(host)
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    monkeypatch.delenv("CREWAI_STORAGE_DIR", raising=False)
    scripted(reply)
    collect(CrewAIRuntime().run(spec([agent("a", "A"), task("t", "x", agent="a")]), {}, fake_context))
    assert contacted == []  # no telemetry, no tracing, no lookup of anything (the scripted model is in-process)
    assert seen["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert seen["CREWAI_TRACING_ENABLED"] == "false"
    assert seen["OTEL_SDK_DISABLED"] == "true"
    assert seen["CREWAI_STORAGE_DIR"] == str(fake_context.workdir / ".crewai")
    assert "CREWAI_STORAGE_DIR" not in os.environ  # put back after the run
    assert list((fake_context.workdir / ".crewai").iterdir())  # CrewAI's files went to the run's directory


def test_preload_imports_crewai_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for variable in CrewAIRuntime.quiet_environment:
        monkeypatch.delenv(variable, raising=False)
    CrewAIRuntime().preload()
    assert all(module in sys.modules for module in CrewAIRuntime.preloaded)
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"


def test_a_crew_through_the_runner_protocol(
    scripted: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's runner finds the runtime by its entry point and streams its steps, then the result."""
    from orchestrator_runtimes.runner import run_job

    scripted(lambda name, text, tools: f"{name} ok")
    monkeypatch.chdir(tmp_path)
    channel = io.StringIO()
    job = {
        "framework": "crewai",
        "spec": two_agent_crew().model_dump(mode="json"),
        "inputs": {"topic": "cats"},
        "execution_id": "run-1",
        "integrations": {"model": {"kind": "openai-compatible", "config": {"base_url": "http://x/v1", "model": MODEL}}},
        "default_model": "model",
    }
    assert run_job(job, channel) == 0
    lines = [json.loads(line) for line in channel.getvalue().splitlines()]
    assert [line["data"]["node"] for line in lines[:-1]] == ["research", "write"]
    assert lines[-1]["result"]["outputs"]["output"] == "write ok"
    bad = {**job, "spec": spec([agent("a", "A")]).model_dump(mode="json")}
    channel = io.StringIO()
    assert run_job(bad, channel) == 1
    error = json.loads(channel.getvalue())["error"]
    assert error["kind"] == "configuration"
    assert "task" in error["message"]


def test_the_metering_interceptor_counts_tokens() -> None:
    import httpx

    interceptor = crewai_models.meter_interceptor()
    before = METER.snapshot()
    body = json.dumps({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}).encode()
    interceptor.on_inbound(httpx.Response(200, content=body))
    interceptor.on_inbound(httpx.Response(500, content=b"{}"))
    stream = b'data: {"choices": []}\n\ndata: {"usage": {"prompt_tokens": 2, "completion_tokens": 1}}\n\ndata: [DONE]\n'
    interceptor.on_inbound(httpx.Response(200, content=stream))
    spent = METER.snapshot() - before
    assert (spent.model_calls, spent.prompt_tokens, spent.completion_tokens) == (2, 9, 4)


# ---- the real local model ---------------------------------------------------------------------------------


class RecordingProxy(http.server.ThreadingHTTPServer):
    """Forwards POSTs to the local model, keeping each request's JSON body (``rewrite`` may change it first)."""

    daemon_threads = True

    def __init__(self, upstream: str, rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.rewrite = rewrite
        self.bodies: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.upstream.path}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: RecordingProxy

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if self.server.rewrite is not None:
            body = self.server.rewrite(body)
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=120)
        upstream.request("POST", self.path, json.dumps(body), {"Content-Type": "application/json"})
        reply = upstream.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def proxy(local_model: dict[str, Any]) -> Iterator[Callable[..., RecordingProxy]]:
    started: list[RecordingProxy] = []

    def start(rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> RecordingProxy:
        server = RecordingProxy(local_model["config"]["base_url"], rewrite)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def through(server: RecordingProxy, local_model: dict[str, Any]) -> dict[str, Any]:
    return {**local_model, "config": {**local_model["config"], "base_url": server.base_url}}


def system_and_user(body: dict[str, Any]) -> tuple[str, str]:
    messages = body["messages"]
    system = " ".join(str(m.get("content")) for m in messages if m["role"] == "system")
    user = " ".join(str(m.get("content")) for m in messages if m["role"] == "user")
    return system, user


def test_a_two_agent_crew_on_the_local_model(
    local_model: dict[str, Any], proxy: Callable[..., RecordingProxy], run_context: Callable[..., RunContext]
) -> None:
    recorder = proxy()
    context = run_context(integrations={"local": through(recorder, local_model)}, default_model="local")
    events, result = collect(CrewAIRuntime().run(two_agent_crew(**SHORT), {"topic": "cats"}, context))

    steps = [event.data for event in events if event.kind == "step"]
    assert [(step["node"], step["agent"]) for step in steps] == [("research", "Researcher"), ("write", "Writer")]
    assert all(step["model_calls"] >= 1 and step["total_tokens"] > 0 for step in steps)
    assert result.outputs["usage"]["total_tokens"] == sum(step["total_tokens"] for step in steps)
    assert result.outputs["output"] == steps[1]["output"]

    prompts = [system_and_user(body) for body in recorder.bodies]
    assert all(body["model"] == local_model["config"]["model"] for body in recorder.bodies)
    assert all(body["max_tokens"] == SHORT["max_tokens"] for body in recorder.bodies)
    researcher = [user for system, user in prompts if "Researcher" in system]
    writer = [user for system, user in prompts if "Writer" in system]
    assert researcher
    assert writer
    assert all("cats" in user for user in researcher)
    research_output = steps[0]["output"].strip()
    assert research_output
    assert all(research_output in user for user in writer)


def test_a_hierarchical_crew_on_the_local_model_ends(
    local_model: dict[str, Any], proxy: Callable[..., RecordingProxy], run_context: Callable[..., RunContext]
) -> None:
    """The manager runs on options.manager_model, and its low max_iter bounds the model calls it makes."""
    boss = proxy()
    workflow = spec(
        [agent("analyst", "Analyst"), agent("writer", "Writer"), task("plan", "Plan a note about {topic}.")],
        process="hierarchical",
        manager_model="boss",
        manager_max_iter=1,
        **SHORT,
    )
    integrations = {"local": local_model, "boss": through(boss, local_model)}
    context = run_context(integrations=integrations, default_model="local")
    events, result = collect(CrewAIRuntime().run(workflow, {"topic": "tea"}, context))
    assert [(event.data["node"], event.data["agent"]) for event in events] == [("plan", "Crew Manager")]
    assert result.outputs["usage"]["total_tokens"] > 0
    assert boss.bodies
    assert all("Crew Manager" in system_and_user(body)[0] for body in boss.bodies)
    assert all(body["tools"] for body in boss.bodies[:1])  # the manager is offered its delegation tools
    # one decision, then the answer CrewAI forces at max_iter: whatever the model does, the crew stops
    assert len(boss.bodies) <= 3
    assert result.outputs["usage"]["model_calls"] <= 3 + 2 * 2  # the manager's and a coworker's (max_iter 2)


def test_an_unreachable_model_is_a_model_error(run_context: Callable[..., RunContext]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    down = {"kind": "openai-compatible", "config": {"base_url": f"http://127.0.0.1:{port}/v1", "model": MODEL}}
    context = run_context(integrations={"down": down}, default_model="down")
    error = run_error(CrewAIRuntime().run(two_agent_crew(), {"topic": "cats"}, context))
    assert error.kind is ErrorKind.MODEL
    assert f"127.0.0.1:{port}" in error.message
    assert "'down'" in error.message
    assert error.retryable


def test_a_tool_that_raises_on_the_local_model(
    local_model: dict[str, Any],
    proxy: Callable[..., RecordingProxy],
    run_context: Callable[..., RunContext],
    tmp_path: Path,
) -> None:
    module = write_module(
        tmp_path, 'def explode() -> str:\n    """Look up the answer."""\n    raise RuntimeError("kaboom")\n'
    )

    def force_the_tool(body: dict[str, Any]) -> dict[str, Any]:
        # the 135M model rarely picks a tool by itself: make it call this one
        if body.get("tools"):
            body["tool_choice"] = {"type": "function", "function": {"name": "explode"}}
        return body

    recorder = proxy(force_the_tool)
    context = run_context(integrations={"local": through(recorder, local_model)}, default_model="local")
    workflow = spec(
        [agent("a", "Analyst", tools=[f"{module}:explode"]), task("look", "Look up the answer.", agent="a")], **SHORT
    )
    error = run_error(CrewAIRuntime().run(workflow, {}, context))
    assert error.kind is ErrorKind.TOOL
    assert "'explode'" in error.message
    assert "kaboom" in error.message
    assert error.details["node"] == "look"
    assert any(tool["function"]["name"] == "explode" for tool in recorder.bodies[0]["tools"])
