"""The Lab extension's server side (orchestrator_widgets.lab) against a real personal server: the
notebook's parameters cell as the dialog offers it, a deploy with a schedule that the API then
shows, bad input as problem+json naming the field, and nothing for a caller without the token."""

from __future__ import annotations

import json
import logging
import types
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import nbformat
import pytest

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer

pytestmark = pytest.mark.timeout(120)

PARAMETERS = 'region = "emea"\nlimit: int = 5\nthreshold = 0.5\n'


def lab_call(
    server: PersonalServer, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.url}/orchestrator-lab/{path}", data=data, method=method)
    request.add_header("Authorization", f"token {server.token if token is None else token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw, kind = exc.read(), exc.headers.get("Content-Type", "")
        problem = json.loads(raw) if kind.startswith("application/problem+json") else {"not a problem": raw.decode()}
        return exc.code, problem


def parameterised(root: Path, name: str) -> str:
    """A notebook as JupyterLab writes it (sources as lists of lines), with a tagged parameters cell."""
    notebook: Any = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(PARAMETERS)
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell, nbformat.v4.new_code_cell("print(region, limit * threshold)")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / name)
    assert isinstance(json.loads((root / name).read_text())["cells"][0]["source"], list)
    return name


def test_notebook_info_reads_the_parameters_cell(server: PersonalServer, server_root: Path) -> None:
    path = parameterised(server_root, "info.ipynb")
    status, info = lab_call(server, "GET", f"notebook?path={path}")
    assert status == 200, info
    assert info["name"] == "info.ipynb"
    assert info["parameters"] == [
        {"name": "region", "default": "emea", "type": "str"},
        {"name": "limit", "default": 5, "type": "int"},
        {"name": "threshold", "default": 0.5, "type": "float"},
    ]
    assert info["api_error"] is None


def test_deploy_with_a_schedule_makes_a_version_the_api_shows(
    server: PersonalServer, server_root: Path, client: Client
) -> None:
    path = parameterised(server_root, "deployed.ipynb")
    agent = f"Lab server {uuid.uuid4().hex[:6]}"
    schedule = {"cron": "15 7 * * 1-5", "timezone": "Europe/Paris", "inputs": {"region": "apac", "limit": 9}}
    status, done = lab_call(server, "POST", "deploy", {"path": path, "agent": agent, "schedule": schedule})
    assert status == 201, done
    assert done["workflow"]["version"] == 1
    assert "version 1" in done["summary"]
    [found] = [a for a in client.agents(q=agent) if a["name"] == agent]
    assert found["framework"] == "notebook"
    [workflow] = client.workflows(found["id"])
    [saved] = [s for s in client.pages(f"workflows/{workflow['id']}/schedules")]
    assert (saved["cron"], saved["timezone"], saved["inputs"]) == ("15 7 * * 1-5", "Europe/Paris", schedule["inputs"])
    assert [p["name"] for p in workflow["parameters"]] == ["region", "limit", "threshold"]

    status, again = lab_call(server, "POST", "deploy", {"path": path, "agent": agent, "schedule": None})
    assert status == 201, again
    assert again["workflow"]["version"] == 2
    assert again["schedule"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"path": "x.ipynb"}, "agent"),
        ({"path": "x.ipynb", "agent": ""}, "agent"),
        ({"path": 3, "agent": "a"}, "path"),
        ({"path": "notes.txt", "agent": "a"}, "path"),
        ({"path": "nowhere.ipynb", "agent": "a"}, "path"),
        ({"path": "x.ipynb", "agent": "a", "schedule": "daily"}, "schedule"),
        ({"path": "x.ipynb", "agent": "a", "schedule": {"cron": " "}}, "cron"),
        ({"path": "x.ipynb", "agent": "a", "schedule": {"cron": "0 * * * *", "inputs": [1]}}, "inputs"),
        ([], "body"),
    ],
)
def test_bad_input_is_a_problem_naming_the_field(server: PersonalServer, body: Any, field: str) -> None:
    status, problem = lab_call(server, "POST", "deploy", body)
    assert status in (400, 404), problem
    assert field in {e["field"] for e in problem["errors"]}, problem


@pytest.mark.parametrize(
    ("schedule", "field"),
    [({"cron": "61 * * * *"}, "cron"), ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone")],
)
def test_a_refused_schedule_deploys_nothing(
    server: PersonalServer, server_root: Path, client: Client, schedule: dict[str, str], field: str
) -> None:
    path = parameterised(server_root, "badcron.ipynb")
    agent = f"Bad schedule {uuid.uuid4().hex[:6]}"
    status, problem = lab_call(server, "POST", "deploy", {"path": path, "agent": agent, "schedule": schedule})
    assert status == 400, problem
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert not [a for a in client.agents(q=agent) if a["name"] == agent]


def test_a_caller_without_the_token_gets_nothing(server: PersonalServer, server_root: Path) -> None:
    path = parameterised(server_root, "private.ipynb")
    status, _ = lab_call(server, "GET", f"notebook?path={path}", token="wrong")
    assert status == 403
    status, _ = lab_call(server, "POST", "deploy", {"path": path, "agent": "intruder"}, token="wrong")
    assert status == 403
    assert not [a for a in Client(server.url, server.token).agents(q="intruder") if a["name"] == "intruder"]


def test_the_routes_stay_off_in_a_hub_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The team mode's API process is a hub service: a deploy there would act with the service's token."""
    from orchestrator_widgets import lab

    added: list[Any] = []
    web_app = types.SimpleNamespace(add_handlers=lambda host, routes: added.extend(routes))
    serverapp = types.SimpleNamespace(web_app=web_app, base_url="/", log=logging.getLogger("test"))
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "orchestrator")
    lab._load_jupyter_server_extension(serverapp)
    assert added == []
    monkeypatch.delenv("JUPYTERHUB_SERVICE_NAME")
    lab._load_jupyter_server_extension(serverapp)
    assert [route for route, _handler in added] == ["/orchestrator-lab/notebook", "/orchestrator-lab/deploy"]
