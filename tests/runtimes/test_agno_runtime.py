"""The Agno runtime: spec checks and run structure with fake Agno models, then real runs on the local model.

The fake models (a subclass of Agno's ``Model``) answer from a script, so the hooks that turn delegations,
member runs and tool failures into steps and error kinds are checked without a model server. The real runs
use SmolLM2-135M-Instruct (``local_model``) and the runs' database (``state_url``): a team whose leader
really delegates, a pgvector knowledge lookup, memory kept across two runs, and the error kinds. The tiny
model's wording is never asserted on: only what ran, in which order, and what it cost.
"""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agno.models.base import Model
from agno.models.response import ModelResponse
from orchestrator_runtimes.agno import AgnoRuntime
from orchestrator_runtimes.agno import models as agno_models
from orchestrator_runtimes.agno.build import sqlalchemy_url
from orchestrator_runtimes.agno.models import Delegation as _Delegation
from orchestrator_runtimes.agno.models import pooled as _pooled
from orchestrator_runtimes.agno.models import repair_arguments as _repair_arguments
from orchestrator_runtimes.agno.spec import find_entry
from orchestrator_runtimes.models import ModelEndpoint
from orchestrator_runtimes.runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, Runtime
from orchestrator_runtimes.spec import WorkflowSpec

MAX_TOKENS = 32
TEAM_SPEC: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "writer", "type": "agent", "config": {"name": "Writer", "role": "Writes one short sentence."}},
        # route: the leader delegates and the member's answer is the team's, one model call fewer than coordinate
        # (whose leader answers itself: the scripted team test below and notebooks/agno_team.ipynb run that one)
        {"id": "lead", "type": "team", "config": {"name": "Lead", "members": ["writer"], "mode": "route"}},
    ],
    "options": {"max_tokens": MAX_TOKENS},
}


def spec(data: dict[str, Any]) -> WorkflowSpec:
    return WorkflowSpec.model_validate(data)


