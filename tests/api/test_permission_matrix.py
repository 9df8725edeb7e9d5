"""Every endpoint × every role × own and other tenant.

The expectations are written here, independently of the permission table in
the code: each case names the least role that may perform it. A member below
that role gets 403; someone from another organization gets 404 (the resource
does not exist for them); an anonymous caller gets 403 on every authenticated
route. A route that appears in the server but not in this matrix fails the
coverage test, so a new endpoint cannot skip authorization tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from orchestrator_ext.handlers import all_handlers
from tests.conftest import GRAPH_SPEC, Api

RANK = {"viewer": 0, "developer": 1, "admin": 2, "owner": 3}
MEMBERS = {"owner": "m-boss", "admin": "m-ada", "developer": "m-dev", "viewer": "m-vic"}
OUTSIDER = "m-eve"
PLATFORM = "platform admin"

World = dict[str, str]
Setup = Callable[[Api, World], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    least: str | None  # least role allowed; None: any authenticated user, not organization-scoped; PLATFORM
    ok: int
    body: Callable[[World, dict[str, str]], Any] | None = None
    setup: Setup | None = None


async def _fresh_user(api: Api, world: World) -> dict[str, str]:
    name = f"u-{uuid.uuid4().hex[:8]}"
    me = await api("GET", "users", "me", user=name)
    assert me.status == 200
    return {"user": name, "user_id": me.json["id"]}


async def _fresh_member(api: Api, world: World) -> dict[str, str]:
    fresh = await _fresh_user(api, world)
    added = await api(
        "POST",
        "organizations",
        world["org"],
        "members",
        user=MEMBERS["owner"],
        body={"username": fresh["user"], "role": "viewer"},
    )
    assert added.status == 201, added.text
    return fresh


async def _fresh_agent(api: Api, world: World) -> dict[str, str]:
    made = await api(
        "POST",
        "agents",
        user=MEMBERS["owner"],
        body={"org_id": world["org"], "name": uuid.uuid4().hex, "framework": "langgraph"},
    )
    assert made.status == 201, made.text
    return {"agent": made.json["id"]}


async def _fresh_integration(api: Api, world: World) -> dict[str, str]:
    made = await api(
        "POST",
        "integrations",
        user=MEMBERS["owner"],
        body={"org_id": world["org"], "kind": "tool", "name": uuid.uuid4().hex, "config": {}},
    )
    assert made.status == 201, made.text
    return {"integration": made.json["id"]}


async def _fresh_schedule(api: Api, world: World) -> dict[str, str]:
    made = await api(
        "POST", "workflows", world["workflow"], "schedules", user=MEMBERS["owner"], body={"cron": "@daily"}
    )
    assert made.status == 201, made.text
    return {"schedule": made.json["id"]}


async def _ended_execution(api: Api, world: World) -> dict[str, str]:
    """A run that ended (cancelled while queued), with an executed notebook stored for it."""
    run = await api("POST", "workflows", world["workflow"], "execute", user=MEMBERS["owner"], body={"inputs": {}})
    assert run.status == 202, run.text
    cancelled = await api("POST", "executions", run.json["id"], "cancel", user=MEMBERS["owner"])
    assert cancelled.status == 200, cancelled.text
    with psycopg.connect(world["admin_url"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO execution_notebooks (execution_id, org_id, attempt, content) VALUES (%s, %s, 0, %s)",
            (run.json["id"], world["org"], Jsonb({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})),
        )
    return {"ended": run.json["id"]}


async def _fresh_execution(api: Api, world: World) -> dict[str, str]:
    run = await api("POST", "workflows", world["workflow"], "execute", user=MEMBERS["owner"], body={"inputs": {}})
    assert run.status == 202, run.text
    return {"fresh": run.json["id"]}


async def _waiting_execution(api: Api, world: World) -> dict[str, str]:
    """A run stopped at a human approval (set as a worker would leave it)."""
    run = await api("POST", "workflows", world["workflow"], "execute", user=MEMBERS["owner"], body={"inputs": {}})
    assert run.status == 202, run.text
    with psycopg.connect(world["admin_url"], autocommit=True) as conn:
        conn.execute(
            "UPDATE workflow_executions SET status = 'waiting', waiting_for = %s WHERE id = %s",
            (Jsonb({"node": "approve", "question": "ok?"}), run.json["id"]),
        )
    return {"waiting": run.json["id"]}


def _named(world: World, extra: dict[str, str]) -> dict[str, Any]:
    return {"name": f"n-{uuid.uuid4().hex[:8]}"}


CASES: list[Case] = [
    Case("GET", "/users/me", None, 200),
    Case("PUT", "/users/me", None, 200, body=lambda w, e: {"display_name": "Someone"}),
    Case("GET", "/organizations", None, 200),
    Case("POST", "/organizations", None, 201, body=_named),
    Case("GET", "/organizations/{org}", "viewer", 200),
    Case("PATCH", "/organizations/{org}", "admin", 200, body=lambda w, e: {"name": "Acme"}),
    Case("PATCH", "/organizations/{org}", "owner", 200, body=lambda w, e: {"tier": "team"}),
    Case("GET", "/organizations/{org}/members", "viewer", 200),
    Case("GET", "/organizations/{org}/usage", "admin", 200),
    Case(
        "POST",
        "/organizations/{org}/members",
        "admin",
        201,
        body=lambda w, e: {"username": e["user"], "role": "viewer"},
        setup=_fresh_user,
    ),
    Case(
        "PATCH",
        "/organizations/{org}/members/{user_id}",
        "admin",
        200,
        body=lambda w, e: {"role": "developer"},
        setup=_fresh_member,
    ),
    Case("DELETE", "/organizations/{org}/members/{user_id}", "admin", 204, setup=_fresh_member),
    Case("GET", "/agents?org_id={org}", "viewer", 200),
    Case(
        "POST",
        "/agents",
        "developer",
        201,
        body=lambda w, e: {"org_id": w["org"], "name": uuid.uuid4().hex, "framework": "crewai"},
    ),
    Case("GET", "/agents/{agent}", "viewer", 200),
    Case("PUT", "/agents/{agent}", "developer", 200, body=lambda w, e: {"description": "changed"}),
    Case("DELETE", "/agents/{agent}", "developer", 204, setup=_fresh_agent),
    Case("GET", "/agents/{agent}/workflows", "viewer", 200),
    Case(
        "POST",
        "/agents/{agent}/workflows",
        "developer",
        201,
        body=lambda w, e: {"name": uuid.uuid4().hex, "spec": GRAPH_SPEC},
    ),
    Case("GET", "/workflows/{workflow}", "viewer", 200),
    Case("PUT", "/workflows/{workflow}", "developer", 200, body=lambda w, e: {"spec": GRAPH_SPEC}),
    Case("GET", "/workflows/{workflow}/versions", "viewer", 200),
    Case("GET", "/workflows/{workflow}/versions/1", "viewer", 200),
    Case("POST", "/workflows/{workflow}/execute", "developer", 202, body=lambda w, e: {"inputs": {}}),
    # the world's workflow is not an n8n one: allowed roles reach the 409 that says so (tests/n8n run a real sync)
    Case("POST", "/workflows/{workflow}/sync-from-n8n", "developer", 409),
    Case("GET", "/executions?org_id={org}", "viewer", 200),
    Case("GET", "/executions/{execution}", "viewer", 200),
    Case("POST", "/executions/{fresh}/cancel", "developer", 200, setup=_fresh_execution),
    Case("GET", "/executions/{ended}/events", "viewer", 200, setup=_ended_execution),
    Case("GET", "/organizations/{org}/events?max_seconds=0", "viewer", 200),
    Case(
        "POST",
        "/executions/{waiting}/resume",
        "developer",
        202,
        body=lambda w, e: {"answer": {"approved": True}},
        setup=_waiting_execution,
    ),
    Case("GET", "/executions/{execution}/logs", "viewer", 200),
    Case("GET", "/executions/{ended}/notebook", "viewer", 200, setup=_ended_execution),
    Case("GET", "/workflows/{workflow}/schedules", "viewer", 200),
    Case("POST", "/workflows/{workflow}/schedules", "developer", 201, body=lambda w, e: {"cron": "0 9 * * *"}),
    Case("GET", "/schedules/{schedule}", "viewer", 200, setup=_fresh_schedule),
    Case(
        "PATCH", "/schedules/{schedule}", "developer", 200, body=lambda w, e: {"enabled": False}, setup=_fresh_schedule
    ),
    Case("DELETE", "/schedules/{schedule}", "developer", 204, setup=_fresh_schedule),
    Case("GET", "/integrations?org_id={org}", "viewer", 200),
    Case(
        "POST",
        "/integrations",
        "admin",
        201,
        body=lambda w, e: {"org_id": w["org"], "kind": "tool", "name": uuid.uuid4().hex, "config": {}},
    ),
    Case("GET", "/integrations/{integration}", "viewer", 200),
    Case("DELETE", "/integrations/{integration}", "admin", 204, setup=_fresh_integration),
    Case("GET", "/schemas/workflow-spec.json", None, 200),
    Case("GET", "/runtimes", None, 200),
    Case("GET", "/models", None, 200),
    Case("GET", "/", None, 200),
    Case("POST", "/workflows/validate", None, 200, body=lambda w, e: {"framework": "langgraph", "spec": GRAPH_SPEC}),
    # platform admins only (tests/api/test_admin.py): every organization role and outsiders get 403
    Case("GET", "/admin/organizations", PLATFORM, 200),
    Case("PATCH", "/admin/organizations/{org}", PLATFORM, 200, body=lambda w, e: {"name": "Acme"}),
    Case(
        "POST",
        "/admin/organizations/{org}/members",
        PLATFORM,
        200,
        body=lambda w, e: {"username": MEMBERS["viewer"], "role": "viewer"},
    ),
]

_WORLDS: dict[str, World] = {}


@pytest.fixture
def world(api: Api, database: Any) -> Callable[[], Awaitable[World]]:
    """One organization with a member of each role, an agent, a workflow, an execution, an integration.

    Built through the API once per module database (on first await) and reused by every case.
    """
    return lambda: _build_world(api, database.name, database.admin_url)


async def _build_world(api: Api, database: str, admin_url: str) -> World:
    if database in _WORLDS:
        return _WORLDS[database]
    boss = MEMBERS["owner"]
    org = await api("POST", "organizations", user=boss, body={"name": "Acme"})
    assert org.status == 201, org.text
    org_id = org.json["id"]
    for role, user in MEMBERS.items():
        if role != "owner":
            assert (await api("GET", "users", "me", user=user)).status == 200
            added = await api(
                "POST", "organizations", org_id, "members", user=boss, body={"username": user, "role": role}
            )
            assert added.status == 201, added.text
    assert (await api("GET", "users", "me", user=OUTSIDER)).status == 200
    agent = (await _fresh_agent(api, {"org": org_id}))["agent"]
    wf = await api("POST", "agents", agent, "workflows", user=boss, body={"name": "wf", "spec": GRAPH_SPEC})
    assert wf.status == 201, wf.text
    run = await api("POST", "workflows", wf.json["id"], "execute", user=boss, body={"inputs": {}})
    assert run.status == 202, run.text
    integration = (await _fresh_integration(api, {"org": org_id}))["integration"]
    _WORLDS[database] = {
        "org": org_id,
        "agent": agent,
        "workflow": wf.json["id"],
        "execution": run.json["id"],
        "integration": integration,
        "admin_url": admin_url,
    }
    return _WORLDS[database]


def _expected(case: Case, who: str) -> int:
    if case.least == PLATFORM:
        return 403  # no organization role reaches /admin
    if who == "outsider":
        return case.ok if case.least is None else 404
    if case.least is None or RANK[who] >= RANK[case.least]:
        return case.ok
    return 403


async def _call(api: Api, world: World, case: Case, user: str | None) -> tuple[int, str]:
    extra = await case.setup(api, world) if case.setup else {}
    path = case.route.format(**{**world, **extra})
    route, _, query = path.partition("?")
    params = dict(part.split("=", 1) for part in query.split("&")) if query else None
    body = case.body(world, extra) if case.body else None
    reply = await api(case.method, *route.strip("/").split("/"), user=user, body=body, params=params)
    return reply.status, reply.text


@pytest.mark.parametrize("who", [*MEMBERS, "outsider"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.route}")
async def test_role_matrix(api: Api, world: Callable[[], Awaitable[World]], case: Case, who: str) -> None:
    user = OUTSIDER if who == "outsider" else MEMBERS[who]
    status, text = await _call(api, await world(), case, user)
    assert status == _expected(case, who), f"{who}: {case.method} {case.route} -> {status} {text}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.route}")
async def test_anonymous_is_refused(api: Api, world: Callable[[], Awaitable[World]], case: Case) -> None:
    status, _ = await _call(api, await world(), case, None)
    assert status == 403


def _template(route: str) -> str:
    """``/agents/{agent_id}`` and ``/agents/{agent}?org_id=...`` compare as ``/agents/{}``."""
    path = route.split("?")[0]
    return "/".join("{}" if part.startswith("{") or part == "1" else part for part in path.split("/"))


def test_matrix_covers_every_authenticated_operation() -> None:
    served: set[tuple[str, str]] = set()
    for _pattern, handler in all_handlers():
        route = getattr(handler, "route", "")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            func = getattr(handler, method.lower(), None)
            described = getattr(func, "__openapi__", None)
            if described is not None and described.authenticated:
                served.add((method, _template(route)))
    covered = {(case.method, _template(case.route)) for case in CASES}
    assert served - covered == set(), "routes without permission-matrix cases"
