"""The fast path's read pool: bounded, never stuck after failures, times out instead of hanging."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from orchestrator_ext.db.reads import Prepared, ReadPool, ReadPoolTimeout
from tests.conftest import TestDatabase

ENTER = Prepared.of("SELECT org_id, role, personal FROM orchestrator_enter(%(u)s::uuid)")
PAGE = Prepared.of("SELECT g FROM generate_series(1, 3) g LIMIT %(limit)s::int")


async def test_failures_free_their_slot(database: TestDatabase) -> None:
    pool = ReadPool(database.app_url, size=1, statement_timeout_ms=5000, timeout=2.0)
    params = {"u": uuid.uuid4()}
    try:
        # LIMIT -1 fails inside the batch, after BEGIN: the connection is rolled back and reused
        failures = await asyncio.gather(
            *(pool.scoped(ENTER, PAGE, {**params, "limit": -1}) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(f, psycopg.errors.InvalidRowCountInLimitClause) for f in failures)
        memberships, rows = await pool.scoped(ENTER, PAGE, {**params, "limit": 2})
        assert memberships == []
        assert rows == [{"g": 1}, {"g": 2}]
        assert pool.status() == {"size": 1, "available": 1}
    finally:
        await pool.close()


async def test_waits_at_most_the_timeout(database: TestDatabase) -> None:
    pool = ReadPool(database.app_url, size=1, statement_timeout_ms=5000, timeout=0.2)
    try:
        held = await pool._take()
        with pytest.raises(ReadPoolTimeout):
            await pool.scoped(ENTER, PAGE, {"u": uuid.uuid4(), "limit": 1})
        await pool._give_back(held)
        _, rows = await pool.scoped(ENTER, PAGE, {"u": uuid.uuid4(), "limit": 1})
        assert rows == [{"g": 1}]
    finally:
        await pool.close()
