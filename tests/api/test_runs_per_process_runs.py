"""``runs_per_process`` end to end, as a user meets it: ``jupyter orchestrator`` (a real jupyter-server with
its worker and embedded PostgreSQL, a subprocess), the setting changed with ``PATCH /organizations/{id}``,
LangGraph runs started with ``POST /workflows/{id}/execute`` and read back with ``GET /executions/{id}``.

The engine-level tests (tests/engine/test_process_reuse.py) drive a Worker inside the test's event loop; here
nothing is driven from inside: which process served a run is read from what the run itself reports (a code
node returning ``os.getpid()``, a line a code-first callable prints into the run's log). The code-first
graphs are LangGraph's own documented examples, saved into the server's files through its contents API as
JupyterLab saves them (a module, and a notebook whose ``source`` is a list of lines).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engine.conftest import FINAL
from tests.engine.test_process_reuse import probe_spec
from tests.personal_server import PersonalServer, running_server

#: LangGraph 1.2's own example, verbatim: the docstring of ``StateGraph.add_node`` (langgraph/graph/state.py,
#: MIT licence, (c) LangChain, Inc.): a TypedDict state, add_node, add_edge(START, ...), compile, invoke
QUICKSTART = """from typing_extensions import TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph


class State(TypedDict):
    x: int


def my_node(state: State, config: RunnableConfig) -> State:
    return {"x": state["x"] + 1}


builder = StateGraph(State)
builder.add_node(my_node)  # node name will be 'my_node'
builder.add_edge(START, "my_node")
graph = builder.compile()
graph.invoke({"x": 1})
# {'x': 2}
"""
#: LangGraph 1.2's own example of a reducer, verbatim but for the import it forgets: the docstring of
#: ``langgraph.types.Send`` (MIT licence, (c) LangChain, Inc.); ``jokes`` is added to, never replaced, so
#: anything a run's state kept from an earlier run would show in the later run's result
SEND = [
    "from typing_extensions import TypedDict  # the docstring uses it without importing it\n",
    """from typing import Annotated
from langgraph.types import Send
from langgraph.graph import END, START
from langgraph.graph import StateGraph
import operator

class OverallState(TypedDict):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]

def continue_to_jokes(state: OverallState):
    return [Send("generate_joke", {"subject": s}) for s in state["subjects"]]

builder = StateGraph(OverallState)
builder.add_node("generate_joke", lambda state: {"jokes": [f"Joke about {state['subject']}"]})
builder.add_conditional_edges(START, continue_to_jokes)
builder.add_edge("generate_joke", END)
graph = builder.compile()

# Invoking with two subjects results in a generated joke for each
graph.invoke({"subjects": ["cats", "dogs"]})
# {'subjects': ['cats', 'dogs'], 'jokes': ['Joke about cats', 'Joke about dogs']}
""",
]
#: what a user adds so that a workflow can name the example (docs/frameworks/langgraph.md, "Code first"); it
#: prints the process serving the run into the run's log
ENTRY = """
import os


def build():
    print(f"served by process {os.getpid()}")
    return graph
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    """One personal server for the module, importing only LangGraph ahead of runs (no notebook runs here)."""
    flags = ("--OrchestratorApp.runner_preload=langgraph", "--OrchestratorApp.kernel_pool_size=0")
    yield from running_server(tmp_path_factory, "reuse-server", extra_args=flags)


def ok(reply: Any, status: int) -> Any:
    assert reply.status == status, reply.body
    return reply.body


def organization(server: PersonalServer, runs_per_process: int | None = None) -> str:
    """A new organization of the server's user; its ``runs_per_process`` set through PATCH when given."""
    org = ok(server.call("POST", "/organizations", {"name": f"org-{uuid.uuid4().hex[:8]}"}), 201)
    assert org["runs_per_process"] == 1
    if runs_per_process is not None:
        body = {"runs_per_process": runs_per_process}
        changed = ok(server.call("PATCH", f"/organizations/{org['id']}", body), 200)
        assert changed["runs_per_process"] == runs_per_process
    return str(org["id"])


def workflow(server: PersonalServer, org_id: str, spec: dict[str, Any]) -> str:
    body = {"name": f"agent-{uuid.uuid4().hex[:8]}", "framework": "langgraph", "org_id": org_id}
    agent = ok(server.call("POST", "/agents", body), 201)
    return str(ok(server.call("POST", f"/agents/{agent['id']}/workflows", {"name": "w", "spec": spec}), 201)["id"])


def run(server: PersonalServer, workflow_id: str, inputs: dict[str, Any], within: float = 60) -> dict[str, Any]:
    """Execute the workflow and wait for its run to succeed; the run."""
    started = ok(server.call("POST", f"/workflows/{workflow_id}/execute", {"inputs": inputs}), 202)
    deadline = time.monotonic() + within
    while (execution := server.call("GET", f"/executions/{started['id']}").body)["status"] not in FINAL:
        assert time.monotonic() < deadline, execution
        time.sleep(0.05)
    assert execution["status"] == "succeeded", execution["error"] or execution
    return execution  # type: ignore[no-any-return]


