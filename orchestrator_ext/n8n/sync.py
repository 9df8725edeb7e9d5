"""``POST /workflows/{id}/sync-from-n8n``: the workflow as saved on the n8n instance, as our next version.

A run keeps our copy of an exported workflow on the instance as ``<name>
[orchestrator <our id>]`` (see ``orchestrator_runtimes.n8n.run``); a person may
edit that copy in n8n's editor. Syncing reads it back through n8n's public API
with the organization's ``n8n`` integration (its key decrypted here, never
shown) and undoes what placing it there did (the webhook's path under our id
and digest, the header naming n8n's execution, the name's suffix), so the new
version is the workflow as the person sees it in the editor, in n8n's export
form. Nothing changed: no new version. The version is saved as ``PUT
/workflows/{id}`` saves one (the same checks, audit and ``workflows:write``
permission); a workflow of another organization is 404, one that is not an
n8n workflow or has no copy on the instance yet is a 409.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

from orchestrator_runtimes.n8n.answer import STEPS_HEADER
from orchestrator_runtimes.n8n.api import N8nApi, N8nApiError
from orchestrator_runtimes.n8n.models import CHAT_MODEL_TYPE, CREDENTIAL_TYPE
from orchestrator_runtimes.n8n.run import EXECUTION_HEADER
from orchestrator_runtimes.n8n.spec import RESPOND_TYPE, WEBHOOK_TYPE
from sqlalchemy import func, select

from ..db.models import Agent, Integration
from ..errors import Conflict, ServiceUnavailable
from ..schemas.workflows import DescribeWorkflow, UpdateWorkflow
from ..security.permissions import Permission
from ..services.container import Services
from ..services.integrations import secret_context
from ..services.scope import Identity
from ..services.workflows import load_version, load_workflow


async def sync_from_n8n(services: Services, identity: Identity, workflow_id: uuid.UUID) -> DescribeWorkflow:
    """Save the instance's copy of the workflow as its next version (or keep the current one when unchanged)."""
    spec, api, version = await _current(services, identity, workflow_id)
    node = _n8n_node(spec)
    config = dict(node.get("config") or {})
    if config.get("workflow") is None:
        raise Conflict(
            "This workflow runs the instance's workflow by its id: every run uses it as saved there, "
            "there is nothing to pull.",
            current_version=version,
        )
    try:
        saved = await asyncio.to_thread(_read_copy, api, str(workflow_id), config["workflow"])
    except N8nApiError as exc:
        raise ServiceUnavailable(f"The n8n instance could not be read: {exc.message}") from exc
    if saved == config["workflow"]:
        return await services.workflows.get(identity, workflow_id)
    node["config"] = {**config, "workflow": saved}
    body = UpdateWorkflow(spec=spec, comment="synced from n8n")
    return await services.workflows.update(identity, workflow_id, body, frozenset({version}))


async def _current(
    services: Services, identity: Identity, workflow_id: uuid.UUID
) -> tuple[dict[str, Any], N8nApi, int]:
    """The current spec (a copy), the instance it runs on, and the current version number."""
    async with services.scopes.enter(identity) as scope:
        workflow = await load_workflow(scope, workflow_id, Permission.WORKFLOWS_WRITE)
        framework = (await scope.session.execute(select(Agent.framework).where(Agent.id == workflow.agent_id))).scalar()
        if framework != "n8n":
            raise Conflict(f"This workflow's agent runs '{framework}', not n8n: there is no n8n workflow to pull.")
        current = await load_version(scope, workflow.id, workflow.current_version)
        spec = copy.deepcopy(current.spec if current is not None else {})
        name = _instance_name(spec)
        stmt = select(Integration).where(
            Integration.org_id == workflow.org_id, Integration.kind == "n8n", func.lower(Integration.name) == name
        )
        found = (await scope.session.execute(stmt)).scalars().all()
        if len(found) != 1 or not found[0].secret_encrypted:
            raise Conflict(f"The organization has no n8n integration '{name}' with an API key to read the instance.")
        key = services.keyring.decrypt(found[0].secret_encrypted, secret_context(found[0].id))
        base_url = str((found[0].config or {}).get("base_url") or "")
        return spec, N8nApi(base_url, key, timeout=15), workflow.current_version


def _n8n_node(spec: dict[str, Any]) -> dict[str, Any]:
    nodes = [node for node in spec.get("nodes") or [] if node.get("type") == "n8n_workflow"]
    if len(nodes) != 1:
        raise Conflict("The workflow's spec has no single 'n8n_workflow' node to pull into.")
    return nodes[0]  # type: ignore[no-any-return]


def _instance_name(spec: dict[str, Any]) -> str:
    """The n8n integration the workflow runs on: its node's ``instance``, else the one n8n integration it names."""
    node: dict[str, Any] = next((n for n in spec.get("nodes") or [] if n.get("type") == "n8n_workflow"), {})
    chosen = (node.get("config") or {}).get("instance")
    names = [str(n) for n in spec.get("integrations") or []]
    return str(chosen or (names[0] if len(names) == 1 else "n8n")).lower()


