"""``ORCHESTRATOR_N8N_IN_WORKER=0``: a runner process runs n8n runs through the runtime, driven by the very code
the worker drives them with (inline.drive, on an event loop of its own), its watcher forked beside it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestrator_runtimes.n8n import N8nRuntime
from orchestrator_runtimes.runtime import ErrorKind, RunContext, RunError, RunResult
from orchestrator_runtimes.spec import validate_spec

from tests.n8n.conftest import N8n, exported
from tests.n8n.test_n8n_spec import n8n_spec

pytestmark = pytest.mark.timeout(180)


def run(n8n: N8n, workdir: Path, workflow: str, inputs: dict[str, Any]) -> list[Any]:
    return list(run_events(n8n, workdir, workflow, inputs))


def run_events(n8n: N8n, workdir: Path, workflow: str, inputs: dict[str, Any]) -> Iterator[Any]:
    """The runtime's events as it yields them (a failed run's steps come before its error)."""
    spec, problems = validate_spec({**n8n_spec(exported(workflow)), "timeout_seconds": 60}, "n8n")
    assert spec is not None, problems
    instance = {"kind": "n8n", "config": {"base_url": n8n.base_url}, "secret": n8n.api_key}
    context = RunContext(
        execution_id=str(uuid.uuid4()),
        attempt=1,
        workdir=workdir,
        integrations={"n8n": instance},
        workflow_id=str(uuid.uuid4()),
    )
    yield from N8nRuntime().run(spec, inputs, context)


def collect(events: Iterator[Any], into: list[Any]) -> None:
    """Keeps each event as it comes, so those yielded before an error stay for the test to check."""
    for event in events:
        into.append(event)


def test_a_runner_runs_the_workflow_and_reports_its_steps(n8n: N8n, tmp_path: Path) -> None:
    events = run(n8n, tmp_path, "greet", {"name": "Ada"})
    result = events[-1]
    assert isinstance(result, RunResult)
    assert result.outputs["output"] == {"greeting": "Hello, Ada!", "letters": 3}
    assert [event.data["node"] for event in events[:-1]] == ["Webhook", "Greet", "Respond to Webhook"]
    assert [step["node"] for step in result.outputs["steps"]] == ["Webhook", "Greet", "Respond to Webhook"]
    assert (tmp_path / "n8n-run-ended").exists()  # its watcher is told the run ended


def test_a_runner_names_the_failing_node(n8n: N8n, tmp_path: Path) -> None:
    events: list[Any] = []
    with pytest.raises(RunError) as caught:
        collect(run_events(n8n, tmp_path, "fail", {"name": "Ada"}), into=events)
    # the steps before the failing node are reported before the error, as the worker's own path streams them
    assert [(event.data["node"], event.data["status"]) for event in events][:1] == [("Webhook", "succeeded")]
    assert "Check Name" in [event.data["node"] for event in events]
    assert caught.value.kind is ErrorKind.CODE
    assert "n8n node 'Check Name' failed" in caught.value.message
    assert "no greeting for Ada" in caught.value.message


def test_a_runner_keeps_no_client_once_its_run_ended(n8n: N8n, tmp_path: Path) -> None:
    from orchestrator_runtimes.n8n import inline

    before = dict(inline._clients)
    run(n8n, tmp_path, "greet", {"name": "Bo"})
    assert inline._clients == before  # its loop's client closed with it: a runner serving more runs holds none
