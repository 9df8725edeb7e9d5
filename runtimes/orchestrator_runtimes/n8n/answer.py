"""A run's steps read from the webhook's answer, not from n8n's execution record.

Reading n8n's execution back (``GET /api/v1/executions/{id}?includeData=true``)
took 16-160 ms a run (38 ms p50 at load 5), most of what a run cost beside n8n
itself. Our copy of a workflow therefore has its Respond to Webhook node also
answer a header, :data:`STEPS_HEADER`, with what each node that ran output (an
n8n expression: ``$(name).isExecuted``, ``$(name).all()``), n8n's workflow id,
and the node's own input (its output), URI-encoded JSON. A succeeded run maps
that and reads nothing more. Only where it is the whole story:

- the answering node ends its branch (nothing runs after it);
- no node can run twice (no cycle in the connections: ``$(name).all()`` is a
  node's last run only) and no AI node (their token counts are in the
  execution record only);
- the header is under :data:`LIMIT` characters (else n8n answers it empty);

otherwise, and for every failure (the node at fault, n8n's message), the run
reads the execution as before. What these steps lack: n8n's time per node
(``latency_ms`` is 0; the execution record, linked by ``n8n_execution_id``,
has it): ``ORCHESTRATOR_N8N_ANSWER_STEPS=0`` reads the record for every run.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .spec import RESPOND_TYPE, WEBHOOK_TYPE

STEPS_HEADER = "x-orchestrator-n8n-steps"
#: the longest header n8n sends (HTTP clients refuse headers of 16 KiB and more); longer: empty, read the record
LIMIT = 12000


def enabled() -> bool:
    """Whether runs take their steps from the answer where they can (the default)."""
    return os.environ.get("ORCHESTRATOR_N8N_ANSWER_STEPS", "1").strip().lower() not in ("0", "false", "off", "no")


def _successors(connections: Mapping[str, Any], name: str) -> list[str]:
    found: list[str] = []
    for branch in (connections.get(name) or {}).get("main") or []:
        found.extend(str(link.get("node")) for link in branch or [] if isinstance(link, dict))
    return found


def _order(workflow: Mapping[str, Any]) -> list[str] | None:
    """The main flow's nodes from the webhook on, in the order they run (breadth first); None with a cycle."""
    connections = workflow.get("connections") or {}
    start = [str(n["name"]) for n in workflow.get("nodes") or [] if n.get("type") == WEBHOOK_TYPE]
    order: list[str] = []
    seen, queue = set(start), list(start)
    while queue:
        name = queue.pop(0)
        order.append(name)
        for after in _successors(connections, name):
            if after in seen:
                if after in _upstream(connections, name):
                    return None  # a loop: a node runs more than once
                continue
            seen.add(after)
            queue.append(after)
    return order


def _upstream(connections: Mapping[str, Any], name: str) -> set[str]:
    """Every node that leads to ``name``."""
    found: set[str] = set()
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for source in connections:
            if current in _successors(connections, source) and source not in found:
                found.add(source)
                frontier.append(source)
    return found


def expressions(workflow: Mapping[str, Any]) -> dict[str, str]:
    """The :data:`STEPS_HEADER` expression of each answering node whose answer can carry the run's steps."""
    if not enabled():
        return {}
    nodes = workflow.get("nodes") or []
    if any("langchain" in str(n.get("type", "")).lower() for n in nodes):
        return {}
    order = _order(workflow)
    if order is None:
        return {}
    connections = workflow.get("connections") or {}
    found = {}
    for node in nodes:
        name = str(node.get("name"))
        if node.get("type") != RESPOND_TYPE or name not in order or _successors(connections, name):
            continue
        before = json.dumps([other for other in order if other != name and other in _upstream(connections, name)])
        steps = f"{before}.filter(n => $(n).isExecuted).map(n => [n, $(n).all().map(i => i.json)])"
        payload = f"{{w: $workflow.id, s: {steps}, r: [{json.dumps(name)}, $input.all().map(i => i.json)]}}"
        found[name] = f"={{{{ (t => t.length < {LIMIT} ? t : '')(encodeURIComponent(JSON.stringify({payload}))) }}}}"
    return found


def steps_from(headers: Mapping[str, str], types: Mapping[str, str]) -> tuple[list[dict[str, Any]], str] | None:
    """The step records and n8n's workflow id an answer carries; None where it carries none (read the record)."""
    raw = next((v for k, v in headers.items() if k.lower() == STEPS_HEADER), "")
    if not raw or not enabled():
        return None
    try:
        data = json.loads(urllib.parse.unquote(raw))
        runs = [*((str(name), items) for name, items in data["s"]), (str(data["r"][0]), data["r"][1])]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return [_record(name, items, types) for name, items in runs], str(data.get("w") or "")


def _record(name: str, items: Any, types: Mapping[str, str]) -> dict[str, Any]:
    output = list(items) if isinstance(items, list) else []
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "model_calls": 0}
    return {
        "node": name,
        "type": types.get(name, ""),
        "agent": None,
        "output": output,
        "latency_ms": 0.0,
        "status": "succeeded",
        **usage,
    }
