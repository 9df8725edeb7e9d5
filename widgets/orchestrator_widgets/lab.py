"""The JupyterLab extension's server side: "Deploy as workflow…" and "Schedule…" on a notebook.

A jupyter-server extension of its own (enabled by ``jupyter-config``), so that it runs in every
JupyterLab of the install: the personal server, where the API is this very server, and a user's
server under JupyterHub, where the API is the hub's ``orchestrator`` service and ``orchestrator_ext``
is not loaded. Two routes, both for the logged-in user of this server only (jupyter-server's
authentication and ``contents`` authorization):

- ``GET /orchestrator-lab/notebook?path=P``: the notebook's ``parameters`` cell (what the dialog
  offers as the scheduled runs' inputs) and the user's notebook agents;
- ``POST /orchestrator-lab/deploy`` ``{path, agent, schedule: {cron, timezone, inputs} | null}``:
  the notebook as the contents manager has it, deployed through :func:`orchestrator_ext.deploy.
  deploy_notebook`, the code path of ``jupyter orchestrator deploy`` and ``%orchestrator deploy``.

The API is called as that user: under the hub with the server's own token (the user's identity),
in personal mode with this server's token (its owner). So the API's permission checks and
validation apply as they do to any client, and errors come back as problem+json with the field at
fault.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join
from orchestrator_runtimes.notebook import ParametersCellError, parse_parameters
from tornado import web

from orchestrator_ext.client import ApiError, Client, ClientError
from orchestrator_ext.deploy import DeployError, Deployment, deploy_notebook
from orchestrator_ext.engine.cron import CronError, check_cron, check_timezone

ROUTE = "orchestrator-lab"
_MAX_NAME = 200


class Problem(web.HTTPError):
    """An answer for the dialog: status, title, detail, and the fields at fault (field -> message)."""

    def __init__(self, status: int, title: str, detail: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(status, reason=title)
        self.title, self.detail, self.fields = title, detail, dict(fields or {})


def _bad(field: str, message: str) -> Problem:
    return Problem(400, "Bad request", f"{field}: {message}", {field: message})


def _from_api(exc: ClientError) -> Problem:
    """The API's refusal as the dialog shows it; fields named by their last part (``body.cron`` -> ``cron``)."""
    api = exc if isinstance(exc, ApiError) else exc.__cause__ if isinstance(exc.__cause__, ApiError) else None
    if isinstance(exc, DeployError):
        fields = {str(e.get("field", "")).split(".")[-1]: str(e.get("message")) for e in (api.errors if api else [])}
        return Problem(api.status if api else 409, "Not deployed", str(exc), fields)
    if api is not None:
        fields = {str(e.get("field", "")).split(".")[-1]: str(e.get("message")) for e in api.errors}
        return Problem(api.status, api.title, api.detail, fields)
    return Problem(502, "The Orchestrator API cannot be reached", str(exc))


class LabHandler(APIHandler):
    """Authenticated and authorized like the server's own contents API; errors as problem+json."""

    auth_resource = "contents"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        problem = exc if isinstance(exc, Problem) else None
        body = {
            "type": "about:blank",
            "status": status_code,
            "title": problem.title if problem else self._reason,
            "detail": problem.detail if problem else self._reason,
            "errors": [{"field": k, "message": v} for k, v in (problem.fields if problem else {}).items()],
        }
        self.finish(json.dumps(body), set_content_type="application/problem+json")

    def api_client(self) -> Client:
        """The API as this server's user: the hub's service (or ORCHESTRATOR_URL), else this very server."""
        hub = os.environ.get("JUPYTERHUB_API_URL") and os.environ.get("JUPYTERHUB_API_TOKEN")
        token = getattr(self.identity_provider, "token", "")
        here = self.serverapp
        if (
            not (os.environ.get("ORCHESTRATOR_URL") or hub)
            and "orchestrator_services" in self.settings
            and token
            and here
        ):
            return Client(here.connection_url, token)
        return Client()

    async def notebook(self, path: str) -> dict[str, Any]:
        """The notebook's JSON as the contents manager serves it (so any contents manager works)."""
        if not path or not path.endswith(".ipynb"):
            raise _bad("path", "a notebook's path (.ipynb) in this server's files")
        try:
            model = await ensure_async(self.contents_manager.get(path, content=True, type="notebook"))  # type: ignore[no-untyped-call]
        except web.HTTPError as exc:
            title = "Not found" if exc.status_code == 404 else "Not readable"
            raise Problem(exc.status_code, title, str(exc.log_message), {"path": str(exc.log_message)}) from exc
        import nbformat

        content: dict[str, Any] = json.loads(nbformat.writes(model["content"]))  # type: ignore[no-untyped-call]
        return content


