"""One run of an n8n workflow: put it on the instance, call its webhook, read back n8n's execution.

- **sync**: an exported workflow is kept on the instance under its name plus
  ``[orchestrator <our workflow id>]``; it is created, or updated when its nodes,
  connections or settings changed, and activated (n8n registers the webhook
  shortly after: the call retries while the webhook answers 404);
- **call**: the webhook gets the inputs (a JSON body, or the query of a GET)
  and a header naming our execution, which is how the execution is found in
  n8n afterwards (n8n's webhook answer does not say which execution it was);
- **map**: each node's run becomes a step (its output items, n8n's own timing),
  the answer the output; a failed execution names the node at fault and n8n's
  message, where the webhook only said "Error in workflow".
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import ErrorKind, RunError
from ..tracking import StepTracker
from .api import N8nApi, N8nApiError, error_text, http
from .spec import WEBHOOK_TYPE, N8nWorkflowConfig, webhook_nodes

MARKER_HEADER = "x-orchestrator-execution"
#: how long a webhook may answer 404 after activation (n8n registers it asynchronously)
REGISTER_SECONDS = 15.0
#: how long an execution is looked for after the webhook answered (n8n saves it when it ends)
FIND_SECONDS = 10.0
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
    base_url = str((chosen.get("config") or {}).get("base_url") or "")
    secret = chosen.get("secret")
    if not base_url or not secret:
        raise RunError(ErrorKind.CONFIGURATION, "the n8n integration needs a base_url and an API key (its secret)")
    return N8nApi(base_url, str(secret))


def canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def instance_path(our_id: str, digest: str, path: str) -> str:
    """The webhook path an exported workflow gets on the instance: under our workflow's id (two workflows
    exported with the same path never take each other's webhook) and its content's digest (a changed
    workflow answers 404 at its new path until it is synced: the hot path needs no lookup)."""
    return f"orchestrator/{our_id}/{digest}/{path.strip('/')}"


def _placed(node: Mapping[str, Any], our_id: str, digest: str) -> dict[str, Any]:
    """A node as it goes on the instance: a webhook's path under our id; webhook ids unique to our workflow."""
    placed = dict(node)
    if placed.get("webhookId"):
        placed["webhookId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"orchestrator:{our_id}:{placed.get('name')}"))
    if placed.get("type") == WEBHOOK_TYPE:
        parameters = dict(placed.get("parameters") or {})
        parameters["path"] = instance_path(our_id, digest, str(parameters.get("path") or ""))
        placed["parameters"] = parameters
    return placed


def desired(workflow: Mapping[str, Any], our_id: str) -> dict[str, Any]:
    """What n8n's public API takes to create or update our copy of an exported workflow (it refuses the rest)."""
    settings = workflow.get("settings") or {}
    nodes: list[Mapping[str, Any]] = list(workflow["nodes"])
    body: dict[str, Any] = {
        "name": f"{workflow.get('name') or 'workflow'} [orchestrator {our_id}]",
        "nodes": nodes,
        "connections": workflow.get("connections") or {},
        # progress saved node by node: a cancelled run's execution is found (by its webhook's headers) while running
        "settings": {"executionOrder": "v1", **settings, "saveExecutionProgress": True},
    }
    digest = hashlib.sha256(canon(body).encode()).hexdigest()[:12]
    body["nodes"] = [_placed(node, our_id, digest) for node in nodes]
    return body


def wait_reachable(api: N8nApi) -> None:
    """Wait while the instance refuses connections (the personal mode starts it at the first n8n run)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            http("GET", f"{api.base_url}/healthz/readiness", timeout=5)
            return
        except N8nApiError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def sync(api: N8nApi, config: N8nWorkflowConfig, our_id: str) -> tuple[dict[str, Any], bool]:
    """The workflow on the instance, created/updated and active; whether it was just (re)activated."""
    if config.workflow is None:
        workflow = api.workflow(str(config.workflow_id))
    else:
        body = desired(config.workflow, our_id)
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


def prepared(api: N8nApi, config: N8nWorkflowConfig, our_id: str) -> tuple[dict[str, Any], bool]:
    """:func:`sync`, waiting for an instance being started; n8n's refusals as configuration errors."""
    try:
        try:
            return sync(api, config, our_id)
        except N8nApiError as exc:
            if exc.status != 0:
                raise
            wait_reachable(api)  # being started: wait for it, then go on
            return sync(api, config, our_id)
    except N8nApiError as exc:
        kind = ErrorKind.CONFIGURATION if exc.status in (0, 400, 401, 403, 404) else ErrorKind.INTERNAL
        raise RunError(kind, exc.message, retryable=exc.status == 0) from exc


def call_webhook(
    api: N8nApi, workflow: Mapping[str, Any], inputs: Mapping[str, Any], marker: str, timeout: float, fresh: bool
) -> tuple[int, Any]:
    """Call the workflow's webhook with the inputs: its status and answer."""
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
    deadline = time.monotonic() + (REGISTER_SECONDS if fresh else 0)
    while True:
        reply = http(method, url, body, {MARKER_HEADER: marker}, timeout)  # N8nApiError(0): unreachable
        if not not_registered(reply.status, reply.body) or time.monotonic() >= deadline:
            return reply.status, reply.body
        time.sleep(0.1)


def not_registered(status: int, answer: Any) -> bool:
    """n8n's own 404 for a webhook no active workflow has (not a Respond node's 404)."""
    return status == 404 and "not registered" in error_text(answer)


def _marker_of(execution: Mapping[str, Any], hook_name: str) -> str | None:
    try:
        run = execution["data"]["resultData"]["runData"][hook_name][0]
        headers = run["data"]["main"][0][0]["json"]["headers"]
        return str(headers.get(MARKER_HEADER))
    except (KeyError, IndexError, TypeError):
        return None


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
            ended = listed.get("finished") or listed.get("status") not in ("running", "new")
            if finished and not ended:
                continue
            execution = api.execution(str(listed["id"]))
            if _marker_of(execution, hook_name) == marker:
                return execution
            checked.add(str(listed["id"]))
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _items(run: Mapping[str, Any]) -> list[Any]:
    """A node run's output items' JSON (every output, every branch, concatenated)."""
    found: list[Any] = []
    for outputs in (run.get("data") or {}).values():
        for branch in outputs or []:
            found.extend(item.get("json") for item in branch or [] if isinstance(item, dict))
    return found


def _tokens(items: list[Any]) -> dict[str, int]:
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "model_calls": 0}
    for item in items:
        found = item.get("tokenUsage") if isinstance(item, dict) else None
        if isinstance(found, dict):
            usage["prompt_tokens"] += int(found.get("promptTokens") or 0)
            usage["completion_tokens"] += int(found.get("completionTokens") or 0)
            usage["total_tokens"] += int(found.get("totalTokens") or 0)
            usage["model_calls"] += 1
    return usage


