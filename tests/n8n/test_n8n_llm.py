"""An n8n Basic LLM Chain with the OpenAI Chat Model node, run against the local model server (SmolLM2).

The workflow (tests/n8n/workflows/llm_chain.json) is as n8n's editor exports it,
its model node pointing at a credential of someone else's instance
("OpenAi account"); run from here, the run provisions the ``openAiApi``
credential from the organization's OpenAI-compatible integration and binds
the node to it.
"""

from __future__ import annotations

from typing import Any

from orchestrator_runtimes.n8n.api import N8nApi
from orchestrator_runtimes.n8n.models import org_tag

from tests.conftest import Api
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import N8n, exported
from tests.n8n.test_n8n_runs import add_instance, execute, n8n_workflow
from tests.n8n.test_n8n_spec import n8n_spec


async def test_a_basic_llm_chain_runs_on_the_organizations_model(
    api: Api, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n, local_model: dict[str, Any]
) -> None:
    user = who()
    await add_instance(api, user, n8n)
    body = {"name": "local-model", "kind": "openai-compatible", "config": local_model["config"]}
    added = await api("POST", "integrations", user=user, body=body)
    assert added.status == 201, added.text
    spec = n8n_spec(exported("llm_chain"), model="local-model")
    spec["integrations"] = ["n8n", "local-model"]
    spec["timeout_seconds"] = 120
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, spec)
    async with workers():
        run = await wait_final(api, user, await execute(api, user, workflow_id, {"question": "Say hi."}), within=180)
    assert run["status"] == "succeeded", run
    answer = run["outputs"]["output"]
    assert isinstance(answer.get("text"), str)
    assert answer["text"].strip(), answer
    steps = {step["node"]: step for step in run["outputs"]["steps"]}
    assert steps["Basic LLM Chain"]["status"] == "succeeded"
    assert steps["OpenAI Chat Model"]["type"] == "@n8n/n8n-nodes-langchain.lmChatOpenAi"
    # the credential on the instance is the integration's: its URL, named after it and the organization
    client = N8nApi(n8n.base_url, n8n.api_key)
    named = f"orchestrator local-model [{org_tag(str(run['org_id']))}]"
    credentials = client.call("GET", "credentials")["data"]
    assert named in [c["name"] for c in credentials]
    ours = next(w for w in client.workflows() if w["name"] == f"Ask the model [orchestrator {workflow_id}]")
    model_node = next(n for n in client.workflow(str(ours["id"]))["nodes"] if n["name"] == "OpenAI Chat Model")
    assert model_node["credentials"]["openAiApi"]["name"] == named
    assert model_node["parameters"]["model"]["value"] == local_model["config"]["model"]
    assert model_node["parameters"]["responsesApiEnabled"] is False