def probed(server: PersonalServer, workflow_id: str) -> tuple[int, int]:
    """The pid of the process that served a probe run, and how many probe runs that process has served."""
    found = run(server, workflow_id, {})["outputs"]["values"]["probe"]
    assert found["left"] == "", "a run saw an environment variable an earlier run set"
    return int(found["pid"]), int(found["seen"])


def save(server: PersonalServer, path: str, model: dict[str, Any]) -> None:
    """Save a file into the server's files as JupyterLab does: PUT /api/contents/<path>."""
    request = urllib.request.Request(f"{server.url}/api/contents/{path}", json.dumps(model).encode(), method="PUT")
    request.add_header("Authorization", f"token {server.token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)


def notebook(*sources: str) -> dict[str, Any]:
    """An nbformat 4 notebook of code cells as JupyterLab writes it: each ``source`` a list of lines."""
    cells = [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": s}
        for i, s in enumerate(source.splitlines(keepends=True) for source in sources)
    ]
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}


def served_by(server: PersonalServer, execution: dict[str, Any]) -> int:
    """The pid the run's code-first entry point printed into the run's log."""
    log = server.call("GET", f"/executions/{execution['id']}/logs").body
    found = re.findall(r"served by process (\d+)", log)
    assert len(found) == 1, log
    return int(found[0])


def test_runs_of_an_organization_that_opted_in_share_one_process_never_another_organizations(
    server: PersonalServer,
) -> None:
    opted, default, other = organization(server, 5), organization(server), organization(server, 5)
    flows = {org: workflow(server, org, probe_spec()) for org in (opted, default, other)}
    first = [probed(server, flows[opted]) for _ in range(3)]
    fresh = [probed(server, flows[default]) for _ in range(3)]
    elsewhere = probed(server, flows[other])
    again = probed(server, flows[opted])
    pid = first[0][0]
    # one process served the three runs: the same pid, and a module global each run bumped seen by the next
    assert first == [(pid, 1), (pid, 2), (pid, 3)]
    # left at 1: a fresh process for every run, nothing seen of an earlier one
    assert [seen for _, seen in fresh] == [1, 1, 1]
    assert len({p for p, _ in fresh} | {pid}) == 4
    # opted in too, and run while the first organization's process waited idle: it did not get that process
    assert elsewhere[1] == 1
    assert elsewhere[0] != pid
    # which was still there, waiting for its own organization's next run
    assert again == (pid, 4)


def test_langgraph_documented_examples_give_their_documented_results_run_after_run_in_one_process(
    server: PersonalServer,
) -> None:
    save(server, "quickstart_example.py", {"type": "file", "format": "text", "content": QUICKSTART + ENTRY})
    save(server, "send_example.ipynb", {"type": "notebook", "format": "json", "content": notebook(*SEND, ENTRY)})
    org = organization(server, 5)
    quickstart = workflow(server, org, {"options": {"callable": "quickstart_example:build"}})
    send = workflow(server, org, {"options": {"callable": "send_example.ipynb:build"}})
    runs = [
        (run(server, quickstart, {"x": 1}), {"x": 2}),  # the documented call and result
        (run(server, quickstart, {"x": 41}), {"x": 42}),
        (run(server, send, {"subjects": ["cats", "dogs"]}), {"jokes": ["Joke about cats", "Joke about dogs"]}),
        (run(server, send, {"subjects": ["owls"]}), {"jokes": ["Joke about owls"]}),  # not cats' and dogs' too
    ]
    for execution, expected in runs:
        assert execution["outputs"]["output"] == {**execution["inputs"], **expected}
    assert len({served_by(server, execution) for execution, _ in runs}) == 1  # all four in one process


def test_an_edited_or_new_module_of_the_files_is_what_the_next_run_in_the_process_runs(
    server: PersonalServer,
) -> None:
    """A kept process forgets the modules a run imported from the files: the user's edit, saved between two
    runs, and a module saved after the first run are both what the next runs get (docs/executions.md)."""
    text = {"type": "file", "format": "text"}
    save(server, "edited_example.py", {**text, "content": QUICKSTART + ENTRY})
    org = organization(server, 5)
    edited = workflow(server, org, {"options": {"callable": "edited_example:build"}})
    before = run(server, edited, {"x": 1})
    changed = QUICKSTART.replace('state["x"] + 1', 'state["x"] + 100')
    assert changed != QUICKSTART
    save(server, "edited_example.py", {**text, "content": changed + ENTRY})
    after = run(server, edited, {"x": 1})
    save(server, "added_example.py", {**text, "content": QUICKSTART + ENTRY})
    added = run(server, workflow(server, org, {"options": {"callable": "added_example:build"}}), {"x": 1})
    assert [r["outputs"]["output"] for r in (before, after, added)] == [{"x": 2}, {"x": 101}, {"x": 2}]
    assert len({served_by(server, execution) for execution in (before, after, added)}) == 1
