"""The pieces behind the magics, without a server: code-first modules, notebook cleaning, inputs, views."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from orchestrator_kernels import models
from orchestrator_kernels.code import Built, assigned_names, cell_code, find_built, write_module
from orchestrator_kernels.display import RunView, Table
from orchestrator_runtimes.code import load_callable

from orchestrator_ext.deploy import DeployError, clean_notebook, parse_inputs

GRAPH_CELL = """class State(TypedDict):
    topic: str


graph = StateGraph(State)
graph.add_node("echo", lambda state: {"topic": model().model_name})
graph.add_edge(START, "echo")
app = graph.compile()
"""


def test_a_deployed_cell_is_a_module_the_runtime_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_handed", None)
    namespace: dict[str, Any] = {}
    from orchestrator_kernels.startup import namespace as kernel_names

    namespace.update(kernel_names("langgraph"))
    exec(GRAPH_CELL, namespace)
    built = find_built(GRAPH_CELL, namespace)
    assert built == Built("langgraph", "graph"), "an uncompiled graph is preferred: runs get checkpoints"
    reference = write_module(tmp_path, "Weekly Report!", built, GRAPH_CELL, "report.ipynb")
    assert reference.startswith("orchestrator_code.agent_weekly_report_")
    assert write_module(tmp_path, "Weekly Report!", built, GRAPH_CELL, "report.ipynb") == reference, "same code"
    build = load_callable(reference, tmp_path)
    import openai

    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x")
    graph = build(client=client, model="handed-model", endpoint=None, inputs={})
    assert type(graph).__name__ == "StateGraph"
    assert graph.compile().invoke({"topic": "tea"}) == {"topic": "handed-model"}, "model() is the run's"


def test_what_a_cell_built_is_found_by_name_or_kind() -> None:
    assert assigned_names("a = 1\nb: int = 2\nc += 1\nd, e = 1, 2\nf = g = 3") == ["a", "b", "c", "f", "g"]
    assert cell_code("%%orchestrator deploy --agent x\n!ls\n  %time 1\ny = 2") == "y = 2"
    with pytest.raises(ValueError, match="assigns no graph"):
        find_built("x = 1", {"x": 1})
    with pytest.raises(ValueError, match="'x' is not a LangGraph graph"):
        find_built("x = 1", {"x": 1}, "x")


def test_a_deployed_notebook_has_no_outputs_and_no_deploy_lines(tmp_path: Path) -> None:
    raw = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "orchestrator-agno", "display_name": "Orchestrator · Agno"}},
        "cells": [
            {"cell_type": "code", "id": "a", "metadata": {"tags": ["parameters"]}, "source": ["topic = 'tea'\n"],
             "outputs": [], "execution_count": None},
            {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": 3,
             "source": ["%orchestrator deploy --agent x\n", "%orchestrator run x\n"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["deployed\n"]}]},
            {"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 4,
             "source": ["print(topic)\n", "%orchestrator runs"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["tea\n"]}]},
        ],
    }  # fmt: skip
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(raw))  # as JupyterLab writes it: sources as lists of lines
    from orchestrator_ext.deploy import read_notebook

    cleaned = clean_notebook(read_notebook(path))
    assert [cell["id"] for cell in cleaned["cells"]] == ["a", "c"]
    assert cleaned["cells"][1]["source"] == "print(topic)"
    assert cleaned["cells"][1]["outputs"] == []
    assert cleaned["cells"][1]["execution_count"] is None
    nbformat.validate(nbformat.from_dict(cleaned))
    assert raw["cells"][2]["outputs"], "the notebook on disk is left alone"


def test_inputs_are_json_when_they_are_json() -> None:
    assert parse_inputs(["n=3", "ok=true", 'tags=["a"]', "topic=green tea", "empty="]) == {
        "n": 3,
        "ok": True,
        "tags": ["a"],
        "topic": "green tea",
        "empty": "",
    }
    with pytest.raises(DeployError, match="'3' is not key=value"):
        parse_inputs(["3"])


def test_views_render_text_and_accessible_html() -> None:
    table = Table("2 runs", ("agent", "status"), [("a", "succeeded"), ("<b>", "failed")], "none")
    assert repr(table).splitlines()[1:] == ["agent  status", "a      succeeded", "<b>    failed"]
    assert '<th scope="col">agent</th>' in table._repr_html_()
    assert "&lt;b&gt;" in table._repr_html_()
    assert repr(Table("x", ("a",), [], "no runs yet")) == "no runs yet"
    run = {
        "id": "e1",
        "status": "failed",
        "started_at": "2026-12-06T08:00:00+00:00",
        "finished_at": "2026-12-06T08:00:02.5+00:00",
        "error": {"kind": "model", "message": "unreachable"},
        "outputs": {"answer": "x" * 500},
    }
    text = repr(RunView(run, "agent · wf v2"))
    assert "status: failed" in text
    assert "took: 2.5 s" in text
    assert "error: model: unreachable" in text
    assert "…" in text, "long outputs are cut"
    assert 'role="status"' in RunView(run, "t")._repr_html_()


def test_load_ext_in_a_plain_kernel_and_a_missing_framework(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from IPython.core.interactiveshell import InteractiveShell
    from orchestrator_kernels import frameworks
    from orchestrator_kernels.startup import load

    shell = InteractiveShell.instance()
    monkeypatch.delenv("ORCHESTRATOR_KERNEL_FRAMEWORK", raising=False)
    load(shell)
    assert callable(shell.user_ns["model"])
    assert "orchestrator" in shell.magics_manager.magics["line"]
    assert shell.run_line_magic("orchestrator", "--help") is None
    assert "deploy this notebook" in capsys.readouterr().out

    gone = replace(frameworks.FRAMEWORKS["agno"], imports=("from agno_that_is_not_there import Agent",))
    monkeypatch.setitem(frameworks.FRAMEWORKS, "agno", gone)
    monkeypatch.setenv("ORCHESTRATOR_KERNEL_FRAMEWORK", "agno")
    load(shell)
    shell.run_cell("1 + 1")
    shell.run_cell("2 + 2")
    said = capsys.readouterr().err
    assert said.count("Agno is not installed in this kernel's environment") == 1
    assert "pip install 'orchestrator[agno]'" in said
