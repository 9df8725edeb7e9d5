"""One run of an n8n workflow: put it on the instance, call its webhook, read back n8n's execution.

- **sync**: an exported workflow is kept on the instance under its name plus
  ``[orchestrator <our workflow id>]``; it is created, or updated when its nodes,
  connections or settings changed, and activated (n8n registers the webhook
  shortly after: the call retries while the webhook answers 404). The hot path
  does none of this: the webhook's path carries the workflow's digest, so an
  unchanged workflow is called at once and only a 404 syncs it;
- **call**: the webhook gets the inputs (a JSON body, or the query of a GET)
  and a header naming our execution; our copy's answering node (Respond to
  Webhook, or the Webhook itself) sends n8n's execution id back in a header
  (:data:`EXECUTION_HEADER`), so the execution is read by its id, once it
  ended, with no listing or searching;
- **map** (:mod:`.mapping`): each node's run becomes a step (its output items,
  n8n's own timing), the answer the output; a failed execution names the node
  at fault and n8n's message, where the webhook only said "Error in workflow".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import ErrorKind, RunError
from ..runtime import RunResult
from .answer import STEPS_HEADER, expressions
from .api import N8nApi, N8nApiError, error_text, http
from .mapping import MARKER_HEADER, failure, marker_of, steps_of
from .models import ModelBinding, bind, provision_credential
from .spec import RESPOND_TYPE, WEBHOOK_TYPE, N8nWorkflowConfig, webhook_nodes

__all__ = ["MARKER_HEADER", "execute", "failure", "instance_for", "marker_of", "steps_of"]

#: the header our copy of a workflow answers with: n8n's id of the execution the call started
EXECUTION_HEADER = "x-orchestrator-n8n-execution"
#: how our copies are placed on the instance (part of the digest: a new placement updates every copy)
PLACEMENT = 3
#: how long a webhook may answer 404 after activation (n8n registers it asynchronously)
REGISTER_SECONDS = 15.0
#: how long an execution is looked for by its marker, where the answer did not carry its id
FIND_SECONDS = 10.0
#: the first look at an execution after the answer, then each next one up to the last (n8n saves it ~20-40 ms
#: after answering)
READ_BACKOFF = (0.01, 0.1)
#: how long a run waits for an instance that refuses connections (one being started takes 9-25 s)
START_SECONDS = 120.0


def instance_for(config: N8nWorkflowConfig, integrations: Mapping[str, Mapping[str, Any]]) -> N8nApi:
    """The n8n instance the run uses: the integration ``config.instance`` names, else the only n8n one."""
    found = {name: value for name, value in integrations.items() if value.get("kind") == "n8n"}
    if config.instance is not None:
        chosen = found.get(config.instance)
        if chosen is None:
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"the n8n integration '{config.instance}' was not handed to this run: add it to the spec's "
                "'integrations' (and create it, kind n8n, with its base_url and API key)",
            )
    elif len(found) == 1:
        chosen = next(iter(found.values()))
    else:
        what = "no n8n integration" if not found else f"{len(found)} n8n integrations ({', '.join(sorted(found))})"
        raise RunError(
            ErrorKind.CONFIGURATION,
            f"this run received {what}: name the instance in the spec's 'integrations' (e.g. [\"n8n\"], which "
            "`jupyter orchestrator n8n serve` creates) and, with several, in the node's 'instance'",
        )
    refused = (chosen.get("config") or {}).get("refused")  # the server would not run this organization's instance
    if refused:
        raise RunError(ErrorKind.CONFIGURATION, f"no n8n instance for this organization: {refused}")
    base_url = str((chosen.get("config") or {}).get("base_url") or "")
    secret = chosen.get("secret")
    if base_url and not secret and "managed" in (chosen.get("config") or {}):
        raise RunError(
            ErrorKind.CONFIGURATION,
            "the organization's n8n instance did not finish starting within the run's time (the server's log says "
            "why): run it again",
        )
    if not base_url or not secret:
        raise RunError(ErrorKind.CONFIGURATION, "the n8n integration needs a base_url and an API key (its secret)")
    if not base_url.startswith(("http://", "https://")):
        raise RunError(ErrorKind.CONFIGURATION, f"the n8n integration's base_url is no http(s) URL: {base_url!r}")
    return N8nApi(base_url, str(secret))


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def instance_path(our_id: str, digest: str, path: str) -> str:
    """The webhook path an exported workflow gets on the instance: under our workflow's id (two workflows
    exported with the same path never take each other's webhook) and its content's digest (a changed
    workflow answers 404 at its new path until it is synced: the hot path needs no lookup)."""
    return f"orchestrator/{our_id}/{digest}/{path.strip('/')}"


def _with_execution_header(parameters: dict[str, Any], steps: str | None = None) -> dict[str, Any]:
    """A node's parameters whose answer also carries n8n's execution id (:data:`EXECUTION_HEADER`), and where
    given the run's steps (:mod:`.answer`)."""
    options = dict(parameters.get("options") or {})
    headers = dict(options.get("responseHeaders") or {})
    ours = (EXECUTION_HEADER, STEPS_HEADER)
    entries = [e for e in headers.get("entries") or [] if str((e or {}).get("name", "")).lower() not in ours]
    added = [{"name": EXECUTION_HEADER, "value": "={{ $execution.id }}"}]
    if steps is not None:
        added.append({"name": STEPS_HEADER, "value": steps})
    headers["entries"] = [*entries, *added]
    return {**parameters, "options": {**options, "responseHeaders": headers}}


