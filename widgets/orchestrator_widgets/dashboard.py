"""``Dashboard()``: an organization's runs, agents and schedules at a glance, live, with controls.

Counts by status (``waiting`` for a person's answer among them), runs per hour
by status and p50/p95 durations per framework over a chosen window, each agent
with its last run, success rate and health, and a live list of running, queued
and waiting runs that follows the organization's status stream
(``GET /organizations/{id}/events``, server-sent events: no polling). Its
buttons run an agent's workflow, cancel, approve, retry, pause or resume a
schedule, and open a run in the execution view, each through the API with the
user's own client: nothing in the browser holds a token. The chart library is
not in the widget's state: the page asks for it once its counts and lists are
drawn (:func:`charts_module`), so the first paint does not wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import anywidget
import traitlets

from orchestrator_ext.client import ApiError, Client, ClientError

from . import dashboard_data as data
from ._assets import bundle
from .choosing import OrganizationNotFound, organization_id
from .events import Event, OrganizationStream
from .execution import RunFollower
from .tracking import empty_run

WINDOWS_H = (1, 6, 24, 72, 168)
#: API reads made side by side when the dashboard loads
READERS = 8


class Dashboard(anywidget.AnyWidget):
    """``Dashboard()`` or ``Dashboard(org_id=..., hours=24, client=...)``.

    ``org_id`` is an organization's id or the name of one of yours. Without it the dashboard opens your
    personal organization, else one you own, else the one you joined first (:mod:`.choosing`): being
    invited into someone else's team does not change what ``Dashboard()`` shows you."""

    _esm = bundle("dashboard")
    _css = bundle("dashboard", ".css")

    board = traitlets.Dict(help="What the dashboard draws: counts, runs, agents, charts, schedules.").tag(sync=True)
    run = traitlets.Dict(help="The run opened in the execution view (empty: none).").tag(sync=True)

    def __init__(
        self, org_id: str | None = None, *, hours: int = 24, client: Client | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.client = client or Client()
        self.hours = hours
        self._lock = threading.RLock()
        self._runs: dict[str, dict[str, Any]] = {}
        self._event_ids: dict[str, int] = {}  # each run's latest status event applied
        self._agents: list[dict[str, Any]] = []
        self._workflows: list[dict[str, Any]] = []
        self._schedules: list[dict[str, Any]] = []
        self._header: dict[str, Any] = {}
        self._message = ""
        self.follower: RunFollower | None = None
        self.stream: OrganizationStream | None = None
        self.on_msg(self._on_message)
        try:
            self.org = self._organization(org_id)
        except OrganizationNotFound as exc:
            self.org = {}
            self.board = {"error": str(exc), "windows": list(WINDOWS_H)}
            return
        except ClientError as exc:
            self.org = {}
            self.board = {"error": f"Cannot read your organizations: {exc}", "windows": list(WINDOWS_H)}
            return
        if not self.org:  # a new user of the hub before anyone adds them: nothing to show yet
            me = self.client.me()
            self._header = {"user": me.get("display_name") or me.get("username") or "", "health": self._health()}
            self._publish(message="You belong to no organization yet: an admin adds you to one.")
            return
        self.stream = OrganizationStream(self.client, str(self.org["id"]), self._on_event).start()
        self.reload()

    # ---- reading ------------------------------------------------------------------

    def _organization(self, wanted: str | None) -> dict[str, Any]:
        """The organization ``wanted`` names (id or name), else the default one; ``{}`` with none."""
        org_id = organization_id(self.client, wanted)
        if org_id is None:
            return {}
        found: dict[str, Any] = self.client.request("GET", f"organizations/{quote(org_id)}")
        return found

    def reload(self) -> None:
        """Read the window's runs, the agents, their workflows and schedules, and the platform's health."""
        if not self.org:
            return
        org = str(self.org["id"])
        client = self.client
        try:  # side by side: the first paint waits for the slowest read, not for their sum
            with ThreadPoolExecutor(max_workers=READERS) as pool:
                me, runs, agents, health = (
                    pool.submit(client.me),
                    pool.submit(client.executions, org_id=org, limit=data.WINDOW_RUNS),
                    pool.submit(client.agents, org_id=org),
                    pool.submit(self._health),
                )
                per_agent = pool.map(lambda a: client.workflows(str(a["id"])), agents.result())
                workflows = [w for found in per_agent for w in found]
                per_workflow = pool.map(
                    lambda w: list(client.pages(f"workflows/{quote(str(w['id']))}/schedules")), workflows
                )
                schedules = [s for found in per_workflow for s in found]
                me_, runs_, agents_, health_ = me.result(), runs.result(), agents.result(), health.result()
        except ClientError as exc:
            self._publish(message=f"Cannot read the organization's runs: {exc}")
            return
        cutoff = datetime.now(UTC).timestamp() - self.hours * 3600
        with self._lock:
            self._runs = {
                str(r["id"]): r
                for r in runs_
                if r["status"] in data.ACTIVE
                or (data.parse_time(r["created_at"]) or datetime.now(UTC)).timestamp() >= cutoff
            }
            self._agents, self._workflows, self._schedules = agents_, workflows, schedules
            self._header = {"user": me_.get("display_name") or me_.get("username") or "", "health": health_}
        self._publish()

    def _health(self) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self.client.request("GET", "health")
            return answer
        except ApiError as exc:  # 503: the database does not answer
            return {"status": "unavailable", "detail": str(exc)}
        except ClientError as exc:
            return {"status": "unreachable", "detail": str(exc)}

    def _on_event(self, event: Event) -> None:
        """A run of the organization changed status: redraw it at once, then read it when it is new, waiting
        or finished (its names, question or times) and redraw again."""
        execution_id = str(event.data.get("execution_id") or "")
        status = str(event.data.get("status") or "")
        if not execution_id or not status:
            return
        with self._lock:
            if event.id <= self._event_ids.get(execution_id, 0):
                return  # an older change whose transaction committed late: the run is past it
            self._event_ids[execution_id] = event.id
            known = self._runs.get(execution_id)
        if known is not None:  # the new status at once; a waiting run's question, a finished one's times follow
            with self._lock:
                self._runs[execution_id] = {**known, "status": status}
            self._publish()
            if status != "waiting" and status not in data.FINISHED:
                return
        try:
            fresh = self.client.execution(execution_id)
        except ClientError:
            return
        with self._lock:
            if self._event_ids.get(execution_id) != event.id:
                return  # a newer change came while reading: it draws the run itself
            self._runs[execution_id] = fresh
        self._publish()

    def _publish(self, message: str | None = None) -> None:
        with self._lock:
            if message is not None:
                self._message = message
            runs = sorted(self._runs.values(), key=lambda r: str(r["created_at"]), reverse=True)
            drawn = data.board(runs, self._agents, self._workflows, now=datetime.now(UTC), hours=self.hours)
            names = {str(w["id"]): str(w["name"]) for w in self._workflows}
            self.board = {
                **drawn,
                **self._header,
                "org": {"id": str(self.org.get("id") or ""), "name": str(self.org.get("name") or "")},
                "hours": self.hours,
                "windows": list(WINDOWS_H),
                "workflows": [
                    {"id": str(w["id"]), "name": str(w["name"]), "agent_id": str(w["agent_id"])}
                    for w in self._workflows
                ],
                "schedules": [schedule_row(s, names) for s in self._schedules],
                "message": self._message,
            }

    # ---- the buttons ------------------------------------------------------------------

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, Mapping):
            return
        if content.get("type") == "run_command" and self.follower is not None:
            self.follower.command(dict(content.get("command") or {}))
            return
        if content.get("type") == "charts":  # after the first paint: the chart library (src/dashboard/Chart.tsx)
            self.send({"type": "charts", "code": charts_module()})
            return
        try:
            message = self.command(content)
        except ApiError as exc:
            message = f"{exc.title}: {exc.detail}"
        except ClientError as exc:
            message = str(exc)
        if message is not None:
            self._publish(message=message)

    def command(self, command: Mapping[str, Any]) -> str | None:
        """One button: ``run``, ``cancel``, ``approve``, ``reject``, ``retry``, ``schedule``, ``open``, ``window``."""
        kind, target = command.get("type"), str(command.get("id") or "")
        if kind == "run":
            started = self.client.execute(target, {})
            return f"Started run {started['id'][:8]}."
        if kind == "cancel":
            self.client.cancel(target)
            return "Cancel requested."
        if kind in ("approve", "reject"):
            answer = {"approved": kind == "approve", "comment": ""}
            self.client.request("POST", f"executions/{quote(target)}/resume", body={"answer": answer})
            return "Approved: the run goes on." if kind == "approve" else "Rejected: the run goes on."
        if kind == "retry":
            earlier = self.client.execution(target)
            started = self.client.execute(str(earlier["workflow_id"]), earlier["inputs"], version=earlier["version"])
            return f"Retried as run {started['id'][:8]}."
        if kind == "schedule":
            return self._toggle_schedule(target, bool(command.get("enabled")))
        if kind == "open":
            self.open_run(target)
            return None
        if kind == "close":
            self.open_run("")
            return None
        if kind == "window":
            self.hours = int(command.get("hours") or self.hours)
            self.reload()
            return None
        return None

    def _toggle_schedule(self, schedule_id: str, enabled: bool) -> str:
        changed = self.client.request("PATCH", f"schedules/{quote(schedule_id)}", body={"enabled": enabled})
        with self._lock:
            self._schedules = [changed if str(s["id"]) == schedule_id else s for s in self._schedules]
        return "Schedule resumed." if enabled else "Schedule paused."

    def open_run(self, execution_id: str) -> None:
        """Show a run in the execution view below the lists (empty: close it)."""
        if self.follower is not None:
            self.follower.stop()
            self.follower = None
        if not execution_id:
            self.run = {}
            return
        self.run = empty_run(execution_id)
        self.follower = RunFollower(self.client, execution_id, self._show_run)

    def _show_run(self, state: dict[str, Any]) -> None:
        self.run = state

    def close(self) -> None:
        if self.stream is not None:
            self.stream.stop()
        if self.follower is not None:
            self.follower.stop()
        super().close()


@cache
def charts_module() -> str:
    """The charts' module (Vega), sent when the page asks for it rather than in the widget's state: the
    dashboard's first paint does not wait for its 0.9 MB."""
    return bundle("charts").read_text(encoding="utf-8")


def schedule_row(schedule: Mapping[str, Any], workflows: Mapping[str, str]) -> dict[str, Any]:
    workflow_id = str(schedule["workflow_id"])
    return {
        "id": str(schedule["id"]),
        "name": str(schedule.get("name") or ""),
        "workflow": workflows.get(workflow_id, workflow_id[:8]),
        "cron": str(schedule["cron"]),
        "timezone": str(schedule.get("timezone") or "UTC"),
        "enabled": bool(schedule["enabled"]),
        "next_run_at": str(schedule.get("next_run_at") or ""),
    }
