"""An n8n run driven by the worker itself: no run process, no watcher process (and the one copy of the run:
the runner's path, :func:`.run.execute`, drives it the same way, on an event loop of its own).

An n8n run executes no code of its user in our processes (the n8n process is
the sandbox): the run is a webhook call and a read of n8n's execution. So the
worker does it on its event loop, with one keep-alive HTTP client per instance,
where a framework run takes a warm runner, forks a watcher and talks JSON
lines: that cost ~60-90 ms a run (docs/frameworks/n8n.md). What a run records
is the runner's: the same spec checks, copy on the instance
(:func:`.run.desired`), steps (:func:`.mapping.steps_of`, or the answer's:
:mod:`.answer`), outputs, error naming the node at fault. Cancel and timeout cancel this coroutine: it then stops the
n8n execution (by its id once known, else by the run's marker), in the
background, as the watcher does for a killed runner. The rare slow paths
(putting the workflow on the instance, waiting for an instance being started,
looking for an execution by its marker) run :mod:`.run`'s synchronous code,
in a thread.

``ORCHESTRATOR_N8N_IN_WORKER=0`` sends n8n runs to a runner process instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from ..errors import ErrorKind, RunError, invalid_spec
from ..runtime import RunContext
from ..tracking import StepTracker
from .answer import steps_from
from .api import N8nApi, N8nApiError, Reply, error_text
from .mapping import MARKER_HEADER, failure, steps_of
from .models import binding_for
from .run import (
    EXECUTION_HEADER,
    READ_BACKOFF,
    REGISTER_SECONDS,
    desired,
    ended,
    find_execution,
    instance_for,
    not_registered,
    prepared,
    tracker_event,
    wait_reachable,
    webhook_request,
)
from .spec import N8nWorkflowConfig, webhook_nodes
from .watch import stop_marked

log = logging.getLogger("orchestrator.engine")

__all__ = ["close_clients", "drive", "enabled", "run_in_worker"]

#: a run without a timeout of its own waits this long for n8n's answer (as in the runner)
DEFAULT_TIMEOUT = 3600.0
#: the most of one answer of n8n's (a webhook's reply, an execution with its data) the worker reads
MAX_ANSWER_BYTES = int(os.environ.get("ORCHESTRATOR_N8N_MAX_ANSWER_BYTES", str(64 * 1024 * 1024)))
#: the webhook's request sent as soon as written (see _client)
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
#: keep-alive clients, one per (event loop, instance)
_clients: dict[tuple[int, str], httpx.AsyncClient] = {}
#: stops of cancelled runs' executions still under way (kept referenced until done)
_stopping: set[asyncio.Task[None]] = set()


def enabled() -> bool:
    """Whether n8n runs are driven by the worker (the default) rather than by a runner process."""
    return os.environ.get("ORCHESTRATOR_N8N_IN_WORKER", "1").strip().lower() not in ("0", "false", "off", "no")


def _client(base_url: str) -> httpx.AsyncClient:
    key = (id(asyncio.get_running_loop()), base_url)
    client = _clients.get(key)
    if client is None or client.is_closed:
        # no certificates loaded for a plain-HTTP instance (the managed one): loading them costs ~20 ms
        verify = base_url.startswith("https://")
        # TCP_NODELAY: httpx writes a request's headers and its body apart, and Nagle's algorithm holds the body
        # back until the headers are acknowledged (http.client sends both at once): ~5 ms p50 a call here
        transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False, socket_options=NO_DELAY)
        client = httpx.AsyncClient(verify=verify, trust_env=False, timeout=30.0, transport=transport)
        _clients[key] = client
    return client


async def close_clients() -> None:
    """Close this event loop's clients (a loop that ends with its run: the runner's, :func:`.run.execute`)."""
    loop = id(asyncio.get_running_loop())
    for key in [key for key in _clients if key[0] == loop]:
        await _clients.pop(key).aclose()


async def _http(api: N8nApi, method: str, url: str, body: Any, headers: dict[str, str], limit: float) -> Reply:
    """One request, as :func:`.api.http` answers it (any status; N8nApiError(0) if unreachable)."""
    sent = {"Accept": "application/json", **headers}
    content = None if body is None else json.dumps(body).encode()
    if content is not None:
        sent["Content-Type"] = "application/json"
    try:
        async with _client(api.base_url).stream(method, url, content=content, headers=sent, timeout=limit) as reply:
            raw = await _read_capped(reply, api.base_url)
    except httpx.HTTPError as exc:
        raise N8nApiError(0, f"n8n at {api.base_url.split('//', 1)[-1]} is unreachable: {exc!r}") from exc
    text = raw.decode(reply.encoding or "utf-8", errors="replace")
    answer: Any = text
    if "json" in reply.headers.get("content-type", "") or text[:1] in ("{", "["):
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text
    return Reply(reply.status_code, answer, dict(reply.headers.items()))


async def _read_capped(reply: httpx.Response, base_url: str) -> bytes:
    """The answer's body, read up to :data:`MAX_ANSWER_BYTES`: the worker holds every tenant's runs, so one
    workflow (or an external instance) answering gigabytes fails its own run instead of the worker's memory."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in reply.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise RunError(
                ErrorKind.RESOURCES,
                f"n8n at {base_url.split('//', 1)[-1]} answered more than {MAX_ANSWER_BYTES} bytes "
                "(ORCHESTRATOR_N8N_MAX_ANSWER_BYTES): return less from the workflow",
            )
        chunks.append(chunk)
    return b"".join(chunks)


