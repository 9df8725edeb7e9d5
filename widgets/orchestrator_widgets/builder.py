"""``Builder()``: draw an agent's workflow, see it checked as you draw, save versions, run it.

The spec being edited, its layout, the selection, the problems found and the
saved versions are traitlets shared with the browser. The browser checks each
change against the spec's JSON Schema at once; this side asks the server
(``POST /workflows/validate``, debounced) and saves, loads versions and runs
through :class:`orchestrator_ext.client.Client`, with the user's own identity.
"""

from __future__ import annotations

import contextvars
import copy
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import anywidget
import traitlets

from orchestrator_ext.client import ApiError, Client, ClientError

from . import specs
from ._assets import bundle
from .execution import RunFollower
from .tracking import empty_run

#: the server check waits this long after the last change (typing in a form changes the spec per key)
VALIDATE_DELAY_S = 0.4

# Threads and the kernel's subshells. The check and a run's follower set traits from their own
# threads. ipykernel (7.x) takes a thread's parent message from the last message *any* subshell
# handled, and routes the browser's later messages on this widget's comm to that message's subshell.
# When that was the widget manager's restore (``request_states`` on its short-lived
# ``jupyter.widget.control`` comm), the subshell is deleted right after, and every edit the browser
# sends is then refused (``UnknownSubshellError``): the canvas shows nodes the kernel never gets.
# So the threads run in a copy of the context of the message that started them (this comm's message,
# or the cell that made the widget), whose subshell lives as long as this widget's comm.
EMPTY_SPEC: dict[str, Any] = {"nodes": [], "edges": []}


def _problem(error: Mapping[str, Any]) -> dict[str, str]:
    field = str(error.get("field") or "spec")
    where = field.removeprefix("spec.") if field != "spec" else field
    return {"field": where, "message": str(error.get("message") or "")}


