"""A run's state as the widgets show it, built from its events: each node's state, the steps, logs,
outputs, the error and the question of a waiting run. Pure: fed events, it answers a JSON state."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from orchestrator_ext.client import FINISHED

#: the log is cut to its last characters in the widget (the whole log stays on the server)
MAX_LOG_CHARS = 100_000


def empty_run(execution_id: str = "", spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    spec = dict(spec or {"nodes": [], "edges": []})
    return {
        "execution_id": execution_id,
        "status": "",
        "nodes": {str(node["id"]): "pending" for node in spec.get("nodes") or []},
        "steps": [],
        "logs": "",
        "outputs": None,
        "error": None,
        "waiting_for": None,
        "spec": {"nodes": list(spec.get("nodes") or []), "edges": list(spec.get("edges") or [])},
        "message": "",
        "notebook_html": "",
    }


class RunTracker:
    """Applies a run's events (and its description when it stops) to the widget's run state."""

    def __init__(self, execution_id: str, spec: Mapping[str, Any] | None = None) -> None:
        self.state = empty_run(execution_id, spec)

    def snapshot(self) -> dict[str, Any]:
        """A copy to publish (traitlets compare by value: a new object is what makes a change)."""
        return copy.deepcopy(self.state)

    # ---- events -------------------------------------------------------------------

    def apply(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "step":
            self._step(data)
        elif kind == "log":
            logs = self.state["logs"] + str(data.get("text") or "")
            self.state["logs"] = logs[-MAX_LOG_CHARS:]
        elif kind == "status":
            self._status(str(data.get("status") or ""), data.get("error"))

    def _step(self, data: Mapping[str, Any]) -> None:
        node = str(data.get("node") or "")
        self.state["steps"].append(dict(data))
        nodes: dict[str, str] = self.state["nodes"]
        if node in nodes or not nodes:
            nodes[node] = "done"
        self._mark_running()

    def _status(self, status: str, error: Any) -> None:
        self.state["status"] = status
        nodes: dict[str, str] = self.state["nodes"]
        if status == "running":
            self.state["waiting_for"] = None
            for node, state in nodes.items():
                if state == "waiting":
                    nodes[node] = "running"
            self._mark_running()
        elif status in FINISHED or status == "waiting":
            self._settle(status, error if isinstance(error, Mapping) else None)

    def describe(self, execution: Mapping[str, Any]) -> None:
        """Take what only the execution's description has: outputs, the error, the waiting question."""
        self.state["status"] = str(execution.get("status") or self.state["status"])
        outputs = execution.get("outputs")
        self.state["outputs"] = outputs
        recorded = outputs.get("steps") if isinstance(outputs, Mapping) else None
        if isinstance(recorded, list) and len(recorded) > len(self.state["steps"]):
            # a run watched late (or after its end): its outputs hold every step the stream would have sent
            self.state["steps"] = [dict(step) for step in recorded if isinstance(step, Mapping)]
            for step in self.state["steps"]:
                if str(step.get("node")) in self.state["nodes"]:
                    self.state["nodes"][str(step.get("node"))] = "done"
        if execution.get("error"):
            self.state["error"] = dict(execution["error"])
        self.state["waiting_for"] = execution.get("waiting_for")
        status = self.state["status"]
        if status in FINISHED or status == "waiting":
            self._settle(status, self.state["error"])
        elif status == "running":
            self._mark_running()

    # ---- node states ----------------------------------------------------------------

    def _graph(self) -> tuple[dict[str, list[str]], set[str]]:
        edges = self.state["spec"]["edges"]
        after: dict[str, list[str]] = {}
        targets: set[str] = set()
        for edge in edges:
            after.setdefault(str(edge["source"]), []).append(str(edge["target"]))
            targets.add(str(edge["target"]))
        return after, targets

    def _mark_running(self) -> None:
        """While the run runs, the nodes it is at: after the last finished step (or the first nodes)."""
        if self.state["status"] != "running":
            return
        nodes: dict[str, str] = self.state["nodes"]
        after, targets = self._graph()
        for node, state in nodes.items():
            if state == "running":
                nodes[node] = "pending"
        steps = self.state["steps"]
        if steps:
            candidates = after.get(str(steps[-1].get("node")), [])
        else:
            candidates = [node for node in nodes if node not in targets]
        for node in candidates:
            if nodes.get(node) == "pending":
                nodes[node] = "running"

    def _settle(self, status: str, error: Mapping[str, Any] | None) -> None:
        nodes: dict[str, str] = self.state["nodes"]
        if error is not None:
            self.state["error"] = dict(error)
        waiting = self.state.get("waiting_for") or {}
        at_fault = str((error or {}).get("node") or "")
        for node, state in nodes.items():
            if state not in ("running", "waiting"):
                continue
            if status == "waiting":
                nodes[node] = "waiting" if node == waiting.get("node") else "pending"
            elif status == "failed" and (not at_fault or node == at_fault):
                nodes[node] = "failed"
            else:
                nodes[node] = "pending"
        if status == "waiting" and waiting.get("node") in nodes:
            nodes[str(waiting["node"])] = "waiting"
        if at_fault in nodes and status == "failed":
            nodes[at_fault] = "failed"
        if status == "succeeded":
            for node, state in nodes.items():
                if state == "pending":
                    nodes[node] = "skipped"
