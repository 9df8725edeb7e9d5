"""The workflow spec, its validation, its JSON Schema, and notebook parameters."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from orchestrator_runtimes import (
    NotebookRuntime,
    ParametersCellError,
    SpecError,
    WorkflowSpec,
    parse_parameters,
    validate_spec,
    workflow_spec_json_schema,
)
from orchestrator_runtimes.spec import notebook_path_problem
from pydantic import ValidationError

from tests.conftest import GRAPH_SPEC, NOTEBOOK_SPEC

NOTEBOOK: dict[str, Any] = NOTEBOOK_SPEC["notebook"]["content"]


def notebook_with(source: str | list[str], tags: list[str] | None = None) -> dict[str, Any]:
    notebook = copy.deepcopy(NOTEBOOK)
    notebook["cells"][0]["source"] = source
    notebook["cells"][0]["metadata"] = {"tags": ["parameters"] if tags is None else tags}
    return notebook


def fields(data: Any, framework: str = "langgraph") -> list[str]:
    spec, errors = validate_spec(data, framework)
    assert spec is None
    return [e.field for e in errors]


def test_sample_specs_are_valid() -> None:
    graph, errors = validate_spec(GRAPH_SPEC, "langgraph")
    assert errors == []
    assert graph is not None
    assert [n.id for n in graph.nodes] == ["start", "llm", "end"]
    assert graph.edges[0].condition is None
    notebook, errors = validate_spec(NOTEBOOK_SPEC, "notebook")
    assert errors == []
    assert notebook is not None
    assert notebook.notebook is not None
    assert notebook.notebook.content == NOTEBOOK
    # the n8n runtime runs one n8n_workflow node: a model node is not one
    assert "spec.nodes.1.type" in [p.field for p in validate_spec(GRAPH_SPEC, "n8n")[1]]


def test_cross_field_errors_are_located() -> None:
    spec = {
        "nodes": [{"id": "a", "type": "input"}, {"id": "b", "type": "task"}, {"id": "a", "type": "output"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "ghost", "target": "x"}],
    }
    _, errors = validate_spec(spec, "crewai")
    assert errors == [
        SpecError("spec.nodes.2.id", "duplicate node id 'a' (also nodes.0)"),
        SpecError("spec.edges.1.source", "no node 'ghost'"),
        SpecError("spec.edges.1.target", "no node 'x'"),
    ]


@pytest.mark.parametrize(
    ("data", "framework", "expected"),
    [
        ({"nodes": [{"id": "a" * 65, "type": "tool"}]}, "agno", ["spec.nodes.0.id"]),
        ({"nodes": [{"id": "a.b", "type": "tool"}]}, "agno", ["spec.nodes.0.id"]),
        ({"nodes": [{"id": "a", "type": "robot"}]}, "agno", ["spec.nodes.0.type"]),
        ({"nodes": [{"id": "a", "type": "tool", "config": []}]}, "agno", ["spec.nodes.0.config"]),
        ({"nodes": [{"id": "a", "type": "tool", "extra": 1}]}, "agno", ["spec.nodes.0.extra"]),
        ({"nodes": [{"id": "a", "type": "tool"}], "edges": [{"source": "a"}]}, "agno", ["spec.edges.0.target"]),
        ({"nodes": []}, "langgraph", ["spec.nodes"]),
        ({}, "langgraph", ["spec.nodes"]),
        ({**GRAPH_SPEC, "schema_version": 2}, "langgraph", ["spec.schema_version"]),
        ({**GRAPH_SPEC, "options": "fast"}, "langgraph", ["spec.options"]),
        ("not an object", "langgraph", ["spec"]),
        ({**NOTEBOOK_SPEC, "nodes": GRAPH_SPEC["nodes"]}, "notebook", ["spec.nodes"]),
        (
            {**NOTEBOOK_SPEC, "edges": [{"source": "a", "target": "b"}]},
            "notebook",
            ["spec.edges.0.source", "spec.edges.0.target", "spec.edges"],
        ),
        ({"notebook": {}}, "notebook", ["spec.notebook"]),
        ({"notebook": {"path": "a.ipynb", "content": NOTEBOOK}}, "notebook", ["spec.notebook"]),
        ({"notebook": {"path": "a.ipynb", "url": "x"}}, "notebook", ["spec.notebook.url"]),
        ({"notebook": {"content": {"nbformat": 3}}}, "notebook", ["spec.notebook.content"]),
        ({"notebook": {"content": {"nbformat": 4, "nbformat_minor": 5}}}, "notebook", ["spec.notebook.content"]),
        ({"notebook": {"content": notebook_with("x = (")}}, "notebook", ["spec.notebook.content"]),
        (GRAPH_SPEC, "notebook", ["spec.notebook"]),
        (NOTEBOOK_SPEC, "n8n", ["spec.notebook"]),
        (GRAPH_SPEC, "tensorflow", ["framework"]),
    ],
)
def test_errors_name_their_field(data: Any, framework: str, expected: list[str]) -> None:
    assert fields(data, framework) == expected


def test_notebook_content_errors_explain() -> None:
    missing_id = copy.deepcopy(NOTEBOOK)
    del missing_id["cells"][1]["id"]
    _, errors = validate_spec({"notebook": {"content": missing_id}}, "notebook")
    assert errors[0].field == "spec.notebook.content"
    assert "cells.1" in errors[0].message
    assert "'id' is a required property" in errors[0].message
    duplicate = copy.deepcopy(NOTEBOOK)
    duplicate["cells"][1]["id"] = "params"
    _, errors = validate_spec({"notebook": {"content": duplicate}}, "notebook")
    assert "duplicate cell id 'params'" in errors[0].message
    # validation never changes the document
    assert "id" not in missing_id["cells"][1]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("a.ipynb", None),
        ("dir/sub/a.ipynb", None),
        ("./a.ipynb", None),
        ("", "empty"),
        ("/abs/a.ipynb", "relative"),
        ("\\share\\a.ipynb", "relative"),
        ("C:a.ipynb", "relative"),
        ("a/../../b.ipynb", ".."),
        ("a\\..\\b.ipynb", ".."),
        ("a.py", ".ipynb"),
        ("a\x00.ipynb", "NUL"),
    ],
)
def test_notebook_paths(path: str, problem: str | None) -> None:
    found = notebook_path_problem(path)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_model_enforces_rules_too() -> None:
    with pytest.raises(ValidationError, match=r"edges\.0\.target: no node 'b'"):
        WorkflowSpec.model_validate(
            {"nodes": [{"id": "a", "type": "input"}], "edges": [{"source": "a", "target": "b"}]}
        )
    with pytest.raises(ValidationError, match="at least one node"):
        WorkflowSpec()


def test_json_schema() -> None:
    schema = workflow_spec_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(GRAPH_SPEC)
    assert validator.is_valid(NOTEBOOK_SPEC)
    assert validator.is_valid({"notebook": {"path": "a.ipynb", "content": None}})
    assert not validator.is_valid({"notebook": {"path": "a.ipynb", "content": NOTEBOOK}})
    assert not validator.is_valid({"notebook": {}})
    assert not validator.is_valid({"nodes": [{"id": "bad id", "type": "input"}]})
    node_types = schema["$defs"]["NodeType"]["enum"]
    assert "human_approval" in node_types
    assert "n8n_workflow" in node_types
    assert len(node_types) == 15


def test_parameters_are_read_not_run() -> None:
    source = [
        "%load_ext autoreload\n",
        "count = 3\n",
        "ratio: float = 0.5\n",
        "tags = ['a', ('b', 1)]\n",
        "opts = {'deep': {'k': None}}\n",
        "flag = True\n",
        "path = os.path.join('a', 'b')\n",
        "limit: int\n",
        "first, second = 1, 'two'\n",
        "left, right = pair\n",
        "a = b = -2\n",
        "big = 1e999\n",
        "raw = b'bytes'\n",
        "count = 4\n",
        "obj.attr = 1\n",
        "import os\n",
    ]
    parameters = parse_parameters(notebook_with(source))
    assert parameters == [
        {"name": "count", "default": 4, "type": "int"},
        {"name": "ratio", "default": 0.5, "type": "float"},
        {"name": "tags", "default": ["a", ["b", 1]], "type": "list"},
        {"name": "opts", "default": {"deep": {"k": None}}, "type": "dict"},
        {"name": "flag", "default": True, "type": "bool"},
        {"name": "path", "default": None, "type": "any"},
        {"name": "limit", "default": None, "type": "int"},
        {"name": "first", "default": 1, "type": "int"},
        {"name": "second", "default": "two", "type": "str"},
        {"name": "left", "default": None, "type": "any"},
        {"name": "right", "default": None, "type": "any"},
        {"name": "a", "default": -2, "type": "int"},
        {"name": "b", "default": -2, "type": "int"},
        {"name": "big", "default": None, "type": "any"},
        {"name": "raw", "default": None, "type": "any"},
    ]


def test_parameters_cell_lookup() -> None:
    assert parse_parameters(notebook_with("x = 1", tags=["other"])) == []
    assert parse_parameters({"cells": "nope"}) == []
    assert parse_parameters(notebook_with("empty = None")) == [{"name": "empty", "default": None, "type": "none"}]
    with pytest.raises(ParametersCellError, match="line 1"):
        parse_parameters(notebook_with("x = (("))


def test_notebook_runtime_validates() -> None:
    runtime = NotebookRuntime()
    assert runtime.name == "notebook"
    notebook_spec, _ = validate_spec(NOTEBOOK_SPEC, "notebook")
    assert notebook_spec is not None
    assert runtime.validate(notebook_spec) == []
    graph, _ = validate_spec(GRAPH_SPEC, "langgraph")
    assert graph is not None
    assert [e.field for e in runtime.validate(graph)] == ["spec.notebook"]
    by_path, _ = validate_spec({"notebook": {"path": "a.ipynb"}}, "notebook")
    assert by_path is not None
    assert runtime.validate(by_path) == []