class NotebookInfoHandler(LabHandler):
    """What the dialog offers: the parameters cell's names and defaults, the user's notebook agents."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        notebook = await self.notebook(path)
        try:
            parameters, parameters_error = list(parse_parameters(notebook)), None
        except ParametersCellError as exc:
            parameters, parameters_error = [], str(exc)
        agents: list[str] = []
        api_error = None
        try:
            found = await asyncio.to_thread(lambda: self.api_client().agents(limit=500))
            agents = sorted({str(a["name"]) for a in found if a.get("framework") == "notebook"})
        except ClientError as exc:
            api_error = f"Your agents could not be read: {exc}"
        self.finish(
            {
                "path": path,
                "name": path.rsplit("/", 1)[-1],
                "parameters": parameters,
                "parameters_error": parameters_error,
                "agents": agents,
                "api_error": api_error,
            }
        )


def _schedule_options(body: Mapping[str, Any]) -> dict[str, Any]:
    schedule = body.get("schedule")
    if schedule is None:
        return {}
    if not isinstance(schedule, Mapping):
        raise _bad("schedule", "an object {cron, timezone, inputs}, or null for no schedule")
    cron, timezone, inputs = schedule.get("cron"), schedule.get("timezone", "UTC"), schedule.get("inputs", {})
    if not isinstance(cron, str) or not cron.strip():
        raise _bad("cron", "a cron expression, e.g. 0 9 * * 1-5")
    if not isinstance(timezone, str) or not timezone.strip():
        raise _bad("timezone", "a time zone name, e.g. Europe/Paris")
    if not isinstance(inputs, Mapping):
        raise _bad("inputs", "an object of the runs' inputs")
    try:  # checked before anything is deployed: a refused schedule must not leave a new version behind
        check_cron(cron)
        check_timezone(timezone)
    except CronError as exc:
        raise _bad(exc.field, str(exc)) from exc
    return {"schedule": cron.strip(), "timezone": timezone.strip(), "inputs": dict(inputs)}


def _result(done: Deployment) -> dict[str, Any]:
    keep = ("id", "name", "version", "cron", "timezone", "next_run_at", "framework")

    def pick(item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: item.get(k) for k in keep if k in item}

    return {
        "summary": done.summary(),
        "agent": pick(done.agent),
        "workflow": pick(done.workflow),
        "schedule": pick(done.schedule) if done.schedule else None,
    }


class DeployHandler(LabHandler):
    """Deploy the notebook as the next version of the agent's workflow; schedule it when asked."""

    @web.authenticated
    @authorized
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise _bad("body", f"not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _bad("body", "a JSON object {path, agent, schedule}")
        agent, path = body.get("agent"), body.get("path")
        if not isinstance(agent, str) or not agent.strip() or len(agent) > _MAX_NAME:
            raise _bad("agent", f"the agent's name (1 to {_MAX_NAME} characters)")
        if not isinstance(path, str):
            raise _bad("path", "a notebook's path (.ipynb) in this server's files")
        options = _schedule_options(body)
        notebook = await self.notebook(path)
        source = path.rsplit("/", 1)[-1]

        def run() -> Deployment:
            return deploy_notebook(self.api_client(), notebook, agent.strip(), source=source, **options)

        try:
            done = await asyncio.to_thread(run)
        except ClientError as exc:
            raise _from_api(exc) from exc
        self.set_status(201)
        self.finish(_result(done))


def handlers(base_url: str) -> list[tuple[str, type[LabHandler]]]:
    return [
        (url_path_join(base_url, ROUTE, "notebook"), NotebookInfoHandler),
        (url_path_join(base_url, ROUTE, "deploy"), DeployHandler),
    ]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "orchestrator_widgets.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the routes; the API is found per request (the hub's service, or this server once it is up).

    Not in a JupyterHub service (the team mode's API process has the same environment): there a
    deploy would read the service's files and act with the service's own token, not a user's.
    """
    if os.environ.get("JUPYTERHUB_SERVICE_NAME"):
        serverapp.log.info("orchestrator_widgets.lab: off in the hub service %s", os.environ["JUPYTERHUB_SERVICE_NAME"])
        return
    serverapp.web_app.add_handlers(".*$", handlers(serverapp.base_url))
