"""The n8n runtime's spec checks and the mapping of n8n's executions (no n8n needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from orchestrator_runtimes.n8n import N8nRuntime
from orchestrator_runtimes.n8n.run import (
    EXECUTION_HEADER,
    MARKER_HEADER,
    desired,
    failure,
    instance_for,
    marker_of,
    steps_of,
)
from orchestrator_runtimes.n8n.spec import N8nWorkflowConfig
from orchestrator_runtimes.runtime import ErrorKind, RunContext, RunError, Runtime, load_runtime
from orchestrator_runtimes.spec import validate_spec

from tests.n8n.conftest import exported


def n8n_spec(workflow: dict[str, Any] | None = None, **config: Any) -> dict[str, Any]:
    """An n8n agent's workflow spec around an exported n8n workflow; the instance integration 'n8n'."""
    if workflow is not None:
        config["workflow"] = workflow
    return {"nodes": [{"id": "flow", "type": "n8n_workflow", "config": config}], "integrations": ["n8n"]}


def problems(spec: dict[str, Any]) -> dict[str, str]:
    _, found = validate_spec(spec, "n8n")
    return {p.field: p.message for p in found}


def test_the_runtime_is_installed_and_declares_itself() -> None:
    runtime = load_runtime("n8n")
    assert isinstance(runtime, N8nRuntime)
    assert isinstance(runtime, Runtime)
    assert runtime.missing() is None


@pytest.mark.parametrize("name", ["greet", "fail", "slow"])
def test_exported_workflows_are_valid(name: str) -> None:
    assert problems(n8n_spec(exported(name))) == {}


def test_a_workflow_id_is_valid_too() -> None:
    assert problems(n8n_spec(workflow_id="Ab12Cd34")) == {}


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({}, "spec.nodes.0.config", "exactly one of 'workflow'"),
        ({"workflow": {"nodes": []}}, "spec.nodes.0.config.workflow", "has no nodes"),
        ({"workflow_id": "x", "colour": "red"}, "spec.nodes.0.config.colour", "unknown"),
    ],
)
def test_bad_configs_name_the_field(config: dict[str, Any], field: str, words: str) -> None:
    found = problems({"nodes": [{"id": "flow", "type": "n8n_workflow", "config": config}]})
    assert field in found, found
    assert words in found[field]


def test_a_workflow_without_a_webhook_cannot_run_from_here() -> None:
    workflow = exported("greet")
    workflow["nodes"] = [n for n in workflow["nodes"] if n["name"] != "Webhook"]
    found = problems(n8n_spec(workflow))
    assert "needs exactly one webhook node" in found["spec.nodes.0.config.workflow"]


def test_one_n8n_workflow_node_and_no_other_kind() -> None:
    two = {"nodes": [{"id": f"f{i}", "type": "n8n_workflow", "config": {"workflow_id": "x"}} for i in range(2)]}
    assert "exactly one 'n8n_workflow' node" in problems(two)["spec.nodes"]
    model = {"nodes": [{"id": "m", "type": "model", "config": {}}]}
    assert "runs 'n8n_workflow' nodes" in problems(model)["spec.nodes.0.type"]


def test_the_instance_is_the_n8n_integration_handed_to_the_run(tmp_path: Path) -> None:
    config = N8nWorkflowConfig(workflow_id="x")
    instance = {"kind": "n8n", "config": {"base_url": "http://127.0.0.1:9"}, "secret": "key"}
    model = {"kind": "openai-compatible", "config": {"base_url": "http://m/v1", "model": "m"}, "secret": None}
    api = instance_for(config, {"n8n": instance, "local-model": model})
    assert (api.base_url, api.api_key) == ("http://127.0.0.1:9", "key")
    with pytest.raises(RunError) as caught:
        instance_for(config, {"local-model": model})
    assert caught.value.kind is ErrorKind.CONFIGURATION
    assert "integrations" in caught.value.message
    with pytest.raises(RunError, match="'other' was not handed"):
        instance_for(N8nWorkflowConfig(workflow_id="x", instance="other"), {"n8n": instance})


def test_an_unreachable_instance_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator_runtimes.n8n import run as n8n_run

    monkeypatch.setattr(n8n_run, "START_SECONDS", 0.5)
    spec, _ = validate_spec(n8n_spec(workflow_id="x"), "n8n")
    assert spec is not None
    instance = {"kind": "n8n", "config": {"base_url": "http://127.0.0.1:9"}, "secret": "key"}
    context = RunContext(execution_id="e", attempt=1, workdir=tmp_path, integrations={"n8n": instance})
    with pytest.raises(RunError) as caught:
        list(N8nRuntime().run(spec, {}, context))
    assert caught.value.kind is ErrorKind.CONFIGURATION
    assert "unreachable" in caught.value.message