def _placed(node: Mapping[str, Any], our_id: str, digest: str, answers: Mapping[str, str]) -> dict[str, Any]:
    """A node as it goes on the instance: a webhook's path under our id; webhook ids unique to our workflow;
    the answering node (Respond to Webhook, or a Webhook that answers itself) names the execution."""
    placed = dict(node)
    if placed.get("webhookId"):
        placed["webhookId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"orchestrator:{our_id}:{placed.get('name')}"))
    parameters = dict(placed.get("parameters") or {})
    if placed.get("type") == WEBHOOK_TYPE:
        parameters["path"] = instance_path(our_id, digest, str(parameters.get("path") or ""))
        if parameters.get("responseMode") != "responseNode":
            parameters = _with_execution_header(parameters)
        placed["parameters"] = parameters
    elif placed.get("type") == RESPOND_TYPE:
        placed["parameters"] = _with_execution_header(parameters, answers.get(str(placed.get("name"))))
    return placed


def desired(workflow: Mapping[str, Any], our_id: str, binding: ModelBinding | None = None) -> dict[str, Any]:
    """What n8n's public API takes to create or update our copy of an exported workflow (it refuses the rest);
    its AI nodes bound to the run's model (``binding``, part of the digest)."""
    settings = workflow.get("settings") or {}
    nodes: list[Mapping[str, Any]] = list(workflow["nodes"])
    body: dict[str, Any] = {
        "name": f"{workflow.get('name') or 'workflow'} [orchestrator {our_id}]",
        "nodes": nodes,
        "connections": workflow.get("connections") or {},
        # no progress saved node by node (it costs n8n a write per node): a running execution keeps the trigger's
        # output, our marker among its headers, which is how a cancelled run's execution is found
        "settings": {"executionOrder": "v1", **settings},
    }
    bound_to = binding.fingerprint() if binding is not None else None
    answers = expressions(body)
    digest = hashlib.sha256(canon([PLACEMENT, body, bound_to, sorted(answers)]).encode()).hexdigest()[:12]
    placed = [_placed(node, our_id, digest, answers) for node in nodes]
    body["nodes"] = [bind(node, binding) for node in placed] if binding is not None else placed
    return body


def wait_reachable(api: N8nApi) -> None:
    """Wait while the instance refuses connections (the personal mode starts it at the first n8n run), and
    until its public API is mounted: n8n says it is ready a moment before (its API answers 404 meanwhile)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if http("GET", f"{api.base_url}/healthz/readiness", timeout=5).status == 200:
                headers = {"X-N8N-API-KEY": api.api_key}
                if http("GET", f"{api.base_url}/api/v1/workflows?limit=1", None, headers, 5).status != 404:
                    return
        except N8nApiError:
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise N8nApiError(0, f"n8n at {api.base_url} did not become ready within {START_SECONDS:g} s")
        time.sleep(0.5)


def sync(
    api: N8nApi, config: N8nWorkflowConfig, our_id: str, binding: ModelBinding | None = None
) -> tuple[dict[str, Any], bool]:
    """The workflow on the instance, created/updated and active (its model credential provisioned first);
    whether it was just (re)activated."""
    if config.workflow is None:
        workflow = api.workflow(str(config.workflow_id))
    else:
        if binding is not None:
            binding = provision_credential(api, binding)
        body = desired(config.workflow, our_id, binding)
        existing = api.workflows(name=body["name"])
        if not existing:
            workflow = api.create_workflow(body)
        else:  # its webhook answered 404: it changed (or was deactivated on the instance)
            workflow = api.update_workflow(str(existing[0]["id"]), body)
            workflow["active"] = False  # n8n publishes an edited workflow when it is activated again
    if workflow.get("active"):
        return workflow, False
    try:
        api.activate(str(workflow["id"]))
    except N8nApiError as exc:
        raise RunError(ErrorKind.CONFIGURATION, f"n8n could not activate the workflow: {exc.message}") from exc
    return workflow, True


def prepared(
    api: N8nApi, config: N8nWorkflowConfig, our_id: str, binding: ModelBinding | None = None
) -> tuple[dict[str, Any], bool]:
    """:func:`sync`, waiting for an instance being started; n8n's refusals as configuration errors."""
    try:
        try:
            return sync(api, config, our_id, binding)
        except N8nApiError as exc:
            if exc.status != 0:
                raise
            wait_reachable(api)  # being started: wait for it, then go on
            return sync(api, config, our_id, binding)
    except N8nApiError as exc:
        kind = ErrorKind.CONFIGURATION if exc.status in (0, 400, 401, 403, 404) else ErrorKind.INTERNAL
        raise RunError(kind, exc.message, retryable=exc.status == 0) from exc


def webhook_request(api: N8nApi, workflow: Mapping[str, Any], inputs: Mapping[str, Any]) -> tuple[str, str, Any]:
    """The method, URL and body that call the workflow's one Webhook node with the inputs (a query string for
    GET, HEAD and DELETE; a JSON body otherwise): the runner's and the worker's calls share it."""
    hooks = webhook_nodes(dict(workflow))
    if len(hooks) != 1:
        raise RunError(ErrorKind.CONFIGURATION, "the n8n workflow needs exactly one Webhook node to be run from here")
    params = hooks[0].get("parameters") or {}
    method = str(params.get("httpMethod") or "GET").upper()
    url = f"{api.base_url}/webhook/{str(params['path']).strip('/')}"
    body: Any = dict(inputs)
    if method in ("GET", "HEAD", "DELETE"):
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in inputs.items()}
        url += ("?" + urllib.parse.urlencode(query)) if query else ""
        body = None
    return method, url, body