def _read_copy(api: N8nApi, our_id: str, exported: dict[str, Any]) -> dict[str, Any]:
    """Our copy on the instance, in n8n's export form, as it was before it was placed there."""
    name = f"{exported.get('name') or 'workflow'} [orchestrator {our_id}]"
    listed = api.workflows(name=name)
    if not listed:
        raise Conflict(
            f"The n8n instance has no copy of this workflow ('{name}'): run it once, which puts it there, "
            "then edit it in n8n's editor."
        )
    if not isinstance(listed[0], dict) or listed[0].get("id") in (None, ""):
        raise ServiceUnavailable(f"The n8n instance listed the copy '{name}' without an id.")
    saved = _checked(api.call("GET", f"workflows/{listed[0]['id']}"), name)
    before = {n.get("name"): n for n in exported.get("nodes") or [] if isinstance(n, dict)}
    pulled = copy.deepcopy(exported)  # its other keys (id, meta, pinData) as they were
    pulled["nodes"] = [_unbound(_unplaced(node, our_id, before), before) for node in saved.get("nodes") or []]
    pulled["connections"] = saved.get("connections") or {}
    # n8n adds settings of its own on save: the exported ones, as edited there
    mine = exported.get("settings") or {}
    pulled["settings"] = {key: (saved.get("settings") or {}).get(key, value) for key, value in mine.items()}
    return pulled


def _checked(saved: Any, name: str) -> dict[str, Any]:
    """The instance's copy, refused (409, naming the node) where its shape is not n8n's: an edit there (or another
    client) may have saved anything, and the pull must answer with what is wrong, not a 500."""
    if not isinstance(saved, dict):
        raise Conflict(f"The n8n instance's copy '{name}' is not a workflow object.")
    nodes = saved.get("nodes") or []
    if not isinstance(nodes, list):
        raise Conflict(f"The n8n instance's copy '{name}' has 'nodes' that are not a list.")
    for index, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise Conflict(f"The n8n instance's copy '{name}': its node #{index + 1} is not an object.")
        _check_node(node, name)
    for key in ("connections", "settings"):
        if not isinstance(saved.get(key) or {}, dict):
            raise Conflict(f"The n8n instance's copy '{name}' has '{key}' that is not an object.")
    return saved


def _check_node(node: dict[str, Any], name: str) -> None:
    """The parts of a node the pull reads: objects where n8n writes objects, its header entries objects."""
    label = f"The n8n instance's copy '{name}': node '{node.get('name')}'"
    if not isinstance(node.get("name"), str | None):
        raise Conflict(f"{label} has a name that is not text.")
    parameters, credentials = node.get("parameters") or {}, node.get("credentials") or {}
    if not isinstance(parameters, dict) or not isinstance(credentials, dict):
        raise Conflict(f"{label} has 'parameters' or 'credentials' that are not an object.")
    if not isinstance(credentials.get(CREDENTIAL_TYPE) or {}, dict):
        raise Conflict(f"{label} has a '{CREDENTIAL_TYPE}' credential that is not an object.")
    if node.get("type") not in (WEBHOOK_TYPE, RESPOND_TYPE):
        return
    options = parameters.get("options") or {}
    headers = options.get("responseHeaders") or {} if isinstance(options, dict) else None
    if not isinstance(headers, dict) or not isinstance(headers.get("entries") or [], list):
        raise Conflict(f"{label} has 'options.responseHeaders' that are not n8n's.")
    if not all(isinstance(entry, dict) for entry in headers.get("entries") or []):
        raise Conflict(f"{label} has a response header entry that is not an object.")


def _unplaced(node: dict[str, Any], our_id: str, before: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """A node as the person sees it in the editor: its webhook path, webhook id and answer headers its own."""
    node = copy.deepcopy(node)
    if (before.get(node.get("name")) or {}).get("webhookId"):
        node["webhookId"] = before[node["name"]]["webhookId"]
    parameters = node.get("parameters") or {}  # its shape checked by _check_node
    if node.get("type") == WEBHOOK_TYPE:
        path, prefix = str(parameters.get("path") or ""), f"orchestrator/{our_id}/"
        if path.startswith(prefix):
            parameters["path"] = path[len(prefix) :].split("/", 1)[-1]  # without our id and the digest
    if node.get("type") in (WEBHOOK_TYPE, RESPOND_TYPE):
        options = parameters.get("options") or {}
        headers = options.get("responseHeaders") or {}
        ours = (EXECUTION_HEADER, STEPS_HEADER)
        entries = [e for e in headers.get("entries") or [] if str(e.get("name", "")).lower() not in ours]
        if entries:
            headers["entries"] = entries
        else:
            options.pop("responseHeaders", None)
    return node


def _unbound(node: dict[str, Any], before: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """A model node without the run's binding (credential, model, API switch): as it was exported."""
    credentials = node.get("credentials") or {}
    ours = str((credentials.get(CREDENTIAL_TYPE) or {}).get("name", "")).startswith("orchestrator ")
    if not ours:
        return node
    exported = before.get(node.get("name")) or {}
    if exported.get("credentials") is not None:
        node["credentials"] = copy.deepcopy(exported["credentials"])
    else:
        node.pop("credentials", None)
    if node.get("type") == CHAT_MODEL_TYPE:
        parameters, was = node.get("parameters") or {}, exported.get("parameters") or {}
        node["parameters"] = parameters
        for key in ("model", "responsesApiEnabled"):
            if key in was:
                parameters[key] = copy.deepcopy(was[key])
            else:
                parameters.pop(key, None)
    return node
