"""n8n's execution records mapped into ours: steps, the error naming the node at fault, the run's marker.

An execution (``GET /api/v1/executions/{id}?includeData=true``) keeps each
node's runs under ``data.resultData.runData``; a running one saved without
per-node progress keeps the trigger's output (our marker header among its
request headers) under ``data.executionData.nodeExecutionStack``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ErrorKind, RunError
from .api import error_text

MARKER_HEADER = "x-orchestrator-execution"


def marker_of(execution: Mapping[str, Any], hook_name: str) -> str | None:
    """The marker header our call gave the execution (None: not ours, or not saved yet)."""
    data = execution.get("data") or {}
    try:
        item = data["resultData"]["runData"][hook_name][0]["data"]["main"][0][0]
    except (KeyError, IndexError, TypeError):
        stack = (data.get("executionData") or {}).get("nodeExecutionStack") or []
        found = [entry for entry in stack if ((entry or {}).get("node") or {}).get("name") == hook_name]
        try:
            item = found[0]["data"]["main"][0][0]
        except (KeyError, IndexError, TypeError):
            return None
    try:
        marker = item["json"]["headers"].get(MARKER_HEADER)
    except (KeyError, TypeError, AttributeError):
        return None
    return None if marker is None else str(marker)


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
