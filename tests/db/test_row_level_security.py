"""Row-level security: the second wall between tenants, tried with the application's own role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text, update

from orchestrator_ext.db.engine import Database, PoolSettings
from orchestrator_ext.db.models import TENANT_TABLES, Agent
from orchestrator_ext.security.crypto import KeyRing
from orchestrator_ext.services.scope import Identity, ScopeFactory
from tests.conftest import TEST_KEYS, TestDatabase


@pytest.fixture(scope="module")
def tenants(database: TestDatabase) -> dict[str, Any]:
    """Two tenants seeded by the owner: a user, an organization, a member row and an agent each."""
    ids: dict[str, Any] = {}
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for name in ("red", "blue"):
            user, org, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            conn.execute("INSERT INTO users (id, subject) VALUES (%s, %s)", (user, name))
            conn.execute(
                "INSERT INTO organizations (id, name, personal_for_user_id) VALUES (%s, %s, %s)", (org, name, user)
            )
            conn.execute(
                "INSERT INTO organization_members (org_id, user_id, role) VALUES (%s, %s, 'owner')", (org, user)
            )
            conn.execute(
                "INSERT INTO agents (id, org_id, name, framework) VALUES (%s, %s, %s, 'agno')",
                (agent, org, f"{name}-a"),
            )
            conn.execute(
                "INSERT INTO audit_events (org_id, actor_user_id, action, resource_type) VALUES (%s, %s, 'x', 'agent')",
                (org, user),
            )
            ids[name] = {"user": user, "org": org, "agent": agent}
    return ids


@pytest.fixture
def app_conn(database: TestDatabase) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database.app_url) as conn:
        yield conn


def test_app_role_is_plain(app_conn: psycopg.Connection[Any]) -> None:
    row = app_conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False)


def test_no_scope_sees_nothing(app_conn: psycopg.Connection[Any], tenants: dict[str, Any]) -> None:
    for table in TENANT_TABLES:
        count = app_conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert count == (0,), table


def test_query_without_org_filter_sees_only_own_tenant(
    app_conn: psycopg.Connection[Any], tenants: dict[str, Any]
) -> None:
    memberships = app_conn.execute(
        "SELECT org_id, role FROM orchestrator_enter(%s)", (tenants["red"]["user"],)
    ).fetchall()
    assert memberships == [(tenants["red"]["org"], "owner")]
    assert app_conn.execute("SELECT name FROM agents").fetchall() == [("red-a",)]
    assert app_conn.execute("SELECT name FROM organizations").fetchall() == [("red",)]
    for table in ("organizations", "organization_members", "agents", "audit_events"):
        rows = app_conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert rows == (1,), table


def test_cannot_write_into_or_change_another_tenant(app_conn: psycopg.Connection[Any], tenants: dict[str, Any]) -> None:
    app_conn.execute("SELECT * FROM orchestrator_enter(%s)", (tenants["red"]["user"],))
    changed = app_conn.execute("UPDATE agents SET name = 'pwned' WHERE id = %s", (tenants["blue"]["agent"],))
    assert changed.rowcount == 0
    deleted = app_conn.execute("DELETE FROM agents WHERE org_id = %s", (tenants["blue"]["org"],))
    assert deleted.rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute(
            "INSERT INTO agents (org_id, name, framework, id) VALUES (%s, 'planted', 'agno', %s)",
            (tenants["blue"]["org"], uuid.uuid4()),
        )


def test_scope_ends_with_the_transaction(app_conn: psycopg.Connection[Any], tenants: dict[str, Any]) -> None:
    app_conn.execute("SELECT * FROM orchestrator_enter(%s)", (tenants["red"]["user"],))
    assert app_conn.execute("SELECT count(*) FROM agents").fetchone() == (1,)
    app_conn.commit()
    assert app_conn.execute("SELECT count(*) FROM agents").fetchone() == (0,)


def test_app_role_cannot_lift_the_policies(app_conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("ALTER TABLE agents DISABLE ROW LEVEL SECURITY")
    app_conn.rollback()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("DROP POLICY tenant_isolation ON agents")


async def test_service_scope_forgetting_the_filter(database: TestDatabase, tenants: dict[str, Any]) -> None:
    """Through the server's own engine and scope: a select with no where clause."""
    db = Database(database.app_url, PoolSettings(size=1, max_overflow=0))
    scopes = ScopeFactory(db, KeyRing.parse(TEST_KEYS))
    try:
        async with scopes.enter(Identity("blue")) as scope:
            names = (await scope.session.execute(select(Agent.name))).scalars().all()
            assert names == ["blue-a"]
            result = await scope.session.execute(
                update(Agent).where(Agent.id == tenants["red"]["agent"]).values(name="pwned")
            )
            assert result.rowcount == 0  # type: ignore[attr-defined]
            assert (await scope.session.execute(text("SELECT orchestrator_user_id()"))).scalar_one() == (
                tenants["blue"]["user"]
            )
    finally:
        await db.dispose()


def test_workflow_versions_are_immutable(database: TestDatabase, tenants: dict[str, Any]) -> None:
    red = tenants["red"]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        wf, ver = uuid.uuid4(), uuid.uuid4()
        conn.execute(
            "INSERT INTO workflows (id, org_id, agent_id, name) VALUES (%s, %s, %s, 'w')",
            (wf, red["org"], red["agent"]),
        )
        conn.execute(
            "INSERT INTO workflow_versions (id, org_id, workflow_id, version, spec) VALUES (%s, %s, %s, 1, '{}')",
            (ver, red["org"], wf),
        )
        with pytest.raises(psycopg.errors.RestrictViolation):
            conn.execute("UPDATE workflow_versions SET spec = '{\"x\": 1}' WHERE id = %s", (ver,))
        with pytest.raises(psycopg.errors.RestrictViolation):
            conn.execute("DELETE FROM workflow_versions WHERE id = %s", (ver,))
