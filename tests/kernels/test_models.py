"""``model()`` finds the model a run would use, and gives each framework its own chat model object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from orchestrator_kernels import models
from orchestrator_kernels.chat import OrchestratorChatModel
from orchestrator_kernels.models import NoModel, chat_model, find_endpoint
from orchestrator_runtimes.models import ModelEndpoint

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer

pytestmark = [
    # CrewAI's package import trips ImportWarning, and it warns about its own deprecated fields (as in tests/runtimes)
    pytest.mark.filterwarnings("ignore::ImportWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai"),
]
LOCAL = {"kind": "openai-compatible", "config": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}}


def test_inside_a_run_the_handed_integrations_win(tmp_path: Path) -> None:
    handed = {"default": {**LOCAL, "secret": "k1"}, "other": {**LOCAL, "secret": None}, "n8n": {"kind": "n8n"}}
    env = {"ORCHESTRATOR_INTEGRATIONS": json.dumps(handed), "ORCHESTRATOR_MODEL_BASE_URL": "http://elsewhere/v1"}
    assert find_endpoint(environ=env) == ModelEndpoint("default", "http://127.0.0.1:9/v1", "m", "k1")
    assert find_endpoint("other", environ=env).integration == "other"
    with pytest.raises(NoModel, match="no model integration 'n8n' was handed to this run"):
        find_endpoint("n8n", environ=env)


def test_a_named_url_then_the_local_model(tmp_path: Path) -> None:
    nowhere = {"JUPYTER_RUNTIME_DIR": str(tmp_path)}  # no server running there: the API is not asked
    env = {**nowhere, "ORCHESTRATOR_MODEL_BASE_URL": "http://h/v1/", "ORCHESTRATOR_MODEL_API_KEY": "sk"}
    assert find_endpoint(environ=env) == ModelEndpoint("environment", "http://h/v1", "SmolLM2-135M-Instruct", "sk")
    local = {**nowhere, "ORCHESTRATOR_LOCAL_MODEL_URL": "http://127.0.0.1:8765/v1"}
    assert find_endpoint(environ=local).integration == "local-model"
    with pytest.raises(NoModel, match="add an integration of kind 'openai-compatible'"):
        find_endpoint(environ=nowhere)


def test_the_organizations_integration_through_the_api(server: PersonalServer) -> None:
    client = Client(server.url, server.token)
    body = {"kind": "openai-compatible", "name": "keyed", "config": {"base_url": "http://m/v1", "model": "big"}}
    assert server.call("POST", "/integrations", {**body, "secret": "sk-live"}).status == 201
    assert find_endpoint(client=client, environ={}).integration == "default"
    with pytest.raises(NoModel, match="set ORCHESTRATOR_MODEL_API_KEY"):
        find_endpoint("keyed", client=client, environ={})
    keyed = find_endpoint("keyed", client=client, environ={"ORCHESTRATOR_MODEL_API_KEY": "sk-live"})
    assert (keyed.base_url, keyed.model, keyed.api_key) == ("http://m/v1", "big", "sk-live")
    with pytest.raises(NoModel, match="no model integration named 'absent'"):
        find_endpoint("absent", client=client, environ={})


def test_each_framework_gets_its_own_model_object() -> None:
    endpoint = ModelEndpoint("default", "http://127.0.0.1:9/v1", "m")
    from agno.models.openai.like import OpenAILike
    from crewai.llms.base_llm import BaseLLM

    assert isinstance(chat_model("crewai", endpoint, {"max_tokens": 8}), BaseLLM)
    assert isinstance(chat_model("agno", endpoint, {}), OpenAILike)
    assert isinstance(chat_model("langgraph", endpoint, {}), OrchestratorChatModel)
    with pytest.raises(ValueError, match="no chat model for the framework 'n8n'"):
        chat_model("n8n", endpoint, {})


def test_the_langgraph_chat_model_talks_to_the_real_local_model(local_model: dict[str, Any]) -> None:
    endpoint = ModelEndpoint("local", local_model["config"]["base_url"], local_model["config"]["model"])
    chat = chat_model("langgraph", endpoint, {"max_tokens": 8, "temperature": 0})
    reply = chat.invoke("Say hello.")
    assert isinstance(reply.content, str)
    assert reply.content.strip()
    assert reply.usage_metadata["output_tokens"] > 0

    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    with_tools = chat.bind_tools([weather], tool_choice="weather")
    answer = with_tools.invoke("What is the weather in Paris?")
    assert [call["name"] for call in answer.tool_calls] == ["weather"]


def test_a_code_first_build_gets_the_runs_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_handed", None)
    from crewai import LLM

    llm = LLM(model="openai/m", base_url="http://127.0.0.1:9/v1", api_key="x")
    models.hand_over({"llm": llm, "endpoint": None})
    assert models.model(framework="crewai") is llm
    with pytest.raises(NoModel, match="handed this build no model"):
        models.model(framework="agno")
