"""The starters of notebooks/ on their framework kernels, as a user runs them in JupyterLab.

Each starter runs cell by cell on a kernel the server starts for it (``POST /api/sessions``):
its first cell builds the agent with the names the kernel put at hand, ``%orchestrator deploy``
makes its next workflow version (the parameters cell becoming the inputs) with a schedule, and
``%orchestrator run`` runs that version on the server's worker, on the same kernel, against the
real local model. Then the same kernel deploys the graph, crew or team a cell builds
(``%%orchestrator deploy``) and runs it through the framework's runtime.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.personal_server import PersonalServer

from .conftest import SessionKernel, server_root

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
STARTERS = [("langgraph", "LangGraph"), ("crewai", "CrewAI"), ("agno", "Agno")]
#: a cell per framework that builds the agent code-first, with the kernel's names only
CODE_FIRST = {
    "langgraph": """class Reply(TypedDict):
    topic: str
    answer: str


def answer(state: Reply) -> dict:
    return {"answer": model(max_tokens=16).invoke(f"One word about {state['topic']}.").content}


graph = StateGraph(Reply)
graph.add_node("answer", answer)
graph.add_edge(START, "answer")
graph.add_edge("answer", END)""",
    "crewai": """poet = Agent(
    role="Poet", goal="Say one word about {topic}", backstory="Brief.", llm=model(max_tokens=16), max_iter=1
)
word = Task(description="One word about {topic}.", expected_output="A word.", agent=poet)
crew = Crew(agents=[poet], tasks=[word])""",
    "agno": """team = Team(
    name="Editors",
    members=[Agent(name="Poet", model=model(max_tokens=16), instructions="Say one word.")],
    model=model(max_tokens=16),
)""",
}


def one(server: PersonalServer, path: str, name: str, **query: str) -> dict[str, Any]:
    reply = server.call("GET", f"{path}?{urllib.parse.urlencode(query)}")
    assert reply.status == 200, reply.body
    found = [item for item in reply.body["items"] if item["name"] == name]
    assert len(found) == 1, reply.body
    return found[0]  # type: ignore[no-any-return]


def run_notebook(kernel: SessionKernel, notebook: nbformat.NotebookNode) -> list[str]:
    texts = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            outputs = kernel.run(cell.source)
            assert outputs.ok, f"{cell.source}\n{outputs.error}\n{outputs.text}"
            texts.append(outputs.text)
    return texts


@pytest.mark.parametrize(("key", "title"), STARTERS)
def test_starter_deploys_schedules_and_runs_on_its_kernel(
    key: str, title: str, server: PersonalServer, session_kernel: Callable[[str, str], SessionKernel]
) -> None:
    name = f"{key}_starter.ipynb"
    shutil.copy(NOTEBOOKS / name, server_root(server) / name)
    notebook = nbformat.read(server_root(server) / name, as_version=4)
    assert notebook.metadata.kernelspec.name == f"orchestrator-{key}"
    first = notebook.cells[0].source.splitlines()
    assert not [line for line in first if line.startswith(("import ", "from "))], "the first cell is the agent"
    kernel = session_kernel(name, f"orchestrator-{key}")

    texts = run_notebook(kernel, notebook)

    agent_name = f"{title} starter"
    assert f"created agent '{agent_name}'" in texts[3]
    agent = one(server, "/agents", agent_name, q=agent_name)
    assert agent["framework"] == "notebook"
    workflow = one(server, f"/agents/{agent['id']}/workflows", agent_name)
    assert workflow["version"] == 1
    assert workflow["parameters"] == [{"name": "topic", "default": "green tea", "type": "str"}]
    assert workflow["spec"]["integrations"] == ["default"]
    sources = [cell["source"] for cell in workflow["spec"]["notebook"]["content"]["cells"]]
    assert not any("%orchestrator" in source for source in sources), "a run must not deploy again"
    schedule = one(server, f"/workflows/{workflow['id']}/schedules", "deploy")
    assert (schedule["cron"], schedule["timezone"], schedule["enabled"]) == ("0 9 * * 1", "Europe/Paris", True)
    assert schedule["next_run_at"]
    runs = server.call("GET", f"/executions?agent_id={agent['id']}").body["items"]
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run["status"], run["inputs"]) == ("succeeded", {"topic": "jasmine tea"}), run["error"]
    assert isinstance(run["outputs"]["answer"], str)
    assert run["outputs"]["answer"].strip()
    assert "succeeded" in texts[4]
    assert run["id"] in texts[5], "%orchestrator runs lists it"

    code_first = f"{title} code-first"
    deployed = kernel.run(f'%%orchestrator deploy --agent "{code_first}"\n{CODE_FIRST[key]}')
    assert deployed.ok, deployed.error
    agent = one(server, "/agents", code_first, q=code_first)
    assert agent["framework"] == key
    workflow = one(server, f"/agents/{agent['id']}/workflows", code_first)
    reference = workflow["spec"]["options"]["callable"]
    module = reference.split(":")[0].replace(".", "/") + ".py"
    assert (server_root(server) / module).is_file()
    inputs = 'message="Say tea."' if key == "agno" else "topic=tea"  # an Agno agent reads inputs.message
    ran = kernel.run(f'result = %orchestrator run "{code_first}" {inputs} --wait\nresult["status"], result["error"]')
    assert ran.ok, ran.error
    assert "'succeeded'" in ran.text, ran.text


def test_completion_and_errors_in_a_framework_kernel(
    server: PersonalServer, session_kernel: Callable[[str, str], SessionKernel]
) -> None:
    kernel = session_kernel("scratch.ipynb", "orchestrator-langgraph")
    assert {"add_node", "add_edge"} <= set(kernel.complete("StateGraph(dict).add_"))
    assert "TypedDict" in kernel.complete("TypedD")
    assert "MessagesState" in kernel.complete("MessagesSt")
    missing = kernel.run("%orchestrator run nobody")
    assert "UsageError: no agent called 'nobody'" in missing.text
    assert server.call("POST", "/agents", {"name": "taken", "framework": "agno"}).status == 201
    clash = kernel.run(
        '%%orchestrator deploy --agent taken\ngraph = StateGraph(MessagesState)\ngraph.add_node("a", lambda s: s)'
    )
    assert "the agent 'taken' has the framework 'agno'" in clash.text, clash.text
    nothing = kernel.run("%%orchestrator deploy --agent other\nx = 1")
    assert "assigns no graph, crew, team or agent" in nothing.text
    usage = kernel.run("%orchestrator deploy")
    assert "the following arguments are required: --agent" in usage.text
