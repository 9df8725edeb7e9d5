"""Fixtures for the whole suite.

A real PostgreSQL (the embedded server) is started once per session; each
test module gets a fresh, migrated database. Servers come from pytest-jupyter.

Fixtures:
- ``pg_cluster``: the session's embedded PostgreSQL (admin URLs, ``new_database()``).
- ``database``: a fresh migrated database for the module: ``admin_url``, ``app_url``.
- ``jp_server_config``: a jupyter-server with the orchestrator extension on ``database``
  and the header identity provider (``Authorization: token user:<name>``).
- ``api``: ``await api("POST", "agents", user="alice", body={...})`` returns a ``Reply``
  (``status``, ``json``, ``headers``); never raises on 4xx/5xx.
- ``create_org(user, name)``, ``add_member(owner, org_id, user, role)``,
  ``create_agent(user, **fields)``, ``create_workflow(user, agent_id, spec=..., name=...)``:
  factory fixtures that assert success and return the JSON.
- ``admin_sql``: run SQL as the database superuser on the module's database.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator_ext.db.embedded import EmbeddedPostgres
from orchestrator_ext.db.engine import migrate, provision_app_role
from tests.identity import HeaderIdentityProvider

pytest_plugins = ["jupyter_server.pytest_plugin"]

TEST_KEYS = "test1:" + "A" * 43  # 32 zero bytes, base64url: fine for tests, never for real
APP_ROLE = "orchestrator_app"
NOTEBOOK_SPEC: dict[str, Any] = {
    "notebook": {
        "content": {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [
                {
                    "cell_type": "code",
                    "id": "params",
                    "metadata": {"tags": ["parameters"]},
                    "execution_count": None,
                    "outputs": [],
                    "source": "x = 1\nname = 'world'",
                },
                {
                    "cell_type": "code",
                    "id": "body",
                    "metadata": {},
                    "execution_count": None,
                    "outputs": [],
                    "source": "print(x, name)",
                },
            ],
        }
    }
}
GRAPH_SPEC: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "input", "config": {}},
        {"id": "llm", "type": "model", "config": {"prompt": "Say hi"}},
        {"id": "end", "type": "output", "config": {}},
    ],
    "edges": [{"source": "start", "target": "llm"}, {"source": "llm", "target": "end"}],
}


class PgCluster:
    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server

    def admin_url(self, database: str = "postgres") -> str:
        return self.server.admin_url(database)

    def app_url(self, database: str) -> str:
        return self.server.role_url(APP_ROLE, database)

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    root = Path(tempfile.mkdtemp(prefix="orch-test-"))
    server = EmbeddedPostgres(root / "pgdata")
    server.start()
    try:
        yield PgCluster(server)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class TestDatabase:
    __test__ = False  # a fixture value, not a test class

    name: str
    admin_url: str
    app_url: str


@pytest.fixture(scope="module")
def database(pg_cluster: PgCluster) -> TestDatabase:
    name = pg_cluster.new_database()
    admin = pg_cluster.admin_url(name)
    migrate(admin)
    provision_app_role(admin, APP_ROLE)
    return TestDatabase(name=name, admin_url=admin, app_url=pg_cluster.app_url(name))


@pytest.fixture
def admin_sql(database: TestDatabase) -> Callable[..., list[tuple[Any, ...]]]:
    def run(sql: str, params: tuple[Any, ...] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(database.admin_url, autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def orchestrator_config() -> dict[str, Any]:
    """Extra OrchestratorApp traits for one test (override in a module to change them)."""
    return {}


@pytest.fixture
def jp_server_config(database: TestDatabase, orchestrator_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"orchestrator_ext": True},
            "identity_provider_class": HeaderIdentityProvider,
        },
        "OrchestratorApp": {
            "database_url": database.app_url,
            "encryption_keys": TEST_KEYS,
            "migrate_on_start": False,
            "log_requests": False,
            "pool_size": 4,
            "run_engine": False,  # engine tests start their own workers
            # buckets outlive a test within a module's database: tests/api/test_rate_limits.py turns them on
            "rate_limits": False,
            **orchestrator_config,
        },
    }


@dataclass
class Reply:
    status: int
    json: Any
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""


Api = Callable[..., Awaitable[Reply]]


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    async def call(
        method: str,
        *path: str,
        user: str | None = "alice",
        body: Any = None,
        raw_body: bytes | str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        hdrs = {"Authorization": f"token user:{user}" if user else "none", "Content-Type": "application/json"}
        hdrs.update(headers or {})
        data: bytes | str | None = raw_body
        if data is None and body is not None:
            data = json.dumps(body)
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        response = await jp_fetch(
            "orchestrator",
            "api",
            "v1",
            *path,
            method=method,
            body=data,
            params=params,
            headers=hdrs,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        text = response.body.decode("utf-8", "replace") if response.body else ""
        ctype = response.headers.get("Content-Type", "")
        parsed = json.loads(text) if text and "json" in ctype else None
        return Reply(response.code, parsed, dict(response.headers.get_all()), text)

    return call


def _ok(reply: Reply, status: int, what: str) -> Any:
    assert reply.status == status, f"{what}: {reply.status} {reply.text}"
    return reply.json


@pytest.fixture
def create_org(api: Api) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(user: str = "alice", name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": name or f"org-{uuid.uuid4().hex[:8]}", **fields}
        return _ok(await api("POST", "organizations", user=user, body=body), 201, "create org")  # type: ignore[no-any-return]

    return make


@pytest.fixture
def add_member(api: Api) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(owner: str, org_id: str, user: str, role: str) -> dict[str, Any]:
        # the user must exist: their first request creates them
        _ok(await api("GET", "users", "me", user=user), 200, "first sight")
        body = {"username": user, "role": role}
        return _ok(  # type: ignore[no-any-return]
            await api("POST", "organizations", org_id, "members", user=owner, body=body), 201, "add member"
        )

    return make


@pytest.fixture
def create_agent(api: Api) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(user: str = "alice", **fields: Any) -> dict[str, Any]:
        body = {"name": f"agent-{uuid.uuid4().hex[:8]}", "framework": "langgraph", **fields}
        return _ok(await api("POST", "agents", user=user, body=body), 201, "create agent")  # type: ignore[no-any-return]

    return make


@pytest.fixture
def create_workflow(api: Api) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def make(
        user: str, agent_id: str, spec: dict[str, Any] | None = None, name: str | None = None
    ) -> dict[str, Any]:
        body = {"name": name or f"wf-{uuid.uuid4().hex[:8]}", "spec": spec if spec is not None else GRAPH_SPEC}
        return _ok(  # type: ignore[no-any-return]
            await api("POST", "agents", agent_id, "workflows", user=user, body=body), 201, "create workflow"
        )

    return make


def pytest_configure(config: pytest.Config) -> None:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


@pytest.fixture(scope="session")
def local_model() -> Iterator[dict[str, Any]]:
    """The real local model server (SmolLM2-135M-Instruct on llama-cpp-python), once per session, on a free
    loopback port, as ``jupyter orchestrator model serve`` runs it; the integration runs receive for it."""
    from orchestrator_ext import local_model as lm

    process, base_url = lm.start_server(threads=2)
    try:
        lm.wait_until_ready(base_url, process)
        yield lm.integration(base_url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
