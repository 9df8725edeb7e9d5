"""When the database goes away: health says 503, every endpoint answers 503 problem+json, never 500."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.conftest import Api, PgCluster, TestDatabase


async def test_everything_answers_503_without_a_database(
    api: Api, jp_fetch: Any, database: TestDatabase, pg_cluster: PgCluster
) -> None:
    assert (await api("GET", "health", user=None)).status == 200
    assert (await api("GET", "agents")).status == 200  # opens the pooled connections
    with psycopg.connect(pg_cluster.admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database.name}" WITH (FORCE)')
    health = await api("GET", "health", user=None)
    assert (health.status, health.json["database"]) == (503, "unavailable")
    for method, path, body in (
        ("GET", ("agents",), None),
        ("GET", ("executions",), None),
        ("POST", ("agents",), {"name": "x", "framework": "agno"}),
        ("GET", ("users", "me"), None),
    ):
        reply = await api(method, *path, body=body)
        assert reply.status == 503, (path, reply.text)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
