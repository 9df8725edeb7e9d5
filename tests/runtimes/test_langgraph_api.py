"""LangGraph's documented patterns and a drawn fan-out, through the API: POST /execute → queue → worker →
runner process, with the outputs the graph gives when invoked directly (tests/runtimes/langgraph_patterns.py)."""

from __future__ import annotations

from typing import Any

from langgraph.types import Command
from orchestrator_runtimes.langgraph.messages import to_json

from tests.conftest import Api
from tests.engine.conftest import wait_final, who
from tests.engine.conftest import worker_settings as worker_settings
from tests.engine.conftest import workers as workers
from tests.engine.test_framework_runs import runs_db as runs_db
from tests.engine.test_framework_runs import wait_status

from . import langgraph_patterns as patterns

CODE_FIRST = [
    ("build_quickstart", {"graph_state": "Hi, this is Lance."}),
    ("build_map_reduce", {"subjects": ["cats", "dogs"]}),
    ("build_subgraph", {"foo": "foo"}),
    ("build_react_agent", {"messages": [{"role": "user", "content": "What is 3 times 5?"}]}),
]
FAN_OUT = {
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "double", "type": "code", "config": {"source": "def run(values):\n    return values['n'] * 2"}},
        {"id": "square", "type": "code", "config": {"source": "def run(values):\n    return values['n'] ** 2"}},
        {
            "id": "join",
            "type": "code",
            "config": {"source": "def run(values):\n    return [values['double'], values['square']]"},
        },
    ],
    "edges": [
        {"source": "start", "target": "double"},
        {"source": "start", "target": "square"},
        {"source": "double", "target": "join"},
        {"source": "square", "target": "join"},
    ],
}


def without_ids(value: Any) -> Any:
    """``value`` without messages' ids (LangChain makes new ones on every invocation)."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if not (k == "id" and "role" in value)}
    if isinstance(value, list):
        return [without_ids(item) for item in value]
    return value


async def start(api: Api, create_agent: Any, create_workflow: Any, user: str, spec: Any, inputs: Any) -> str:
    agent = await create_agent(user=user, framework="langgraph")
    workflow = await create_workflow(user, agent["id"], spec=spec)
    reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": inputs})
    assert reply.status == 202, reply.text
    return str(reply.json["id"])


async def test_documented_patterns_and_a_fan_out_run_through_the_api(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, runs_db: str
) -> None:
    user = who()
    runs = {}
    for builder, inputs in CODE_FIRST:
        spec = {"options": {"callable": f"tests.runtimes.langgraph_patterns:{builder}"}}
        runs[builder] = (await start(api, create_agent, create_workflow, user, spec, inputs), inputs)
    fan_out = await start(api, create_agent, create_workflow, user, FAN_OUT, {"n": 3})
    async with workers(state_url=runs_db, slots=2):
        ended = {name: await wait_final(api, user, run_id, within=120) for name, (run_id, _) in runs.items()}
        drawn = await wait_final(api, user, fan_out, within=120)
    for builder, inputs in CODE_FIRST:
        run = ended[builder]
        assert run["status"] == "succeeded", (builder, run["error"])
        reference = to_json(getattr(patterns, builder)().invoke(inputs))
        assert without_ids(run["outputs"]["output"]) == without_ids(reference)
    messages = ended["build_react_agent"]["outputs"]["output"]["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "What is 3 times 5?"),
        ("assistant", ""),
        ("tool", "15"),
        ("assistant", "The answer is 15."),
    ]
    assert messages[1]["tool_calls"][0]["name"] == "multiply"
    assert drawn["status"] == "succeeded", drawn
    assert drawn["outputs"]["output"] == [6, 9]


async def test_an_interrupt_of_a_graph_with_its_own_checkpointer_waits_and_resumes(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, runs_db: str
) -> None:
    reference = patterns.build_interrupt()
    thread = {"configurable": {"thread_id": "reference"}}
    asked = reference.invoke({"some_text": "original"}, thread)["__interrupt__"][0].value
    expected = reference.invoke(Command(resume="edited"), thread)

    user = who()
    spec = {"options": {"callable": "tests.runtimes.langgraph_patterns:build_interrupt"}}
    run_id = await start(api, create_agent, create_workflow, user, spec, {"some_text": "original"})
    async with workers(state_url=runs_db):
        waiting = await wait_status(api, user, run_id, {"waiting"}, within=120)
    assert waiting["waiting_for"] == {**asked, "node": "human_node"}
    reply = await api("POST", "executions", run_id, "resume", user=user, body={"answer": "edited"})
    assert reply.status == 202, reply.text
    async with workers(state_url=runs_db):  # another worker, another process: the checkpoint is in PostgreSQL
        run = await wait_final(api, user, run_id, within=120)
    assert run["status"] == "succeeded", run
    assert run["outputs"]["output"] == expected
