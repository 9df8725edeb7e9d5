"""A worker claims as many runs as it has free slots in one round trip (``Queue.claim_many``), keeping the
queue's order, the organization's concurrency limit and the kinds of run it can start now."""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator_ext.engine.queue import ClaimedRun, Queue
from orchestrator_ext.engine.settings import WorkerSettings
from orchestrator_ext.engine.worker import Worker
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api, TestDatabase
from tests.engine.conftest import notebook, wait_final, who
from tests.engine.test_queue_order import enqueue, opened_queue


class Claims:
    """Records each claim round trip of a worker: how many runs it asked for, which it got."""

    def __init__(self, queue: Queue) -> None:
        self.asked: list[int] = []
        self.got: list[list[str]] = []
        original = queue.claim_many

        async def claim_many(
            worker: str, lease: float, tiers: Any = None, limit: int = 1, kinds: Any = None
        ) -> list[ClaimedRun]:
            runs = await original(worker, lease, tiers, limit, kinds)
            self.asked.append(limit)
            self.got.append([str(run.id) for run in runs])
            return runs

        queue.claim_many = claim_many  # type: ignore[method-assign,assignment]

    def non_empty(self) -> list[list[str]]:
        return [ids for ids in self.got if ids]


def set_limit(admin_sql: Any, execution_id: str, limit: int) -> None:
    admin_sql(
        "UPDATE organizations SET max_concurrent_executions = %s"
        " WHERE id = (SELECT org_id FROM workflow_executions WHERE id = %s)",
        (limit, execution_id),
    )


async def run_worker(database: TestDatabase, settings: WorkerSettings, api: Api, user: str, ids: list[str]) -> Claims:
    """A worker started on a queue that already holds ``ids``; returns once every one has ended."""
    worker = Worker(database.app_url, settings, KeyRing.parse(TEST_KEYS))
    claims = Claims(worker.queue)
    await worker.start()
    try:
        for execution_id in ids:
            assert (await wait_final(api, user, execution_id, within=90))["status"] == "succeeded"
    finally:
        await worker.stop(grace=1.0)
    return claims


async def test_a_worker_claims_its_free_slots_in_one_round_trip_in_order(
    api: Api, database: TestDatabase, notebook_workflow: Any, admin_sql: Any, worker_settings: WorkerSettings
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("1"))
    ids = await enqueue(api, user, workflow["id"], 3)
    set_limit(admin_sql, ids[0], 5)
    settings = dataclasses.replace(worker_settings, slots=3)
    claims = await run_worker(database, settings, api, user, ids)
    # the first claim (once the zygote is ready) asked for all three slots and took the three, oldest first
    assert claims.asked[0] == 3
    assert claims.non_empty()[0] == ids


async def test_one_round_trip_never_claims_past_the_organizations_limit(
    api: Api, database: TestDatabase, notebook_workflow: Any, admin_sql: Any, worker_settings: WorkerSettings
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("import time\ntime.sleep(0.3)"))
    ids = await enqueue(api, user, workflow["id"], 3)
    set_limit(admin_sql, ids[0], 2)
    settings = dataclasses.replace(worker_settings, slots=4)
    claims = await run_worker(database, settings, api, user, ids)
    assert claims.non_empty()[0] == ids[:2]  # four slots free, two allowed: the two oldest
    assert [execution_id for got in claims.non_empty() for execution_id in got] == ids  # each claimed once


async def test_claiming_several_takes_only_the_kinds_asked_for(
    api: Api, database: TestDatabase, notebook_workflow: Any, create_agent: Any, create_workflow: Any, admin_sql: Any
) -> None:
    """A worker whose fork server is still importing asks for notebooks only: a framework run queued first
    keeps its place for a worker that can start it."""
    user = who()
    agent = await create_agent(user=user, framework="langgraph")
    graph = await create_workflow(user, agent["id"])
    (framework_run,) = await enqueue(api, user, graph["id"], 1)
    workflow = await notebook_workflow(user, notebook("1"))
    notebook_runs = await enqueue(api, user, workflow["id"], 2)
    set_limit(admin_sql, framework_run, 5)
    async with opened_queue(database) as queue:
        claimed = await queue.claim_many("starting", 30, None, 3, ["notebook"])
        assert [str(run.id) for run in claimed] == notebook_runs
        (ready,) = await queue.claim_many("ready", 30, None, 3, None)
        assert str(ready.id) == framework_run
        for run in claimed:
            assert await queue.finish(run, "starting", "succeeded", {}, None, None)
        assert await queue.finish(ready, "ready", "succeeded", {}, None, None)