async def _call(
    api: N8nApi, workflow: Mapping[str, Any], inputs: Mapping[str, Any], marker: str, limit: float, fresh: bool
) -> Reply:
    """The workflow's webhook called with the inputs (as :func:`.run.call_webhook`), waiting for an instance
    being started, and while a freshly activated webhook is not registered yet."""
    method, url, body = webhook_request(api, workflow, inputs)
    deadline = time.monotonic() + (REGISTER_SECONDS if fresh else 0)
    waited = False
    while True:
        try:
            reply = await _http(api, method, url, body, {MARKER_HEADER: marker}, limit)
        except N8nApiError as exc:
            if waited:
                raise RunError(ErrorKind.CONFIGURATION, exc.message, retryable=True) from exc
            await asyncio.to_thread(_wait_reachable, api)
            waited = True
            continue
        if not not_registered(reply.status, reply.body) or time.monotonic() >= deadline:
            return reply
        await asyncio.sleep(0.1)


def _wait_reachable(api: N8nApi) -> None:
    try:
        wait_reachable(api)
    except N8nApiError as exc:
        raise RunError(ErrorKind.CONFIGURATION, exc.message, retryable=True) from exc


async def _read_ended(api: N8nApi, execution_id: str, within: float) -> dict[str, Any] | None:
    """The execution once ended, with its data (n8n saves it just after answering), as :func:`.run.read_ended`."""
    deadline = time.monotonic() + within
    pause, longest = READ_BACKOFF
    url = f"{api.base_url}/api/v1/executions/{execution_id}?includeData=true"
    while True:
        await asyncio.sleep(pause)
        reply = await _http(api, "GET", url, None, {"X-N8N-API-KEY": api.api_key}, api.timeout)
        if reply.status == 404:
            execution: dict[str, Any] = {"status": "new"}
        elif reply.status >= 400:
            raise N8nApiError(reply.status, f"n8n GET executions/{execution_id}: {error_text(reply.body)}")
        else:
            execution = dict(reply.body)
        if ended(execution):
            return execution
        if time.monotonic() >= deadline:
            return None
        pause = min(pause * 1.5, longest)


class _Run:
    """One n8n run's state: what a stop needs should it be cancelled."""

    def __init__(self, api: N8nApi, marker: str) -> None:
        self.api = api
        self.marker = marker
        self.workflow_id: str | None = None
        self.hook = ""
        self.execution_id: str | None = None
        self.ended = False

    def stop(self) -> None:
        """Stop our n8n execution (the run was cancelled or timed out), in the background."""
        if self.ended:
            return
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self._stop))
        _stopping.add(task)
        task.add_done_callback(_stopping.discard)

    def _stop(self) -> None:
        try:
            if self.execution_id is not None:
                self.api.stop(self.execution_id)
            else:
                stop_marked(self.api, self.workflow_id, self.hook, self.marker)
        except N8nApiError as exc:
            log.warning("could not stop the n8n execution of run %s: %s", self.marker, exc.message)


def _config(spec_data: Any) -> tuple[Any, N8nWorkflowConfig]:
    """The spec checked as the runner checks it, and its n8n node's config."""
    from ..runtime import load_runtime
    from ..spec import validate_spec

    spec, problems = validate_spec(spec_data, "n8n")
    if spec is None:
        raise invalid_spec([(p.field, p.message) for p in problems])
    runtime: Any = load_runtime("n8n")
    problems_found = runtime.spec_problems(spec)
    if problems_found:
        raise invalid_spec(problems_found, runtime.spec_what)
    node = next(node for node in spec.nodes if str(node.type) == "n8n_workflow")
    return spec, N8nWorkflowConfig.model_validate(node.config)


