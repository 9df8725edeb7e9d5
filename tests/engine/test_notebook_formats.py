"""Which notebooks a workflow takes, and which inputs: validation reads notebooks as execution does.

No worker runs here: these are the answers a user gets before anything is queued.
The parity tests (``test_papermill_parity.py``) run the same notebooks.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from tests.conftest import Api
from tests.engine.conftest import who
from tests.engine.test_papermill_parity import NOTEBOOKS, nbformat3_notebook


async def validate(api: Api, user: str, spec: dict[str, Any]) -> dict[str, Any]:
    reply = await api("POST", "workflows", "validate", user=user, body={"framework": "notebook", "spec": spec})
    assert reply.status == 200, reply.text
    return reply.json  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["simple_execute", "no_parameters", "broken1", "line_magic_error", "sysexit0"])
async def test_papermills_notebooks_validate_as_they_are_saved(api: Api, name: str) -> None:
    document = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    assert any(isinstance(cell["source"], list) for cell in document["cells"])  # lines, as on disk
    assert await validate(api, who(), {"notebook": {"content": document}}) == {"valid": True, "errors": []}


async def test_an_nbformat_3_notebook_validates_and_its_parameters_are_read(
    api: Api, create_agent: Any, create_workflow: Any, tmp_path: Path
) -> None:
    path = tmp_path / "v3.ipynb"
    nbformat3_notebook(path)
    document = json.loads(path.read_text())
    assert document["nbformat"] == 3
    user = who()
    assert (await validate(api, user, {"notebook": {"content": document}}))["valid"] is True
    agent = await create_agent(user=user, framework="notebook")
    workflow = await create_workflow(user, agent["id"], spec={"notebook": {"content": document}})
    assert workflow["parameters"] == [{"name": "n", "default": 1, "type": "int"}]
    refused = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {"n": "x"}})
    assert refused.status == 422
    assert [e["field"] for e in refused.json["errors"]] == ["inputs.n"]


async def test_what_cannot_run_does_not_validate(api: Api) -> None:
    """papermill's complex_parameters has a parameters cell that is not Python: papermill runs it and fails."""

    def run_it() -> str:
        try:
            papermill.execute_notebook(
                str(NOTEBOOKS / "complex_parameters.ipynb"), None, kernel_name="python3", progress_bar=False
            )
        except PapermillExecutionError as exc:
            return str(exc.ename)
        return "ran"

    assert await asyncio.get_running_loop().run_in_executor(None, run_it) == "SyntaxError"
    document = json.loads((NOTEBOOKS / "complex_parameters.ipynb").read_text())
    answer = await validate(api, who(), {"notebook": {"content": document}})
    assert answer["valid"] is False
    assert answer["errors"] == [
        {
            "field": "spec.notebook.content",
            "message": "the parameters cell is not valid Python (line 14: invalid syntax)",
        }
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nbformat": 5}, "nbformat must be 4 (or 3, upgraded to 4), not 5"),
        ({"nbformat_minor": "4"}, "nbformat_minor must be a non-negative integer, not '4'"),
        ({"cells": [{"cell_type": "code", "source": ["x"]}]}, "cells.0: "),
    ],
)
async def test_a_document_that_is_not_a_notebook_is_refused_with_the_reason(
    api: Api, change: dict[str, Any], message: str
) -> None:
    document = {**json.loads((NOTEBOOKS / "simple_execute.ipynb").read_text()), **change}
    answer = await validate(api, who(), {"notebook": {"content": document}})
    assert answer["valid"] is False
    assert answer["errors"][0]["field"] == "spec.notebook.content"
    assert message in answer["errors"][0]["message"]


async def test_duplicate_cell_ids_are_refused_not_repaired(api: Api) -> None:
    document = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2")])
    document.cells[1].id = document.cells[0].id
    answer = await validate(api, who(), {"notebook": {"content": dict(document)}})
    assert answer["valid"] is False
    assert "duplicate cell id" in answer["errors"][0]["message"]


async def test_the_inputs_option_is_strict_or_lenient(api: Api) -> None:
    document = json.loads((NOTEBOOKS / "simple_execute.ipynb").read_text())
    user = who()
    for options in ({}, {"inputs": "strict"}, {"inputs": "lenient"}):
        spec = {"notebook": {"content": document}, "options": options}
        assert (await validate(api, user, spec))["valid"] is True
    wrong = await validate(api, user, {"notebook": {"content": document}, "options": {"inputs": "loose", "x": 1}})
    assert [e["field"] for e in wrong["errors"]] == ["spec.options.inputs", "spec.options.x"]
    assert "'strict'" in wrong["errors"][0]["message"]
    assert "'lenient'" in wrong["errors"][0]["message"]


async def test_inputs_are_typed_unless_lenient_or_there_is_no_parameters_cell(
    api: Api, create_agent: Any, create_workflow: Any
) -> None:
    user = who()
    agent = await create_agent(user=user, framework="notebook")
    simple = json.loads((NOTEBOOKS / "simple_execute.ipynb").read_text())
    no_parameters = json.loads((NOTEBOOKS / "no_parameters.ipynb").read_text())
    inputs = {"msg": "hi", "zeta": 1}
    strict = await create_workflow(user, agent["id"], spec={"notebook": {"content": simple}})
    lenient = await create_workflow(
        user, agent["id"], spec={"notebook": {"content": copy.deepcopy(simple)}, "options": {"inputs": "lenient"}}
    )
    bare = await create_workflow(user, agent["id"], spec={"notebook": {"content": no_parameters}})

    refused = await api("POST", "workflows", strict["id"], "execute", user=user, body={"inputs": inputs})
    assert refused.status == 422
    assert [e["field"] for e in refused.json["errors"]] == ["inputs.zeta"]
    for workflow in (lenient, bare):
        accepted = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": inputs})
        assert accepted.status == 202, accepted.text
        assert list(accepted.json["inputs"]) == ["msg", "zeta"]
        cancel = await api("POST", "executions", accepted.json["id"], "cancel", user=user)  # no worker runs here
        assert cancel.status == 200
