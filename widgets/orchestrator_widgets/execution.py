"""``ExecutionView(execution_id)``: a run as it happens, in a notebook or a Voila page.

The graph with each node's state (pending, running, done, failed, waiting),
each step's output, tokens and timing on click, logs, outputs, the error at
fault, Cancel, and Approve / Reject / a comment for a run waiting on a human.
The kernel follows the run's server-sent events with the user's own client
(:mod:`.events`); the browser only renders the state it is sent.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import anywidget
import traitlets

from orchestrator_ext.client import FINISHED, ApiError, Client, ClientError

from ._assets import bundle
from .events import Event, EventStream
from .tracking import RunTracker, empty_run

Publish = Callable[[dict[str, Any]], None]


def run_spec(client: Client, execution: Mapping[str, Any]) -> dict[str, Any]:
    """The spec of the version the run executes (the graph to draw); empty when it cannot be read."""
    path = f"workflows/{quote(str(execution['workflow_id']))}/versions/{int(execution['version'])}"
    try:
        version: dict[str, Any] = client.request("GET", path)
    except ClientError:
        return {"nodes": [], "edges": []}
    return dict(version.get("spec") or {})


def executed_notebook_html(client: Client, execution_id: str) -> str:
    """The executed notebook of a notebook run as HTML (nbconvert, on the server); empty when there is none."""
    url = f"{client.api_url}/executions/{quote(execution_id)}/notebook?format=html"
    request = urllib.request.Request(url, headers={"Authorization": f"token {client.connection.token}"})  # noqa: S310
    try:
        # the API's http(s) URL (Client checked it)
        with urllib.request.urlopen(request, timeout=client.timeout, context=client.connection.ssl_context) as answer:  # noqa: S310  # nosec B310
            return str(answer.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError):
        return ""


class RunFollower:
    """Follows one execution for a widget: events in, published state out; answers the widget's commands."""

    def __init__(self, client: Client, execution_id: str, publish: Publish) -> None:
        self.client = client
        self.execution_id = execution_id
        self.publish = publish
        self._lock = threading.Lock()
        execution = client.execution(execution_id)
        spec = run_spec(client, execution)
        self.notebook = bool(spec.get("notebook"))
        self.tracker = RunTracker(execution_id, spec)
        with self._lock:
            self._describe()
            publish(self.tracker.snapshot())
        self.stream: EventStream | None = None
        if execution["status"] not in FINISHED:
            self.stream = EventStream(client, execution_id, self._on_event).start()

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self.tracker.apply(event.kind, event.data)
            status = str(event.data.get("status") or "") if event.kind == "status" else ""
            if status in FINISHED or status == "waiting":
                self._describe()
            self.publish(self.tracker.snapshot())

    def _describe(self) -> None:
        try:
            self.tracker.describe(self.client.execution(self.execution_id))
        except ClientError as exc:
            self.tracker.state["message"] = f"Could not read the execution: {exc}"
            return
        if self.notebook and self.tracker.state["status"] in FINISHED and not self.tracker.state["notebook_html"]:
            self.tracker.state["notebook_html"] = executed_notebook_html(self.client, self.execution_id)

    def command(self, command: Mapping[str, Any]) -> None:
        """``{"type": "cancel"}`` or ``{"type": "resume", "answer": ...}`` from the widget's buttons."""
        kind = command.get("type")
        try:
            if kind == "cancel":
                self.client.cancel(self.execution_id)
                message = "Cancel requested."
            elif kind == "resume":
                path = f"executions/{quote(self.execution_id)}/resume"
                self.client.request("POST", path, body={"answer": command.get("answer")})
                answer = command.get("answer")
                approved = isinstance(answer, Mapping) and answer.get("approved")
                message = "Approved: the run goes on." if approved else "Answered: the run goes on."
            else:
                return
        except ApiError as exc:
            message = f"{exc.title}: {exc.detail}"
        except ClientError as exc:
            message = str(exc)
        with self._lock:
            self.tracker.state["message"] = message
            self.publish(self.tracker.snapshot())

    def stop(self) -> None:
        if self.stream is not None:
            self.stream.stop()


class ExecutionView(anywidget.AnyWidget):
    """An execution, live: ``ExecutionView(execution_id)`` (optionally ``client=Client(...)``)."""

    _esm = bundle("execution")
    _css = bundle("execution", ".css")

    run = traitlets.Dict(help="The run's state: status, node states, steps, logs, outputs, error.").tag(sync=True)

    def __init__(self, execution_id: str, *, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(run=empty_run(str(execution_id)), **kwargs)
        self.client = client or Client()
        self.follower = RunFollower(self.client, str(execution_id), self._publish)
        self.on_msg(self._on_message)

    def _publish(self, state: dict[str, Any]) -> None:
        self.run = state

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, Mapping) and content.get("type") == "run_command":
            self.follower.command(dict(content.get("command") or {}))

    def close(self) -> None:
        self.follower.stop()
        super().close()