#: an n8n execution as the public API returns it with includeData (trimmed from a real one)
FAILED_EXECUTION: dict[str, Any] = {
    "id": "7",
    "status": "error",
    "data": {
        "resultData": {
            "runData": {
                "Webhook": [{"startTime": 1, "executionTime": 0, "data": {"main": [[{"json": {"body": {"n": 1}}}]]}}],
                "Ask": [
                    {
                        "startTime": 2,
                        "executionTime": 12,
                        "error": {"message": "Connection refused"},
                        "data": {"main": [[{"json": {"tokenUsage": {"promptTokens": 3, "totalTokens": 3}}}]]},
                    }
                ],
            },
            "lastNodeExecuted": "Ask",
            "error": {"message": "Connection refused", "node": {"name": "Ask"}},
        }
    },
}


def test_steps_and_errors_come_from_n8ns_execution() -> None:
    types = {"Webhook": "n8n-nodes-base.webhook", "Ask": "@n8n/n8n-nodes-langchain.lmChatOpenAi"}
    steps = steps_of(FAILED_EXECUTION, types)
    assert [(s["node"], s["status"]) for s in steps] == [("Webhook", "succeeded"), ("Ask", "failed")]
    assert steps[1]["latency_ms"] == 12
    assert steps[1]["prompt_tokens"] == 3
    error = failure(FAILED_EXECUTION, types, 500, {"message": "Error in workflow"})
    assert error.kind is ErrorKind.MODEL
    assert error.details["node"] == "Ask"
    assert error.message == "n8n node 'Ask' failed: Connection refused"


def test_our_copy_answers_with_its_execution_id_and_saves_no_progress() -> None:
    """The hot path reads n8n's execution by the id its answer carries (no listing); n8n writes no progress."""
    workflow = exported("greet")
    placed = desired(workflow, "w1")
    respond = next(n for n in placed["nodes"] if n["name"] == "Respond to Webhook")
    assert {"name": EXECUTION_HEADER, "value": "={{ $execution.id }}"} in (
        respond["parameters"]["options"]["responseHeaders"]["entries"]
    )
    assert "saveExecutionProgress" not in placed["settings"]
    hook = next(n for n in placed["nodes"] if n["name"] == "Webhook")
    assert "responseHeaders" not in hook["parameters"]["options"]  # the Respond node answers
    assert hook["parameters"]["path"].startswith("orchestrator/w1/")
    hook_answers = exported("greet")
    hook_answers["nodes"][0]["parameters"]["responseMode"] = "lastNode"
    answering = next(n for n in desired(hook_answers, "w1")["nodes"] if n["name"] == "Webhook")
    assert answering["parameters"]["options"]["responseHeaders"]["entries"][-1]["name"] == EXECUTION_HEADER
    assert desired(workflow, "w1") == placed  # the same digest: an unchanged workflow is called at once


def test_a_running_executions_marker_is_found_without_saved_progress() -> None:
    """Saved without per-node progress, a running execution keeps only the trigger's output on its stack."""
    item = {"json": {"headers": {MARKER_HEADER: "run-1:1"}, "body": {}}}
    running = {
        "status": "running",
        "data": {
            "resultData": {"runData": {}},
            "executionData": {"nodeExecutionStack": [{"node": {"name": "Webhook"}, "data": {"main": [[item]]}}]},
        },
    }
    assert marker_of(running, "Webhook") == "run-1:1"
    assert marker_of(running, "Other") is None
    done = {"data": {"resultData": {"runData": {"Webhook": [{"data": {"main": [[item]]}}]}}}}
    assert marker_of(done, "Webhook") == "run-1:1"


def test_model_nodes_are_bound_to_the_runs_model_and_unbound_when_pulled_back() -> None:
    from orchestrator_runtimes.n8n.models import ModelBinding

    from orchestrator_ext.n8n.sync import _unbound, _unplaced

    workflow = exported("llm_chain")
    binding = ModelBinding("local-model", "http://127.0.0.1:9/v1", "smol", None, credential_id="C1")
    placed = desired(workflow, "w1", binding)
    node = next(n for n in placed["nodes"] if n["name"] == "OpenAI Chat Model")
    assert node["credentials"] == {"openAiApi": {"name": "orchestrator local-model", "id": "C1"}}
    assert node["parameters"]["model"] == {"__rl": True, "mode": "id", "value": "smol"}
    assert node["parameters"]["responsesApiEnabled"] is False
    # another model (or URL, or key) is another copy: its webhook path changes, so the first call syncs it
    moved = desired(workflow, "w1", ModelBinding("local-model", "http://127.0.0.1:8/v1", "smol", None))
    assert moved["nodes"][0]["parameters"]["path"] != placed["nodes"][0]["parameters"]["path"]
    before = {n["name"]: n for n in workflow["nodes"]}
    assert [_unbound(_unplaced(n, "w1", before), before) for n in placed["nodes"]] == workflow["nodes"]


def test_an_instance_url_that_is_no_url_is_an_unreachable_instance() -> None:
    from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError

    with pytest.raises(N8nApiError) as caught:
        N8nApi("n8n.local:5678", "key").workflows()
    assert caught.value.status == 0
    assert "http://" in caught.value.message
