"""Notebook runs end to end: REST → queue → worker → papermill on a warm kernel → outputs."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.engine.conftest import notebook, who


async def test_a_notebook_runs_with_its_inputs_and_records_outputs(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    nb = notebook(
        "from orchestrator_runtimes import record\nprint('hello', n)\nrecord('double', n * 2)\nrecord('who', name)",
        parameters="n = 1\nname = 'x'",
    )
    workflow = await notebook_workflow(user, nb)
    async with workers():
        run = await run_to_end(user, workflow["id"], inputs={"n": 21, "name": "ada"})
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"double": 42, "who": "ada"}
    assert run["attempt"] == 1