def steps_of(execution: Mapping[str, Any], types: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each node run of an n8n execution as a step record, in the order they started."""
    run_data = (((execution.get("data") or {}).get("resultData") or {}).get("runData")) or {}
    runs = [(name, run) for name, node_runs in run_data.items() for run in node_runs or []]
    runs.sort(key=lambda pair: pair[1].get("startTime") or 0)
    steps = []
    for name, run in runs:
        items = _items(run)
        record = {
            "node": name,
            "type": types.get(name, ""),
            "agent": None,
            "output": items,
            "latency_ms": float(run.get("executionTime") or 0),
            "status": "failed" if run.get("error") else "succeeded",
            **_tokens(items),
        }
        if run.get("error"):
            record["error"] = error_text(run["error"])
        steps.append(record)
    return steps


def kind_of(node_type: str) -> ErrorKind:
    """The error kind of a failing n8n node: models, tools (HTTP and the like), else the workflow's code."""
    lowered = node_type.lower()
    if any(part in lowered for part in ("langchain", "openai", "lmchat")):
        return ErrorKind.MODEL
    if any(part in lowered for part in ("httprequest", "ssh", "executecommand")):
        return ErrorKind.TOOL
    return ErrorKind.CODE


def failure(execution: Mapping[str, Any] | None, types: Mapping[str, str], status: int, answer: Any) -> RunError:
    """The run's error from n8n's failed execution: the node at fault by name, and n8n's message."""
    result = ((execution or {}).get("data") or {}).get("resultData") or {}
    error = result.get("error") or {}
    node = (error.get("node") or {}).get("name") or result.get("lastNodeExecuted")
    message = error_text(error) if error else error_text(answer)
    details: dict[str, Any] = {"n8n_execution_id": (execution or {}).get("id"), "http_status": status}
    if node:
        details["node"] = node
        description = error.get("description")
        text = f"n8n node '{node}' failed: {message}" + (f" ({description})" if description else "")
        return RunError(kind_of(types.get(str(node), "")), text, **details)
    return RunError(ErrorKind.CODE, f"the n8n workflow failed (HTTP {status}): {message}", **details)


def execute(
    api: N8nApi,
    config: N8nWorkflowConfig,
    inputs: Mapping[str, Any],
    marker: str,
    our_id: str | None,
    timeout: float,
    on_started: Any = None,
) -> Iterator[Any]:
    """The run: steps (events), then the result; raises :class:`RunError` naming the failing node."""
    tracker = StepTracker("n8n")
    ours = our_id or "adhoc"
    workflow_id: str | None = None
    if config.workflow is not None:  # the hot path: call our copy at its digest's path; sync only on a 404
        workflow, fresh = desired(config.workflow, ours), False
    else:
        workflow, fresh = prepared(api, config, ours)
        workflow_id = str(workflow["id"])
    hook_name = webhook_nodes(workflow)[0]["name"] if webhook_nodes(workflow) else ""
    if on_started is not None:
        on_started(workflow_id, hook_name)
    status, answer = _call(api, workflow, inputs, marker, timeout, fresh)
    if not_registered(status, answer) and config.workflow is not None:
        synced, fresh = prepared(api, config, ours)
        workflow_id = str(synced["id"])
        status, answer = _call(api, workflow, inputs, marker, timeout, fresh)
    types = {str(n.get("name")): str(n.get("type")) for n in workflow.get("nodes") or []}
    # n8n answers from its Respond node and finishes (and saves) the execution after: wait for the end, so
    # every node is a step and a node failing after the answer fails the run
    execution = find_execution(api, workflow_id, hook_name, marker, finished=True)
    for record in steps_of(execution, types) if execution is not None else []:
        tracker.steps.append(record)
        yield tracker_event(record)
    failed = status >= 400 or (execution is not None and execution.get("status") in ("error", "crashed", "canceled"))
    if failed:
        raise failure(execution, types, status, answer)
    found = execution or {}
    yield tracker.result(answer, n8n_execution_id=found.get("id"), n8n_workflow_id=found.get("workflowId"))


def _call(
    api: N8nApi, workflow: Mapping[str, Any], inputs: Mapping[str, Any], marker: str, timeout: float, fresh: bool
) -> tuple[int, Any]:
    """:func:`call_webhook`, waiting for an instance being started (the personal mode's first n8n run)."""
    try:
        try:
            return call_webhook(api, workflow, inputs, marker, timeout, fresh)
        except N8nApiError as exc:
            if exc.status != 0:
                raise
            wait_reachable(api)
            return call_webhook(api, workflow, inputs, marker, timeout, fresh)
    except N8nApiError as exc:
        raise RunError(ErrorKind.CONFIGURATION, exc.message, retryable=True) from exc


def tracker_event(record: dict[str, Any]) -> Any:
    from ..tracking import step_event

    return step_event(record, "n8n")