def collect(items: Iterator[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The step events' data and the result's outputs of a run."""
    steps: list[dict[str, Any]] = []
    outputs: dict[str, Any] | None = None
    for item in items:
        if isinstance(item, RunEvent):
            assert item.kind == "step"
            steps.append(item.data)
        else:
            assert isinstance(item, RunResult)
            outputs = item.outputs
    assert outputs is not None, "the run gave no result"
    return steps, outputs


def fails(items: Iterator[Any]) -> RunError:
    with pytest.raises(RunError) as caught:
        list(items)
    return caught.value


def fields(problems: list[Any]) -> list[str]:
    return [problem.field for problem in problems]


# ---- fake Agno models ---------------------------------------------------------------------------


@dataclass
class ScriptedModel(Model):
    """An Agno model answering from a script: strings are answers, dicts are tool calls."""

    id: str = "scripted"
    name: str = "Scripted"
    provider: str = "Scripted"
    script: list[Any] = field(default_factory=list)
    seen_tools: list[list[str]] = field(default_factory=list)

    def _next(self, tools: list[dict[str, Any]] | None) -> ModelResponse:
        self.seen_tools.append([str((tool.get("function") or {}).get("name")) for tool in tools or []])
        item = self.script.pop(0) if self.script else "done"
        if isinstance(item, dict):
            call = {"id": f"call_{len(self.seen_tools)}", "type": "function"}
            call["function"] = {"name": item["name"], "arguments": json.dumps(item["arguments"])}
            return ModelResponse(role="assistant", content="", tool_calls=[call])
        return ModelResponse(role="assistant", content=item)

    def invoke(self, *args: Any, tools: Any = None, **kwargs: Any) -> ModelResponse:
        return self._next(tools)

    async def ainvoke(self, *args: Any, tools: Any = None, **kwargs: Any) -> ModelResponse:
        return self._next(tools)

    def invoke_stream(self, *args: Any, tools: Any = None, **kwargs: Any) -> Iterator[ModelResponse]:
        yield self._next(tools)

    async def ainvoke_stream(self, *args: Any, tools: Any = None, **kwargs: Any) -> Any:
        yield self._next(tools)

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return response  # type: ignore[no-any-return]


def fake_integrations(*names: str) -> dict[str, dict[str, Any]]:
    return {
        name: {"kind": "openai-compatible", "config": {"base_url": f"http://{name}.invalid/v1", "model": name}}
        for name in names
    }


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, list[Any]]], None]:
    """``scripted({integration: script})``: each node's model answers from its integration's script."""

    def install(scripts: dict[str, list[Any]]) -> None:
        def fake_model(endpoint: ModelEndpoint, options: Any = None, **_: Any) -> ScriptedModel:
            return ScriptedModel(script=list(scripts[endpoint.integration]))

        monkeypatch.setattr(agno_models, "agno_model", fake_model)

    return install


# ---- the spec -----------------------------------------------------------------------------------


def test_a_runtime_with_its_capabilities() -> None:
    runtime = AgnoRuntime()
    assert isinstance(runtime, Runtime)
    assert runtime.name == "agno"
    for capability, value in {
        "streaming": True,
        "multi_agent": True,
        "tools": True,
        "checkpoints": False,
        "human_in_the_loop": False,
        "multi_modal": True,
        "gpu": False,
    }.items():
        assert runtime.capabilities[capability] is value


def test_a_team_with_knowledge_is_valid() -> None:
    workflow = spec(
        {
            "nodes": [
                {"id": "in", "type": "input"},
                {
                    "id": "geo",
                    "type": "agent",
                    "config": {"name": "Geo", "instructions": ["Be brief."], "knowledge": "facts", "memory": "history"},
                },
                {"id": "calc", "type": "agent", "config": {"name": "Calc", "tools": ["calculator", "pkg.mod:fn"]}},
                {"id": "lead", "type": "team", "config": {"name": "Lead", "members": ["geo", "calc"], "mode": "route"}},
                {"id": "facts", "type": "knowledge", "config": {"documents": ["a", {"name": "b", "content": "B"}]}},
                {"id": "out", "type": "output"},
            ],
            "options": {"max_tokens": 64, "temperature": 0},
        }
    )
    assert AgnoRuntime().validate(workflow) == []
    assert find_entry(workflow) == ("lead", None)


@pytest.mark.parametrize(
    ("nodes", "options", "where"),
    [
        ([{"id": "a", "type": "agent", "config": {"role": "no name"}}], {}, "nodes.0.config.name"),
        (
            [
                {"id": "a", "type": "agent", "config": {"name": "A"}},
                {"id": "t", "type": "team", "config": {"name": "T", "members": ["ghost"]}},
            ],
            {},
            "nodes.1.config.members.0",
        ),
        (
            [
                {"id": "a", "type": "agent", "config": {"name": "A"}},
                {"id": "t", "type": "team", "config": {"name": "T", "members": []}},
            ],
            {},
            "nodes.1.config.members",
        ),
        (
            [{"id": "a", "type": "agent", "config": {"name": "A", "knowledge": "nowhere"}}],
            {},
            "nodes.0.config.knowledge",
        ),
        (
            [
                {"id": "a", "type": "agent", "config": {"name": "A", "knowledge": "k"}},
                {"id": "k", "type": "knowledge", "config": {"table": "kb"}},
            ],
            {},
            "nodes.1.config.documents",
        ),
        ([{"id": "k", "type": "knowledge", "config": {"documents": ["x"]}}], {}, "nodes"),
        ([], {"callable": "not a reference"}, "options.callable"),
        ([{"id": "a", "type": "agent", "config": {"name": "A", "tools": ["abacus"]}}], {}, "nodes.0.config.tools.0"),
        ([{"id": "m", "type": "model", "config": {}}], {}, "nodes.0.type"),
        (
            [
                {"id": "a", "type": "agent", "config": {"name": "A"}},
                {"id": "t", "type": "team", "config": {"name": "T", "members": ["a"], "mode": "vote"}},
            ],
            {},
            "nodes.1.config.mode",
        ),
        (
            [
                {"id": "a", "type": "agent", "config": {"name": "A"}},
                {"id": "t1", "type": "team", "config": {"name": "T1", "members": ["a"]}},
                {"id": "t2", "type": "team", "config": {"name": "T2", "members": ["a"]}},
            ],
            {},
            "options.entry",
        ),
        (
            [
                {"id": "a", "type": "agent", "config": {"name": "A"}},
                {"id": "t1", "type": "team", "config": {"name": "T1", "members": ["a", "t2"]}},
                {"id": "t2", "type": "team", "config": {"name": "T2", "members": ["t1"]}},
            ],
            {},
            "nodes.1.config.members",
        ),
        ([{"id": "a", "type": "agent", "config": {"name": "A"}}], {"entry": "b"}, "options.entry"),
        ([{"id": "a", "type": "agent", "config": {"name": "A"}}], {"speed": "max"}, "options.speed"),
        ([{"id": "a", "type": "agent", "config": {"name": "A", "memory": "forever"}}], {}, "nodes.0.config.memory"),
    ],
    ids=[
        "missing-name",
        "member-names-no-agent",
        "no-members",
        "knowledge-names-no-node",
        "documents-missing",
        "no-agent",
        "bad-callable",
        "unknown-tool",
        "foreign-node-type",
        "unknown-mode",
        "two-top-teams",
        "team-cycle",
        "entry-names-nothing",
        "unknown-option",
        "unknown-memory",
    ],
)
def test_validate_names_the_node_at_fault(nodes: list[dict[str, Any]], options: dict[str, Any], where: str) -> None:
    data: dict[str, Any] = {"nodes": nodes or [{"id": "in", "type": "input"}], "options": options}
    assert where in fields(AgnoRuntime().validate(spec(data)))


def test_the_guides_spec_is_valid() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "frameworks" / "agno.md").read_text()
    blocks = re.findall(r"^```json\n(.*?)^```", guide, re.MULTILINE | re.DOTALL)
    assert blocks, "docs/frameworks/agno.md has no json spec"
    for block in blocks:
        assert AgnoRuntime().validate(spec(json.loads(block))) == []


def test_an_invalid_spec_does_not_run(run_context: Callable[..., RunContext]) -> None:
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {}}]})
    error = fails(AgnoRuntime().run(workflow, {"message": "hi"}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION
    assert error.details["errors"][0]["field"] == "nodes.0.config.name"


# ---- run structure with scripted models --------------------------------------------------------


def test_a_team_reports_the_delegation_the_member_and_the_answer(
    scripted: Callable[[dict[str, list[Any]]], None], run_context: Callable[..., RunContext]
) -> None:
    scripted(
        {
            "leader": [
                {"name": "delegate_task_to_member", "arguments": {"member_id": "writer", "task": "Write a line"}},
                "the team's answer",
            ],
            "member": ["the member's line"],
        }
    )
    workflow = spec(
        {
            "nodes": [
                {"id": "writer", "type": "agent", "config": {"name": "Writer", "model": "member"}},
                {"id": "lead", "type": "team", "config": {"name": "Lead", "members": ["writer"], "model": "leader"}},
            ]
        }
    )
    context = run_context(integrations=fake_integrations("leader", "member"))
    steps, outputs = collect(AgnoRuntime().run(workflow, {"message": "Write a line about tea"}, context))
    assert [(s["node"], s["type"], s["agent"]) for s in steps] == [
        ("lead", "team", "Lead"),
        ("writer", "agent", "Writer"),
        ("lead", "team", "Lead"),
    ]
    assert steps[0]["output"] == {"delegated_to": "writer", "task": "Write a line"}
    assert steps[1]["output"] == "the member's line"
    assert outputs["output"] == "the team's answer"
    assert outputs["framework"] == "agno"
    assert [s["node"] for s in outputs["steps"]] == ["lead", "writer", "lead"]


def test_a_tool_that_raises_fails_the_run_naming_it(
    scripted: Callable[[dict[str, list[Any]]], None], run_context: Callable[..., RunContext], tmp_path: Path
) -> None:
    (tmp_path / "weather_tools.py").write_text(
        "def forecast(city: str) -> str:\n"
        '    """The weather of a city."""\n'
        "    raise ConnectionError('the weather service is down')\n"
    )
    scripted({"m": [{"name": "forecast", "arguments": {"city": "Paris"}}, "sunny"]})
    workflow = spec(
        {"nodes": [{"id": "a", "type": "agent", "config": {"name": "A", "tools": ["weather_tools:forecast"]}}]}
    )
    context = run_context(integrations=fake_integrations("m"), default_model="m", files_root=tmp_path)
    error = fails(AgnoRuntime().run(workflow, {"message": "Weather in Paris?"}, context))
    assert error.kind is ErrorKind.TOOL
    assert "forecast" in error.message
    assert "the weather service is down" in error.message
    assert error.details["tool"] == "forecast"


def test_a_built_in_tool_runs(
    scripted: Callable[[dict[str, list[Any]]], None], run_context: Callable[..., RunContext]
) -> None:
    scripted({"m": [{"name": "calculator", "arguments": {"expression": "6 * 7"}}, "42"]})
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A", "tools": ["calculator"]}}]})
    context = run_context(integrations=fake_integrations("m"), default_model="m")
    steps, outputs = collect(AgnoRuntime().run(workflow, {"prompt": "6 times 7?"}, context))
    assert [s["node"] for s in steps] == ["a"]
    assert outputs["output"] == "42"


def test_code_first_agent_and_team(run_context: Callable[..., RunContext], tmp_path: Path) -> None:
    (tmp_path / "agno_code_first.py").write_text(
        "from agno.agent import Agent\n"
        "from agno.team import Team\n"
        "from tests.runtimes.test_agno_runtime import ScriptedModel\n\n"
        "def build(inputs, db_url):\n"
        "    member = Agent(id='helper', name='Helper', model=ScriptedModel(script=['helped']), telemetry=False)\n"
        "    leader = ScriptedModel(script=[\n"
        "        {'name': 'delegate_task_to_member',\n"
        "         'arguments': {'member_id': 'helper', 'task': inputs['message']}},\n"
        '        f"answer (db: {db_url is not None})",\n'
        "    ])\n"
        "    return Team(id='crew', name='Crew', members=[member], model=leader, telemetry=False)\n\n"
        "def wrong():\n"
        "    return 42\n"
    )
    context = run_context(files_root=tmp_path)
    workflow = spec({"options": {"callable": "agno_code_first:build"}})
    steps, outputs = collect(AgnoRuntime().run(workflow, {"message": "help"}, context))
    assert [(s["node"], s["type"]) for s in steps] == [("crew", "team"), ("helper", "agent"), ("crew", "team")]
    assert outputs["output"] == "answer (db: False)"
    error = fails(
        AgnoRuntime().run(spec({"options": {"callable": "agno_code_first:wrong"}}), {"message": "x"}, context)
    )
    assert error.kind is ErrorKind.CONFIGURATION
    assert "not an agno Agent or Team" in error.message


def test_a_code_first_team_counts_its_members_calls(run_context: Callable[..., RunContext], tmp_path: Path) -> None:
    """The benchmark's team (a leader's call routes to its member, whose call answers; 12 + 8 tokens each)
    reports both calls: Agno's own ``metrics`` hold the leader's alone and count models, not calls."""
    bench = Path(__file__).resolve().parents[2] / "bench"
    (tmp_path / "agno_team.py").write_text(
        f"import sys\nsys.path.insert(0, {str(bench)!r})\nfrom fake_agents import build_team\n"
    )
    _, outputs = collect(
        AgnoRuntime().run(
            spec({"options": {"callable": "agno_team:build_team"}}),
            {"message": "Name one fact about tea."},
            run_context(files_root=tmp_path),
        )
    )
    assert outputs["usage"] == {"model_calls": 2, "prompt_tokens": 24, "completion_tokens": 16, "total_tokens": 40}


def test_inputs_are_checked(run_context: Callable[..., RunContext]) -> None:
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A"}}]})
    context = run_context(integrations=fake_integrations("m"), default_model="m")
    assert fails(AgnoRuntime().run(workflow, {}, context)).kind is ErrorKind.INPUT
    assert (
        fails(AgnoRuntime().run(workflow, {"message": "x", "images": ["ftp://a/b"]}, context)).kind is ErrorKind.INPUT
    )
    bad = {"message": "x", "images": ["data:image/png;base64,@@@"]}
    assert fails(AgnoRuntime().run(workflow, bad, context)).kind is ErrorKind.INPUT


def test_images_reach_a_model_that_declares_them(
    scripted: Callable[[dict[str, list[Any]]], None], run_context: Callable[..., RunContext]
) -> None:
    scripted({"eyes": ["a red pixel"]})
    integrations = fake_integrations("eyes")
    integrations["eyes"]["config"]["modalities"] = ["text", "image"]
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A"}}]})
    pixel = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    )
    inputs = {"message": "What is this?", "images": [pixel], "files": [{"name": "notes.txt", "content": "red"}]}
    _, outputs = collect(
        AgnoRuntime().run(workflow, inputs, run_context(integrations=integrations, default_model="eyes"))
    )
    assert outputs["output"] == "a red pixel"


def test_knowledge_and_memory_need_the_runs_database(run_context: Callable[..., RunContext]) -> None:
    context = run_context(integrations=fake_integrations("m"), default_model="m", state_url=None)
    knowledge = spec(
        {
            "nodes": [
                {"id": "a", "type": "agent", "config": {"name": "A", "knowledge": "k"}},
                {"id": "k", "type": "knowledge", "config": {"documents": ["x"]}},
            ]
        }
    )
    error = fails(AgnoRuntime().run(knowledge, {"message": "x"}, context))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "needs the runs' database" in error.message
    memory = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A", "memory": True}}]})
    error = fails(AgnoRuntime().run(memory, {"message": "x"}, context))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "needs the runs' database" in error.message


def test_a_leader_is_made_to_delegate_once_then_to_answer() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "delegate_task_to_member",
                "parameters": {
                    "type": "object",
                    "properties": {"member_id": {"type": "string"}, "task": {"type": "string"}},
                },
            },
        }
    ]
    delegation = _Delegation(member_ids=["writer", "critic"], force=True, limit=2)
    sent, choice, forced = delegation.adjust(tools, None)
    assert forced
    assert choice == {"type": "function", "function": {"name": "delegate_task_to_member"}}
    assert sent[0]["function"]["parameters"]["properties"]["member_id"]["enum"] == ["writer", "critic"]
    assert "enum" not in tools[0]["function"]["parameters"]["properties"]["member_id"]  # Agno's copy untouched
    delegation.done = 1
    assert delegation.adjust(tools, "auto")[1:] == ("auto", False)
    delegation.done = 2
    assert delegation.adjust(tools, "auto")[1:] == ("none", False)
    assert _Delegation(member_ids=[], force=True, limit=1).adjust([], None) == ([], None, False)


def test_small_helpers() -> None:
    call = {"function": {"name": "f", "arguments": '{"task": "two\nlines"}'}}
    _repair_arguments(call)
    assert json.loads(call["function"]["arguments"]) == {"task": "two\nlines"}
    cut = {"function": {"name": "f", "arguments": '{"member_id": "writer", "task": "Write a po'}}
    _repair_arguments(cut)
    assert json.loads(cut["function"]["arguments"]) == {"member_id": "writer", "task": "Write a po"}
    hopeless = {"function": {"name": "f", "arguments": "functions.f:"}}
    _repair_arguments(hopeless)
    assert hopeless["function"]["arguments"] == "functions.f:"
    assert _pooled([[1.0, 3.0], [3.0, 5.0]]) == [2.0, 4.0]
    assert _pooled([1, 2]) == [1.0, 2.0]
    assert sqlalchemy_url("postgresql://u@/db?host=/tmp") == "postgresql+psycopg://u@/db?host=/tmp"


# ---- real runs on the local model ---------------------------------------------------------------


@pytest.fixture
def local(local_model: dict[str, Any], run_context: Callable[..., RunContext]) -> Callable[..., RunContext]:
    def make(**fields: Any) -> RunContext:
        fields.setdefault("integrations", {"local-model": local_model})
        fields.setdefault("default_model", "local-model")
        return run_context(**fields)

    return make


def test_a_team_leader_delegates_to_a_member_that_really_runs(local: Callable[..., RunContext]) -> None:
    steps, outputs = collect(AgnoRuntime().run(spec(TEAM_SPEC), {"message": "Say hello to Ann."}, local()))
    kinds = [(s["node"], s["type"]) for s in steps]
    assert kinds[0] == ("lead", "team")
    assert steps[0]["output"]["delegated_to"] == "writer"
    assert ("writer", "agent") in kinds
    member = next(s for s in steps if s["node"] == "writer")
    assert member["agent"] == "Writer"
    assert member["model_calls"] >= 1
    assert member["total_tokens"] > 0
    assert kinds[-1] == ("lead", "team")  # the team's answer: the member's, routed
    assert outputs["output"] == member["output"]
    assert outputs["usage"]["total_tokens"] >= steps[0]["total_tokens"] + member["total_tokens"]
    assert outputs["usage"]["model_calls"] >= 2


def test_an_agent_looks_its_knowledge_up_in_pgvector(local: Callable[..., RunContext], state_url: str) -> None:
    workflow = spec(
        {
            "nodes": [
                {"id": "geo", "type": "agent", "config": {"name": "Geo", "knowledge": "facts"}},
                {
                    "id": "facts",
                    "type": "knowledge",
                    "config": {
                        "documents": [
                            {"name": "france", "content": "The capital of France is Paris."},
                            {"name": "japan", "content": "The capital of Japan is Tokyo."},
                        ],
                        "table": "geo_facts",
                        "limit": 2,
                    },
                },
            ],
            "options": {"max_tokens": MAX_TOKENS},
        }
    )
    steps, outputs = collect(
        AgnoRuntime().run(workflow, {"message": "What is the capital of France?"}, local(state_url=state_url))
    )
    assert [(s["node"], s["type"]) for s in steps] == [("facts", "knowledge"), ("geo", "agent")]
    lookup = steps[0]["output"]
    assert lookup["query"] == "What is the capital of France?"
    assert sorted(lookup["found"]) == ["france", "japan"]
    assert {d["content"] for d in lookup["documents"]} >= {"The capital of France is Paris."}
    assert steps[0]["agent"] == "Geo"
    assert steps[1]["total_tokens"] > 0
    assert outputs["usage"]["total_tokens"] > 0
    with psycopg.connect(state_url) as conn:
        assert conn.execute("SELECT count(*) FROM agno.geo_facts").fetchone() == (2,)


def test_an_agent_remembers_across_runs(local: Callable[..., RunContext], state_url: str) -> None:
    workflow = spec(
        {
            "nodes": [{"id": "pal", "type": "agent", "config": {"name": "Pal", "memory": True}}],
            "options": {"max_tokens": 16},
        }
    )
    agent_id = f"agent-{uuid.uuid4()}"
    _, first = collect(
        AgnoRuntime().run(workflow, {"message": "My name is Ann."}, local(state_url=state_url, agent_id=agent_id))
    )
    assert first["memory"] == {"session_id": agent_id, "user_id": "default", "history_messages": 0}
    _, second = collect(
        AgnoRuntime().run(workflow, {"message": "What is my name?"}, local(state_url=state_url, agent_id=agent_id))
    )
    assert second["memory"]["session_id"] == agent_id
    assert second["memory"]["history_messages"] >= 2  # the first run's question and answer
    with psycopg.connect(state_url) as conn:
        session = conn.execute(
            "SELECT agent_id, user_id FROM agno.agno_sessions WHERE session_id = %s", (agent_id,)
        ).fetchone()
        runs = conn.execute("SELECT count(*) FROM agno.agno_runs WHERE session_id = %s", (agent_id,)).fetchone()
    assert session == ("pal", "default")
    assert runs == (2,)


def test_images_for_a_text_only_model_are_refused(local: Callable[..., RunContext]) -> None:
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A"}}]})
    inputs = {"message": "What is in the picture?", "images": ["https://example.org/cat.png"]}
    error = fails(AgnoRuntime().run(workflow, inputs, local()))
    assert error.kind is ErrorKind.INPUT
    assert "takes text only" in error.message
    assert '"modalities": ["text", "image"]' in error.message


def test_an_unreachable_model_is_kind_model(
    local_model: dict[str, Any], run_context: Callable[..., RunContext]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gone = {**local_model, "config": {**local_model["config"], "base_url": f"http://127.0.0.1:{port}/v1"}}
    context = run_context(integrations={"gone": gone}, default_model="gone")
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A"}}]})
    error = fails(AgnoRuntime().run(workflow, {"message": "hi"}, context))
    assert error.kind is ErrorKind.MODEL
    assert "unreachable" in error.message
    assert "'gone'" in error.message


def test_a_missing_model_is_kind_configuration(run_context: Callable[..., RunContext]) -> None:
    workflow = spec({"nodes": [{"id": "a", "type": "agent", "config": {"name": "A", "model": "nope"}}]})
    error = fails(AgnoRuntime().run(workflow, {"message": "hi"}, run_context()))
    assert error.kind is ErrorKind.CONFIGURATION
    assert "no model integration named 'nope'" in error.message
