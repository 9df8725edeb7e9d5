"""AI nodes on the organization's model: n8n's OpenAI credential, provisioned from an OpenAI-compatible integration.

A workflow built in n8n's editor points its **OpenAI Chat Model** nodes at a
credential of the person's own instance. Run from here, those nodes use the
run's model integration instead (the node's ``model`` option, else the run's
default model: the organization's, or the local SmolLM2 server): the run puts
an ``openAiApi`` credential named ``orchestrator <integration>`` on the
instance (its ``url`` the integration's base URL, its key the integration's
secret) and our copy's model nodes use it, with the integration's model and
the Chat Completions API (``responsesApiEnabled`` off: OpenAI-compatible
servers have no Responses API).

One instance may serve several organizations (each with an ``n8n``
integration pointing at it): the credential's name carries a short hash of
the run's organization (``orchestrator <integration> [<hash>]``) and is found
by that name, so two organizations' integrations of the same name never
overwrite each other's URL and key.

The binding is part of our copy's digest, so a changed integration (URL,
model or key) gives a new webhook path: the first call answers 404 and the
copy and its credential are updated then; the hot path does nothing more.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import model_endpoint
from ..runtime import RunContext
from .api import N8nApi

CHAT_MODEL_TYPE = "@n8n/n8n-nodes-langchain.lmChatOpenAi"
CREDENTIAL_TYPE = "openAiApi"
#: the first version of the chat model node with the Responses API switch (on by default)
RESPONSES_SWITCH_VERSION = 1.3


@dataclass(frozen=True)
class ModelBinding:
    """The model integration a run's AI nodes use, and (once provisioned) its credential on the instance."""

    integration: str
    base_url: str
    model: str
    api_key: str | None
    credential_id: str | None = None
    #: the run's organization: its credential is its own on an instance organizations share
    org_id: str | None = None

    @property
    def credential_name(self) -> str:
        if not self.org_id:
            return f"orchestrator {self.integration}"
        return f"orchestrator {self.integration} [{org_tag(self.org_id)}]"

    def fingerprint(self) -> str:
        """What the copy's digest takes from the binding (the key only as a hash; the credential's name)."""
        key = hashlib.sha256((self.api_key or "").encode()).hexdigest()[:12]
        owner = f"|{org_tag(self.org_id)}" if self.org_id else ""
        return f"{self.integration}|{self.base_url}|{self.model}|{key}{owner}"


def org_tag(org_id: str) -> str:
    """A short, stable hash of an organization's id: its credentials' names on a shared instance (the id itself
    is not shown to the instance's other users)."""
    return hashlib.sha256(f"orchestrator-org:{org_id}".encode()).hexdigest()[:12]


def model_nodes(workflow: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The nodes that take an OpenAI credential (the OpenAI Chat Model node)."""
    found = []
    for node in workflow.get("nodes") or []:
        credentials = node.get("credentials") if isinstance(node, Mapping) else None
        if node.get("type") == CHAT_MODEL_TYPE or (isinstance(credentials, Mapping) and CREDENTIAL_TYPE in credentials):
            found.append(node)
    return found


def binding_for(workflow: Mapping[str, Any], context: RunContext, name: str | None) -> ModelBinding | None:
    """The model the workflow's AI nodes use in this run (None: it has none); a configuration error if missing."""
    if not model_nodes(workflow):
        return None
    endpoint = model_endpoint(context, name)
    return ModelBinding(
        endpoint.integration, endpoint.base_url, endpoint.model, endpoint.api_key, org_id=context.org_id
    )


def bind(node: Mapping[str, Any], binding: ModelBinding) -> dict[str, Any]:
    """A model node of our copy: the binding's credential (by id once known), model and Chat Completions API."""
    if node.get("type") != CHAT_MODEL_TYPE and CREDENTIAL_TYPE not in (node.get("credentials") or {}):
        return dict(node)
    reference = {"name": binding.credential_name, **({"id": binding.credential_id} if binding.credential_id else {})}
    bound = {**node, "credentials": {**(node.get("credentials") or {}), CREDENTIAL_TYPE: reference}}
    if node.get("type") == CHAT_MODEL_TYPE:
        parameters = dict(node.get("parameters") or {})
        chosen = parameters.get("model")
        if binding.model:
            parameters["model"] = (
                {"__rl": True, "mode": "id", "value": binding.model} if isinstance(chosen, dict) else binding.model
            )
        if float(node.get("typeVersion") or 1) >= RESPONSES_SWITCH_VERSION:
            parameters["responsesApiEnabled"] = False
        bound["parameters"] = parameters
    return bound


def provision_credential(api: N8nApi, binding: ModelBinding) -> ModelBinding:
    """The binding's credential on the instance, created or updated with the integration's URL and key."""
    body = {
        "name": binding.credential_name,
        "type": CREDENTIAL_TYPE,
        "data": {"apiKey": binding.api_key or "none", "url": binding.base_url},
    }
    existing = _credentials_named(api, binding.credential_name)
    if existing:
        api.call("PATCH", f"credentials/{existing[0]}", body)
        credential_id = existing[0]
    else:
        credential_id = str(api.call("POST", "credentials", body)["id"])
    return dataclasses.replace(binding, credential_id=credential_id)


def _credentials_named(api: N8nApi, name: str) -> list[str]:
    body = api.call("GET", "credentials", query={"limit": 250})
    listed = (body.get("data") or []) if isinstance(body, dict) else []
    return [
        str(c["id"])
        for c in listed
        if isinstance(c, dict) and c.get("name") == name and c.get("type") == CREDENTIAL_TYPE and c.get("id")
    ]
