"""The PostgreSQL rate limiter (GCRA): bursts, refusals with a wait, and limits shared by processes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator_ext.db.engine import sqlalchemy_url
from orchestrator_ext.services.ratelimit import Bucket, Rate, RateLimited, RateLimiter
from tests.conftest import TestDatabase


def bucket(count: int, period: float = 60.0) -> Bucket:
    return Bucket(f"test:{uuid.uuid4()}", Rate(count, period), "the test's requests")


async def test_a_burst_passes_then_the_next_request_waits(database: TestDatabase) -> None:
    engine = create_async_engine(sqlalchemy_url(database.app_url))
    limiter = RateLimiter(engine)
    five = bucket(5)
    try:
        for _ in range(5):
            await limiter.take(five)
        with pytest.raises(RateLimited) as refused:
            await limiter.take(five)
        # one request every 12 s refills: the sixth may come back in about 12 s, never 0
        assert 1 <= refused.value.retry_after <= 12
        assert refused.value.status == 429
        assert "5 per 60 s" in refused.value.detail
    finally:
        await engine.dispose()


async def test_a_refused_request_is_not_charged_and_the_rate_refills(database: TestDatabase) -> None:
    engine = create_async_engine(sqlalchemy_url(database.app_url))
    limiter = RateLimiter(engine)
    fast = bucket(2, period=0.4)  # one request every 0.2 s
    try:
        await limiter.take(fast)
        await limiter.take(fast)
        for _ in range(3):  # refusals do not push the next allowed time further out
            with pytest.raises(RateLimited):
                await limiter.take(fast)
        await asyncio.sleep(0.45)
        await limiter.take(fast)
        await limiter.take(fast)
    finally:
        await engine.dispose()


async def test_the_limit_holds_across_engines_taking_at_once(database: TestDatabase) -> None:
    """Two servers (two pools) against one bucket: exactly ``count`` requests pass, whoever sends them."""
    engines = [create_async_engine(sqlalchemy_url(database.app_url)) for _ in range(2)]
    limiters = [RateLimiter(engine) for engine in engines]
    ten = bucket(10)
    try:
        results = await asyncio.gather(*(limiters[i % 2].take(ten) for i in range(30)), return_exceptions=True)
        assert sum(r is None for r in results) == 10
        assert all(isinstance(r, RateLimited) for r in results if r is not None)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_the_first_full_bucket_refuses_and_names_itself(database: TestDatabase) -> None:
    engine = create_async_engine(sqlalchemy_url(database.app_url))
    limiter = RateLimiter(engine)
    roomy, tight = bucket(100), Bucket(f"test:{uuid.uuid4()}", Rate(1), "this organization's runs")
    try:
        await limiter.take(roomy, tight)
        with pytest.raises(RateLimited, match="this organization's runs"):
            await limiter.take(roomy, tight)
    finally:
        await engine.dispose()


async def test_disabled_limiter_never_refuses_and_sweep_forgets_idle_buckets(database: TestDatabase) -> None:
    engine = create_async_engine(sqlalchemy_url(database.app_url))
    try:
        one = bucket(1, period=0.05)
        await RateLimiter(engine).take(one)
        off = RateLimiter(engine, enabled=False)
        for _ in range(3):
            await off.take(one)
        idle = f"test:{uuid.uuid4()}"
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO rate_limits (key, tat) VALUES (:k, clock_timestamp() - interval '2 minutes')"),
                {"k": idle},
            )
        assert await RateLimiter(engine).sweep() >= 1
        async with engine.connect() as conn:
            left = (
                await conn.execute(text("SELECT key FROM rate_limits WHERE key IN (:a, :b)"), {"a": idle, "b": one.key})
            ).all()
        assert [row.key for row in left] == [one.key]  # the recently used bucket stays
    finally:
        await engine.dispose()


async def test_the_buckets_live_in_an_unlogged_table(database: TestDatabase) -> None:
    """No WAL for the buckets: a write's charge waits for no disk flush (a crash only empties them)."""
    engine = create_async_engine(sqlalchemy_url(database.app_url))
    try:
        async with engine.connect() as conn:
            persistence = (
                await conn.execute(text("SELECT relpersistence FROM pg_class WHERE relname = 'rate_limits'"))
            ).scalar()
        assert persistence == "u"
    finally:
        await engine.dispose()
