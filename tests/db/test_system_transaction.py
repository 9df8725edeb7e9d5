"""The row-level-security bypass has one door, ``db/system.py``: it opens to every tenant and nowhere else.

A grep audits the code (as JupyterHub's one helper would be audited): the
setting that lifts the policies is named only in that module and in the
migration that defines the policies. The behaviour is tried with the
application's own role: the system transaction sees both tenants, ends with
its transaction, and a read-only one refuses writes.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from orchestrator_ext.db.engine import Database, PoolSettings, sqlalchemy_url
from orchestrator_ext.db.system import configure_system_connection, system_transaction, system_transaction_sync
from tests.conftest import TestDatabase

ROOT = Path(__file__).resolve().parents[2]
SETTING = re.compile(r"orchestrator\.system\b")
ALLOWED = {
    "orchestrator_ext/db/system.py",
    "orchestrator_ext/db/migrations/versions/0002_row_level_security.py",
}


def test_only_the_helper_and_the_migration_name_the_bypass() -> None:
    packages = ("orchestrator_ext", "runtimes", "kernels/orchestrator_kernels", "widgets/orchestrator_widgets")
    sources = [path for package in packages for path in ROOT.glob(f"{package}/**/*.py")]
    sources += [*ROOT.glob("hub_config/*.py"), *ROOT.glob("bench/*.py")]
    assert len(sources) > 50  # the walk sees the code
    naming = {str(path.relative_to(ROOT)) for path in sources if SETTING.search(path.read_text(encoding="utf-8"))}
    assert naming == ALLOWED, "lift the policies with orchestrator_ext.db.system, nowhere else"


@pytest.fixture(scope="module")
def two_tenants(database: TestDatabase) -> list[uuid.UUID]:
    orgs = [uuid.uuid4(), uuid.uuid4()]
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        for org in orgs:
            conn.execute("INSERT INTO organizations (id, name) VALUES (%s, %s)", (org, f"sys-{org.hex[:6]}"))
    return orgs


async def test_a_system_transaction_sees_every_tenant_and_ends_with_its_transaction(
    database: TestDatabase, two_tenants: list[uuid.UUID]
) -> None:
    db = Database(database.app_url, PoolSettings(size=1, max_overflow=0))
    count = text("SELECT count(*) FROM organizations WHERE id = ANY(:ids)")
    try:
        async with db.transaction() as session:  # the app role, no scope: nothing
            assert (await session.execute(count, {"ids": two_tenants})).scalar_one() == 0
        async with system_transaction(db) as session:
            assert (await session.execute(count, {"ids": two_tenants})).scalar_one() == 2
        async with db.transaction() as session:  # the same pooled connection: the bypass is gone
            assert (await session.execute(count, {"ids": two_tenants})).scalar_one() == 0
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with system_transaction(db, read_only=True) as session:
                await session.execute(text("UPDATE organizations SET name = 'x' WHERE id = :o"), {"o": two_tenants[0]})
    finally:
        await db.dispose()


def test_the_synchronous_form_for_operator_commands(database: TestDatabase, two_tenants: list[uuid.UUID]) -> None:
    engine = create_engine(sqlalchemy_url(database.app_url))
    try:
        with system_transaction_sync(engine) as conn:
            found = conn.execute(text("SELECT count(*) FROM organizations WHERE id = ANY(:ids)"), {"ids": two_tenants})
            assert found.scalar_one() == 2
        with engine.connect() as conn:
            assert conn.execute(text("SELECT orchestrator_is_system()")).scalar_one() is False
    finally:
        engine.dispose()


async def test_a_workers_connection_serves_every_tenant_in_utc(
    database: TestDatabase, two_tenants: list[uuid.UUID]
) -> None:
    conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(database.app_url, autocommit=True)
    try:
        await configure_system_connection(conn)
        cur = await conn.execute(
            "SELECT count(*), current_setting('timezone') FROM organizations WHERE id = ANY(%s)", (two_tenants,)
        )
        assert await cur.fetchone() == (2, "UTC")
    finally:
        await conn.close()
