"""The README's personal mode, end to end: ``jupyter orchestrator`` as a real process.

One server on a fresh data dir serves the first tests; the last test of the
story stops it, starts a second one on the same data dir and finds its rows
still there. Another server runs on an external PostgreSQL given by URL.
"""

from __future__ import annotations

import re
import signal
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import APP_ROLE, PgCluster
from tests.personal_server import (
    PersonalServer,
    postgres_running_on,
    start_personal_server,
    wait_postgres_stopped,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("personal")


@pytest.fixture(scope="module")
def first_run(root: Path) -> Iterator[PersonalServer]:
    server = start_personal_server(root, root / "data")
    try:
        yield server
    finally:
        server.stop(signal.SIGTERM)
        wait_postgres_stopped(server.pgdata)


def test_prints_where_it_serves(first_run: PersonalServer) -> None:
    output = first_run.output()
    assert re.search(rf"http://(localhost|127\.0\.0\.1):{first_run.port}/lab\?token=", output), output[-2000:]
    assert "Orchestrator API at /orchestrator/api/v1/" in output
    # the token is IdentityProvider.token: nothing warns that a ServerApp.token nobody set is deprecated
    assert "ServerApp.token" not in output, output[-2000:]


def test_health_reports_the_embedded_database(first_run: PersonalServer) -> None:
    reply = first_run.call("GET", "/health")
    assert reply.status == 200
    assert reply.body["status"] == "ok"
    assert reply.body["database"] == "ok"
    assert postgres_running_on(first_run.pgdata), "the embedded PostgreSQL runs in the data dir"


def test_token_is_required(first_run: PersonalServer) -> None:
    assert first_run.call("GET", "/agents", token="wrong").status == 403
    assert first_run.call("GET", "/agents").status == 200


def test_jupyterlab_is_served(first_run: PersonalServer) -> None:
    with urllib.request.urlopen(f"{first_run.url}/lab?token={first_run.token}", timeout=30) as response:
        assert response.status == 200
        assert b"JupyterLab" in response.read()


def test_rows_survive_a_restart(first_run: PersonalServer, root: Path) -> None:
    created = first_run.call("POST", "/agents", {"name": "Survivor", "framework": "notebook"})
    assert created.status == 201, created.body
    agent_id = created.body["id"]

    assert first_run.stop(signal.SIGINT) == 0
    assert wait_postgres_stopped(first_run.pgdata) == [], "Ctrl-C stops the embedded PostgreSQL"
    # pg_ctl removes postmaster.pid on a clean shutdown; a killed server leaves it behind
    assert not (first_run.pgdata / "postmaster.pid").exists(), first_run.output()[-4000:]

    second = start_personal_server(root, first_run.data_dir)
    try:
        again = second.call("GET", f"/agents/{agent_id}")
        assert again.status == 200, again.body
        assert again.body["name"] == "Survivor"
        assert again.body["framework"] == "notebook"
    finally:
        assert second.stop(signal.SIGTERM) == 0
    assert wait_postgres_stopped(second.pgdata) == []


def test_external_postgresql_by_url(pg_cluster: PgCluster, tmp_path: Path) -> None:
    name = pg_cluster.new_database()
    admin_url = pg_cluster.admin_url(name)
    data_dir = tmp_path / "data"
    server = start_personal_server(
        tmp_path,
        data_dir,
        extra_env={
            "ORCHESTRATOR_DATABASE_URL": pg_cluster.app_url(name),
            "ORCHESTRATOR_DATABASE_ADMIN_URL": admin_url,
        },
    )
    try:
        marker = f"external-{uuid.uuid4().hex[:8]}"
        created = server.call("POST", "/agents", {"name": marker, "framework": "langgraph"})
        assert created.status == 201, created.body
        output = server.output()
    finally:
        assert server.stop(signal.SIGTERM) == 0

    assert not (data_dir / "pgdata").exists(), "no embedded PostgreSQL when a URL is given"
    assert "row-level security is not enforced" not in output
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute("SELECT name FROM agents WHERE name = %s", (marker,)).fetchall()
        role = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
    assert rows == [(marker,)]
    assert role == (False, False), "the server's role is walled by row-level security"


def test_model_serve_answers_like_openai(tmp_path: Path) -> None:
    """``jupyter orchestrator model serve``: the local model, offline, OpenAI-compatible."""
    import json
    import subprocess
    import sys

    from orchestrator_ext import local_model

    port = local_model.free_port()
    log = (tmp_path / "model.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "orchestrator", "model", "serve", f"--port={port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1"
        local_model.wait_until_ready(base, process)
        with urllib.request.urlopen(f"{base}/models", timeout=10) as reply:
            models = json.load(reply)
        assert [m["id"] for m in models["data"]] == [local_model.MODEL_ALIAS]
        ask = {"model": local_model.MODEL_ALIAS, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        request = urllib.request.Request(
            f"{base}/chat/completions", json.dumps(ask).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            answer = json.load(reply)
        assert answer["usage"]["completion_tokens"] > 0
        assert answer["choices"][0]["message"]["role"] == "assistant"
    finally:
        local_model.stop_server(process)
        log.close()
    assert "serving SmolLM2-135M-Instruct" in (tmp_path / "model.log").read_text()
