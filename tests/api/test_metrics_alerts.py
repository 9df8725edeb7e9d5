"""The gauges the alerts of the chart watch: database up, queue age, stuck runs, live workers.

The figures come from the database at scrape time, as the workers leave it:
rows written straight to PostgreSQL, and a worker's queue connection
(a LISTEN connection whose ``application_name`` names the worker).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from orchestrator_ext.observability.metrics import WORKER_APPLICATION_NAME
from tests.api.test_metrics import AdminSql, add_executions, sample, scrape
from tests.conftest import TestDatabase
from tests.engine.conftest import WorkerProcess


async def test_queue_age_stuck_runs_and_workers(
    jp_fetch: Any, create_agent: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    text = (await scrape(jp_fetch)).body.decode()
    assert sample(text, "orchestrator_database_up") == 1
    assert sample(text, "orchestrator_queue_oldest_seconds") == 0
    assert sample(text, "orchestrator_executions_stuck") == 0
    assert sample(text, "orchestrator_workers_connected") == 0

    agent = await create_agent(user="alice")
    add_executions(admin_sql, agent, ["queued", "queued", "running", "running", "running", "running"])
    ids = [row[0] for row in admin_sql("SELECT id FROM workflow_executions ORDER BY id")]
    queued = admin_sql("SELECT id FROM workflow_executions WHERE status = 'queued' ORDER BY id")
    running = [i for i in ids if (i,) not in queued]
    admin_sql("UPDATE workflow_executions SET run_after = now() - interval '10 minutes' WHERE id = %s", (queued[0][0],))
    # a retry waiting for its backoff is not late
    admin_sql("UPDATE workflow_executions SET run_after = now() + interval '1 hour' WHERE id = %s", (queued[1][0],))
    admin_sql(  # healthy, lease held
        "UPDATE workflow_executions SET started_at = now(), lease_expires_at = now() + interval '30 seconds', "
        "timeout_seconds = 600 WHERE id = %s",
        (running[0],),
    )
    admin_sql(  # its worker stopped renewing the lease
        "UPDATE workflow_executions SET started_at = now(), lease_expires_at = now() - interval '5 minutes' "
        "WHERE id = %s",
        (running[1],),
    )
    admin_sql(  # past its timeout (plus the minute's grace) and still running
        "UPDATE workflow_executions SET started_at = now() - interval '3 minutes', "
        "lease_expires_at = now() + interval '30 seconds', timeout_seconds = 60 WHERE id = %s",
        (running[2],),
    )
    admin_sql(  # within its timeout's grace
        "UPDATE workflow_executions SET started_at = now() - interval '90 seconds', "
        "lease_expires_at = now() + interval '30 seconds', timeout_seconds = 60 WHERE id = %s",
        (running[3],),
    )
    name = f"{WORKER_APPLICATION_NAME}:host-1:42"
    # a worker may connect as another role than the server's: its application_name is still seen
    with psycopg.connect(database.admin_url, application_name=name), psycopg.connect(database.app_url):
        text = (await scrape(jp_fetch)).body.decode()
    assert 600 <= sample(text, "orchestrator_queue_oldest_seconds") < 3600
    assert sample(text, "orchestrator_executions_stuck") == 2
    assert sample(text, "orchestrator_workers_connected") == 1
    assert sample(text, "orchestrator_database_up") == 1


async def test_database_down_is_a_zero(jp_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unavailable(*_: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    assert sample((await scrape(jp_fetch)).body.decode(), "orchestrator_database_up") == 1
    monkeypatch.setattr("orchestrator_ext.services.metrics.queue_health", unavailable)
    reply = await scrape(jp_fetch)
    assert reply.code == 200
    assert sample(reply.body.decode(), "orchestrator_database_up") == 0


async def workers_connected(jp_fetch: Any) -> float:
    return sample((await scrape(jp_fetch)).body.decode(), "orchestrator_workers_connected")


async def test_a_stopped_worker_leaves_no_worker_connected(
    jp_fetch: Any, database: TestDatabase, tmp_path: Path
) -> None:
    """OrchestratorNoWorker (``orchestrator_workers_connected < 1``) fires when the only worker dies."""
    worker = WorkerProcess(database, tmp_path, kernel_pool_size=0, runner_pool_size=0)
    try:
        worker.wait_started()
        assert await eventually(jp_fetch, 1), worker.output()[-2000:]
        worker.kill()  # as a crash would: no goodbye to the database
        assert await eventually(jp_fetch, 0)
    finally:
        worker.stop()


async def eventually(jp_fetch: Any, wanted: float, within: float = 15.0) -> bool:
    """Whether the live workers' count reaches ``wanted`` within ``within`` seconds."""
    deadline = time.monotonic() + within
    while await workers_connected(jp_fetch) != wanted:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True