class Builder(anywidget.AnyWidget):
    """The visual agent builder: ``Builder()`` for a new workflow, ``Builder(workflow_id=...)`` to edit one."""

    _esm = bundle("builder")
    _css = bundle("builder", ".css")

    spec = traitlets.Dict(help="The workflow spec being edited (nodes, edges, options).").tag(sync=True)
    layout = traitlets.Dict(help="Node id -> {x, y} on the canvas (saved with a version: spec.ui.positions).").tag(
        sync=True
    )
    selection = traitlets.List(traitlets.Unicode(), help="The selected nodes' ids.").tag(sync=True)
    schema = traitlets.Dict(help="The workflow spec's JSON Schema, as the server serves it.").tag(sync=True)
    palette: traitlets.List[Any] = traitlets.List(help="The node types offered: {type, label, description}.").tag(
        sync=True
    )
    framework = traitlets.Unicode("langgraph", help="The agent's framework.").tag(sync=True)
    server_problems: traitlets.List[Any] = traitlets.List(
        help="The server's problems with the spec: {field, message}."
    ).tag(sync=True)
    validating = traitlets.Bool(False, help="A server check is under way.").tag(sync=True)
    status = traitlets.Dict({"kind": "", "message": ""}, help="What the last action did.").tag(sync=True)
    workflow_id = traitlets.Unicode(None, allow_none=True, help="The saved workflow.").tag(sync=True)
    agent_id = traitlets.Unicode(None, allow_none=True, help="The workflow's agent.").tag(sync=True)
    name = traitlets.Unicode("", help="The workflow's name.").tag(sync=True)
    version = traitlets.Int(0, help="The version shown (0: not saved yet).").tag(sync=True)
    versions: traitlets.List[Any] = traitlets.List(
        help="Saved versions, newest first: {version, comment, created_at}."
    ).tag(sync=True)
    changes = traitlets.List(traitlets.Unicode(), help="What the version shown changed.").tag(sync=True)
    shown = traitlets.Int(0, help="Counts the saved versions shown (the canvas fits each into view).").tag(sync=True)
    dirty = traitlets.Bool(False, help="The spec or its nodes' positions differ from the version shown.").tag(sync=True)
    input_fields: traitlets.List[Any] = traitlets.List(help="The inputs a run asks for: {name, type, default}.").tag(
        sync=True
    )
    run = traitlets.Dict(None, allow_none=True, help="The last run's state (see ExecutionView).").tag(sync=True)
    tab = traitlets.Unicode("build", help="'build' or 'run'.").tag(sync=True)

    def __init__(
        self,
        workflow_id: str | None = None,
        *,
        agent_id: str | None = None,
        framework: str = "langgraph",
        name: str = "",
        spec: Mapping[str, Any] | None = None,
        client: Client | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.client = client or Client()
        self._saved: dict[str, Any] | None = None
        self._saved_positions: dict[str, dict[str, float]] = {}
        self._etag = 0  # the newest version this builder knows: a save that is not on top of it gets a 409
        self._parameters: list[dict[str, Any]] = []
        self._timer: threading.Timer | None = None
        self._run_context = contextvars.copy_context()  # the follower's updates go out as the Run click's
        self._generation = 0
        self._lock = threading.Lock()
        self.follower: RunFollower | None = None
        self.schema = self.client.request("GET", "schemas/workflow-spec.json")
        self._runtimes: list[dict[str, Any]] = list(self.client.request("GET", "runtimes").get("items") or [])
        self.observe(self._on_spec_edit, names="spec")
        self.observe(lambda _change: self._update_dirty(), names="layout")
        self.on_msg(self._on_message)
        if workflow_id:
            self._load_workflow(str(workflow_id))
        else:
            if agent_id:
                framework = str(self.client.agent(agent_id)["framework"])
            self.agent_id, self.framework, self.name = agent_id, framework, name or "Untitled workflow"
            self.palette = specs.palette(self.framework, self._runtimes, self.schema)
            self.spec = copy.deepcopy(dict(spec or EMPTY_SPEC))

    # ---- loading ------------------------------------------------------------------

    def _load_workflow(self, workflow_id: str) -> None:
        workflow = self.client.workflow(workflow_id)
        agent = self.client.agent(str(workflow["agent_id"]))
        self.workflow_id, self.agent_id = str(workflow["id"]), str(workflow["agent_id"])
        self.framework, self.name = str(agent["framework"]), str(workflow["name"])
        self.palette = specs.palette(self.framework, self._runtimes, self.schema)
        self._etag = int(workflow["version"])
        self._show(int(workflow["version"]), dict(workflow["spec"]), list(workflow.get("parameters") or []))
        self._refresh_versions()

    def _show(self, version: int, saved: dict[str, Any], parameters: list[dict[str, Any]]) -> None:
        """Show a saved version: its spec at the positions it was saved with, what it changed, its inputs."""
        spec, positions = specs.split_ui(saved)
        self._saved, self._saved_positions, self._parameters = copy.deepcopy(spec), positions, parameters
        self.version = version
        self.layout = positions  # none saved (older versions, code-made specs): the canvas lays them out
        self.shown += 1
        self.spec = spec
        self.changes = self._changes_of(version, spec)
        self.input_fields = specs.input_fields(spec, parameters)

    def _changes_of(self, version: int, spec: Mapping[str, Any]) -> list[str]:
        if version <= 1 or not self.workflow_id:
            return specs.changes(None, spec)
        try:
            before = self.client.request("GET", f"workflows/{quote(self.workflow_id)}/versions/{version - 1}")
        except ClientError:
            return []
        return specs.changes(dict(before["spec"]), spec)

    def _refresh_versions(self) -> None:
        if not self.workflow_id:
            return
        items = self.client.pages(f"workflows/{quote(self.workflow_id)}/versions", limit=200)
        self.versions = [
            {"version": int(v["version"]), "comment": str(v.get("comment") or ""), "created_at": str(v["created_at"])}
            for v in items
        ]

    def load_version(self, version: int) -> None:
        """Show saved version ``version``; saving it then makes it the newest version again."""
        if not self.workflow_id:
            return
        try:
            found = self.client.request("GET", f"workflows/{quote(self.workflow_id)}/versions/{int(version)}")
        except ClientError as exc:
            self._say("error", f"Could not load version {version}: {exc}")
            return
        self._show(int(found["version"]), dict(found["spec"]), list(found.get("parameters") or []))
        self._say("info", f"Showing v{version}" + (f" (the newest is v{self._etag})" if version != self._etag else ""))

    def reload(self) -> None:
        """Load the newest version (after a stale save, or to see a colleague's change)."""
        if self.workflow_id:
            self._load_workflow(self.workflow_id)
            self._say("info", f"Reloaded: v{self.version} is the newest version.")

    # ---- saving -----------------------------------------------------------------------

    def save(self, comment: str = "") -> int | None:
        """Save the spec as the next version (version 1 for a new workflow); the version saved, or None."""
        try:
            workflow = self._update(comment) if self.workflow_id else self._create(comment)
        except ApiError as exc:
            if exc.status == 409:
                self._say(
                    "conflict",
                    f"Not saved: this workflow has a newer version than v{self._etag} (saved elsewhere). "
                    "Reload the latest version to go on from it (your unsaved changes here are dropped).",
                )
            else:
                self._say("error", f"Not saved: {exc}")
            return None
        except ClientError as exc:
            self._say("error", f"Not saved: {exc}")
            return None
        self._etag = int(workflow["version"])
        self.workflow_id = str(workflow["id"])
        previous = self._saved
        stored, positions = specs.split_ui(dict(workflow["spec"]))
        self._saved, self._parameters = copy.deepcopy(stored), list(workflow.get("parameters") or [])
        self._saved_positions = positions
        self.version = self._etag
        self.spec = stored  # as the server stores it (defaults filled in): not dirty
        self.dirty = False
        self.changes = specs.changes(previous, stored)
        self.input_fields = specs.input_fields(self.spec, self._parameters)
        self._refresh_versions()
        self._say("success", f"Saved as version {self._etag}.")
        return self._etag

    def _create(self, comment: str) -> dict[str, Any]:
        if not self.agent_id:
            agent = self.client.create_agent(self.name or "Untitled agent", self.framework)
            self.agent_id = str(agent["id"])
        spec = specs.with_positions(self.spec, self.layout)
        return self.client.create_workflow(self.agent_id, self.name or "Untitled workflow", spec, comment=comment)

    def _update(self, comment: str) -> dict[str, Any]:
        body = {"spec": specs.with_positions(self.spec, self.layout), "comment": comment, "name": self.name or None}
        result: dict[str, Any] = self.client.request(
            "PUT", f"workflows/{quote(str(self.workflow_id))}", body=body, headers={"If-Match": f'"{self._etag}"'}
        )
        return result

    # ---- running ------------------------------------------------------------------------

    def execute(self, inputs: Mapping[str, Any] | None = None) -> str | None:
        """Run the version shown with ``inputs`` and follow it in the Run tab; the execution id."""
        if not self.workflow_id or self.dirty:
            self._say("error", "Save first: a run uses a saved version.")
            return None
        try:
            execution = self.client.execute(self.workflow_id, dict(inputs or {}), version=self.version)
        except ClientError as exc:
            self._say("error", f"Not started: {exc}")
            return None
        if self.follower is not None:
            self.follower.stop()
        self.run = empty_run(str(execution["id"]), self.spec)
        self.tab = "run"
        self._run_context = contextvars.copy_context()
        self.follower = RunFollower(self.client, str(execution["id"]), self._publish_run)
        self._say("info", f"Started execution {execution['id']} (v{self.version}).")
        return str(execution["id"])

    def _publish_run(self, state: dict[str, Any]) -> None:
        """The follower's thread: sent as a reply to the Run click (see "Threads and the kernel's subshells")."""
        self._run_context.copy().run(setattr, self, "run", state)

    # ---- validation ---------------------------------------------------------------------

    def _update_dirty(self) -> None:
        """Unsaved: the spec changed, or a node moved from where the version shown has it (when it has any)."""
        moved = specs.positions_of(self.spec, self.layout)
        self.dirty = self._saved is None or self.spec != self._saved or (bool(moved) and moved != self._saved_positions)

    def _on_spec_edit(self, change: Mapping[str, Any]) -> None:
        self._update_dirty()
        self.input_fields = specs.input_fields(change["new"], self._parameters if not self.dirty else ())
        with self._lock:
            self._generation += 1
            if self._timer is not None:
                self._timer.cancel()
            self.validating = True
            pending = (copy.deepcopy(change["new"]), self._generation)
            # in the context of the edit's message: see "Threads and the kernel's subshells" above
            self._timer = threading.Timer(VALIDATE_DELAY_S, contextvars.copy_context().run, (self._validate, *pending))
            self._timer.daemon = True
            self._timer.start()

    def _validate(self, spec: dict[str, Any], generation: int) -> None:
        try:
            answer = self.client.request("POST", "workflows/validate", body={"framework": self.framework, "spec": spec})
            problems = [_problem(error) for error in answer.get("errors") or []]
        except ClientError as exc:
            problems = [{"field": "spec", "message": f"The server could not check the workflow: {exc}"}]
        with self._lock:
            if generation != self._generation:
                return  # the spec changed again: the newer check will answer
            self.server_problems = [{**problem, "source": "server"} for problem in problems]
            self.validating = False

    def validate_now(self) -> list[dict[str, str]]:
        """Check the spec on the server now (what the debounced check does); the problems found."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        self._validate(copy.deepcopy(self.spec), generation)
        return list(self.server_problems)

    # ---- the browser's requests -----------------------------------------------------------

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, Mapping):
            return
        kind = content.get("type")
        if kind == "save":
            self.save(str(content.get("comment") or ""))
        elif kind == "load_version":
            self.load_version(int(content.get("version") or 0))
        elif kind == "reload":
            self.reload()
        elif kind == "run":
            inputs = content.get("inputs")
            self.execute(inputs if isinstance(inputs, Mapping) else {})
        elif kind == "run_command" and self.follower is not None:
            self.follower.command(dict(content.get("command") or {}))

    def _say(self, kind: str, message: str) -> None:
        self.status = {"kind": kind, "message": message}

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.follower is not None:
            self.follower.stop()
        super().close()
