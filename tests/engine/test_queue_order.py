"""The queue's order: a run that goes back to the queue (its worker was lost, or handed it back while
stopping) is taken up in its place, by the time it was enqueued, not behind the runs enqueued since."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from orchestrator_ext.engine.queue import Queue
from tests.conftest import Api, TestDatabase
from tests.engine.conftest import notebook, who


@contextlib.asynccontextmanager
async def opened_queue(database: TestDatabase) -> AsyncIterator[Queue]:
    opened = Queue(database.app_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def enqueue(api: Api, user: str, workflow_id: str, count: int) -> list[str]:
    """``count`` runs, one after another: each enqueued after the one before."""
    ids = []
    for _ in range(count):
        reply = await api("POST", "workflows", workflow_id, "execute", user=user, body={})
        assert reply.status == 202, reply.text
        ids.append(reply.json["id"])
    return ids


async def claim_id(queue: Queue, worker: str) -> tuple[str, int]:
    run = await queue.claim(worker, 30)
    assert run is not None
    return str(run.id), run.attempt


async def test_a_lost_run_is_claimed_before_the_runs_enqueued_after_it(
    api: Api, database: TestDatabase, notebook_workflow: Any, admin_sql: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("1"))
    first, second, third = await enqueue(api, user, workflow["id"], 3)
    async with opened_queue(database) as queue:
        await lost_first(queue, admin_sql, first, second, third)


async def lost_first(queue: Queue, admin_sql: Any, first: str, second: str, third: str) -> None:
    admin_sql(
        "UPDATE organizations SET max_concurrent_executions = 5"
        " WHERE id = (SELECT org_id FROM workflow_executions WHERE id = %s)",
        (first,),
    )
    assert await claim_id(queue, "dies") == (first, 1)
    admin_sql("UPDATE workflow_executions SET lease_expires_at = now() - interval '1 s' WHERE id = %s", (first,))
    assert await queue.requeue_lost(2) == [{"id": uuid.UUID(first), "status": "queued"}]
    # the lost run first, though two runs were enqueued while it was held
    assert [await claim_id(queue, "alive") for _ in range(3)] == [(first, 2), (second, 1), (third, 1)]
    assert await queue.claim("alive", 30) is None


async def test_a_run_handed_back_by_a_stopping_worker_keeps_its_place(
    api: Api, database: TestDatabase, notebook_workflow: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("1"))
    first, second = await enqueue(api, user, workflow["id"], 2)
    async with opened_queue(database) as queue:
        run = await queue.claim("stopping", 30)
        assert run is not None
        assert str(run.id) == first
        assert await queue.release(run, "stopping")
        assert [await claim_id(queue, "next") for _ in range(2)] == [(first, 2), (second, 1)]


async def test_claiming_several_in_one_round_trip_keeps_the_order_and_the_concurrency_limit(
    api: Api, database: TestDatabase, notebook_workflow: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("1"))
    ids = await enqueue(api, user, workflow["id"], 3)
    async with opened_queue(database) as queue:
        # the free tier runs 2 at once: the third claim in the same transaction sees the first two
        claimed = await queue.claim_many("several", 30, None, 3)
        assert [(str(run.id), run.attempt) for run in claimed] == [(ids[0], 1), (ids[1], 1)]
        assert await queue.claim_many("several", 30, None, 3) == []
        assert await queue.finish(claimed[0], "several", "succeeded", {}, None, None)
        (third,) = await queue.claim_many("several", 30, None, 3)
        assert str(third.id) == ids[2]