async def run_in_worker(
    claimed: Any,
    integrations: dict[str, dict[str, Any]],
    default_model: str | None,
    step: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """The outputs of a run the worker claimed (its ``id``, ``attempt``, ``spec``, ``inputs``, ids); its steps go
    to ``step`` as they are known; raises :class:`RunError` on failure."""
    spec, config = _config(claimed.spec)
    context = RunContext(
        str(claimed.id),
        int(claimed.attempt),
        Path("."),
        integrations,
        default_model,
        org_id=str(claimed.org_id),
        agent_id=str(claimed.agent_id),
        workflow_id=str(claimed.workflow_id),
    )
    api = instance_for(config, context.integrations)
    timeout = float(spec.timeout_seconds or DEFAULT_TIMEOUT)
    inputs = dict(claimed.inputs or {})
    return await drive(api, config, context, inputs, lambda record: step(tracker_event(record).data), limit=timeout)


async def drive(
    api: N8nApi,
    config: N8nWorkflowConfig,
    context: RunContext,
    inputs: Mapping[str, Any],
    step: Callable[[dict[str, Any]], None],
    limit: float,
    started: Callable[[str | None, str], None] | None = None,
) -> dict[str, Any]:
    """The run on ``api``, within ``limit`` seconds of n8n's answer: each step record to ``step``, then the
    outputs; the worker's and the runner's (:func:`.run.execute`) alike. ``started(n8n's workflow id or None, the
    webhook node's name)`` is called before the webhook is (the runner's watcher starts there). Cancelled, it
    stops n8n's execution."""
    run = _Run(api, f"{context.execution_id}:{context.attempt}")
    try:
        return await _execute(run, config, context, inputs, step, limit, started)
    except asyncio.CancelledError:
        run.stop()
        raise
    finally:
        run.ended = True


async def _execute(
    run: _Run,
    config: N8nWorkflowConfig,
    context: RunContext,
    inputs: Mapping[str, Any],
    step: Callable[[dict[str, Any]], None],
    limit: float,
    started: Callable[[str | None, str], None] | None = None,
) -> dict[str, Any]:
    """Our copy called (put on the instance first where it is missing), its steps and outputs mapped."""
    timeout = limit
    api, ours = run.api, context.workflow_id or "adhoc"
    binding = binding_for(config.workflow, context, config.model) if config.workflow is not None else None
    if config.workflow is not None:  # the hot path: call our copy at its digest's path; sync only on a 404
        workflow, fresh = desired(config.workflow, ours, binding), False
    else:
        workflow, fresh = await asyncio.to_thread(prepared, api, config, ours)
        run.workflow_id = str(workflow["id"])
    hooks = webhook_nodes(workflow)
    run.hook = hooks[0]["name"] if hooks else ""
    if started is not None:
        started(run.workflow_id, run.hook)
    reply = await _call(api, workflow, inputs, run.marker, timeout, fresh)
    if not_registered(reply.status, reply.body) and config.workflow is not None:
        synced, fresh = await asyncio.to_thread(prepared, api, config, ours, binding)
        run.workflow_id = str(synced["id"])
        reply = await _call(api, workflow, inputs, run.marker, timeout, fresh)
    types = {str(n.get("name")): str(n.get("type")) for n in workflow.get("nodes") or []}
    run.execution_id = next((v for k, v in reply.headers.items() if k.lower() == EXECUTION_HEADER), None)
    answered = steps_from(reply.headers, types) if reply.status < 400 else None
    if answered is not None:  # the answer carries the steps: no read of n8n's record (answer.py)
        return _from_answer(run, reply, answered, step)
    return await _from_record(run, reply, types, step, timeout)


def _from_answer(
    run: _Run, reply: Reply, answered: tuple[list[dict[str, Any]], str], step: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """The outputs of a run whose answer carried its steps (and n8n's workflow id): each step reported."""
    run.ended = True
    tracker = StepTracker("n8n")
    for record in answered[0]:
        tracker.steps.append(record)
        step(record)
    return tracker.outputs(reply.body, n8n_execution_id=run.execution_id, n8n_workflow_id=answered[1] or None)


async def _from_record(
    run: _Run, reply: Reply, types: Mapping[str, str], step: Callable[[dict[str, Any]], None], within: float
) -> dict[str, Any]:
    """The outputs of a run read from n8n's record of its execution, each step reported; raises the
    :class:`RunError` naming the failing node where the call or the execution failed."""
    api = run.api
    try:
        if run.execution_id:
            execution = await _read_ended(api, run.execution_id, within)
        else:
            execution = await asyncio.to_thread(
                find_execution, api, run.workflow_id, run.hook, run.marker, finished=True
            )
    except N8nApiError as exc:
        raise RunError(ErrorKind.CONFIGURATION, f"n8n's execution could not be read: {exc.message}") from exc
    run.ended = execution is not None and ended(execution)
    tracker = StepTracker("n8n")
    for record in steps_of(execution, types) if execution is not None else []:
        tracker.steps.append(record)
        step(record)
    status = (execution or {}).get("status")
    if reply.status >= 400 or status in ("error", "crashed", "canceled"):
        raise failure(execution, types, reply.status, reply.body)
    found = execution or {}
    return tracker.outputs(reply.body, n8n_execution_id=found.get("id"), n8n_workflow_id=found.get("workflowId"))
