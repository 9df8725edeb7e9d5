"""The personal mode's n8n: ``jupyter orchestrator`` starts it, provisions it, hands it to runs, stops it."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from orchestrator_ext.n8n.install import Installation
from tests.n8n.conftest import exported
from tests.n8n.test_n8n_database import n8n_rows
from tests.n8n.test_n8n_spec import n8n_spec
from tests.personal_server import PersonalServer, start_personal_server, wait_postgres_stopped

FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def n8n_processes(data_dir: Path) -> list[psutil.Process]:
    """The n8n started for ``data_dir`` (n8n runs in its data folder)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if "n8n" in cmdline and proc.info.get("cwd") == str(data_dir):
            found.append(proc)
    return found


def wait_until(what: str, check: Any, within: float) -> Any:
    deadline = time.monotonic() + within
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} not within {within:g} s"
        time.sleep(0.25)
    return found


def run_greet(server: PersonalServer) -> dict[str, Any]:
    agent = server.call("POST", "/agents", {"name": "greeter", "framework": "n8n"})
    assert agent.status == 201, agent.body
    body = {"name": "greet", "spec": n8n_spec(exported("greet"))}
    workflow = server.call("POST", f"/agents/{agent.body['id']}/workflows", body)
    assert workflow.status == 201, workflow.body
    started = server.call("POST", f"/workflows/{workflow.body['id']}/execute", {"inputs": {"name": "Ada"}})
    assert started.status == 202, started.body

    def ended() -> dict[str, Any] | None:
        run = server.call("GET", f"/executions/{started.body['id']}").body
        return run if run["status"] in FINAL else None

    return wait_until("the run's end", ended, 240)  # type: ignore[no-any-return]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.build_opener(NoRedirect()).open(request, timeout=60) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def check_the_editor(server: PersonalServer) -> None:
    """n8n's editor through the server: refused without the server's authentication, served with it."""
    editor = f"{server.url}/orchestrator/n8n/"
    status, headers, _ = fetch(editor)
    assert status in (302, 403), status  # a browser is sent to the server's login page
    assert status == 403 or "/login" in headers.get("Location", "")
    status, _, _ = fetch(f"{editor}rest/login")
    assert status in (302, 403), status
    status, headers, page = fetch(editor, server.token)
    assert status == 200, page[:300]
    assert headers["Content-Type"].startswith("text/html")
    assert b"n8n" in page
    assets = re.findall(rb'src="(/orchestrator/n8n/[^"]+\.js)"', page)  # its scripts, under the proxy's path
    assert assets, page[:500]
    status, headers, _ = fetch(f"{server.url}{assets[0].decode()}", server.token)
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    status, _, body = fetch(f"{editor}rest/login", server.token)  # n8n's "who am I": the proxy's session
    assert status == 200, body[:300]
    assert json.loads(body)["data"]["email"] == "owner@orchestrator.localhost"


def test_the_personal_server_starts_n8n_hands_it_to_runs_and_stops_it(
    n8n_installation: Installation, tmp_path: Path
) -> None:
    env = {"ORCHESTRATOR_N8N_HOME": str(n8n_installation.home), "ORCHESTRATOR_N8N": "on-demand"}
    server = start_personal_server(tmp_path, tmp_path / "data", extra_env=env)
    n8n_dir = tmp_path / "data" / "n8n"
    try:
        assert server.call("GET", "/users/me").status == 200  # the owner's personal organization, made now

        def integration() -> list[Any]:
            listed = server.call("GET", "/integrations?kind=n8n").body["items"]
            return [i for i in listed if i["name"] == "n8n" and i["has_secret"]]

        # the first time, n8n starts at once: runs are handed the integration it gets
        wait_until("the n8n integration", integration, 240)  # n8n's first start migrates its database
        assert n8n_processes(n8n_dir), "n8n is not running from its data folder"
        run = run_greet(server)
        assert run["status"] == "succeeded", run
        assert run["outputs"]["output"]["greeting"] == "Hello, Ada!"
        # n8n keeps its data on the server's PostgreSQL, in its own database, as its own role: no SQLite
        assert f"Greet [orchestrator {run['workflow_id']}]" in n8n_rows(tmp_path / "data")
        assert not list(n8n_dir.rglob("database.sqlite"))
        check_the_editor(server)
        started = n8n_processes(n8n_dir)
    finally:
        server.stop(signal.SIGTERM)
        wait_postgres_stopped(server.pgdata)
    gone = wait_until("n8n's end", lambda: not any(p.is_running() for p in started) or None, 30)
    assert gone
    assert "n8n did not start" not in server.output()