def not_registered(status: int, answer: Any) -> bool:
    """n8n's own 404 for a webhook no active workflow has (not a Respond node's 404)."""
    return status == 404 and "not registered" in error_text(answer)


def find_execution(
    api: N8nApi, workflow_id: str | None, hook_name: str, marker: str, *, finished: bool, within: float = FIND_SECONDS
) -> dict[str, Any] | None:
    """The n8n execution our call started (found by the marker header), waiting until it ends if ``finished``."""
    deadline = time.monotonic() + within
    checked: set[str] = set()  # executions seen with data that are not ours
    while True:
        for listed in api.executions(workflow_id, limit=5):  # newest first, without data: cheap
            if str(listed["id"]) in checked:
                continue
            if finished and not ended(listed):
                continue
            execution = api.execution(str(listed["id"]))
            if marker_of(execution, hook_name) == marker:
                return execution
            checked.add(str(listed["id"]))
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def ended(execution: Mapping[str, Any]) -> bool:
    return bool(execution.get("finished")) or execution.get("status") not in ("running", "new")


def execute(
    api: N8nApi,
    config: N8nWorkflowConfig,
    context: Any,
    inputs: Mapping[str, Any],
    timeout: float,
    on_started: Callable[[str | None, str], None] | None = None,
) -> Iterator[Any]:
    """The run in a runner process (``ORCHESTRATOR_N8N_IN_WORKER=0``), driven as the worker drives it
    (:func:`.inline.drive`, on an event loop of its own): its steps (events), then the result; raises
    :class:`RunError` naming the failing node."""
    from .inline import close_clients, drive

    records: list[dict[str, Any]] = []

    async def run() -> dict[str, Any]:
        try:
            return await drive(api, config, context, inputs, records.append, timeout, on_started)
        finally:
            await close_clients()  # its connection ends with the loop (a runner may serve further runs)

    try:
        outputs = asyncio.run(run())
    except RunError:
        yield from map(tracker_event, records)  # a failed run's steps before the error, as the worker streams them
        raise
    yield from map(tracker_event, records)
    yield RunResult(outputs=outputs)


def tracker_event(record: dict[str, Any]) -> Any:
    from ..tracking import step_event

    return step_event(record, "n8n")
