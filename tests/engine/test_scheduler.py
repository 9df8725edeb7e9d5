"""The scheduler against the real database: exactly-once firings, misfires, overlaps, restarts.

Schedules are made through the REST API, then made due by moving their
``next_run_at`` into the past as the database superuser. The schedulers connect
as the application role, like the server's.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator_ext.engine.scheduler import CANCEL_REASON, Scheduler
from tests.conftest import Api, TestDatabase

AdminSql = Callable[..., list[tuple[Any, ...]]]
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def quiet_schedules(admin_sql: AdminSql) -> None:
    """Each test fires its own schedules only: the earlier tests' ones are switched off."""
    admin_sql("UPDATE schedules SET enabled = false, next_run_at = NULL")


@asynccontextmanager
async def schedulers(database: TestDatabase, count: int = 1, **options: Any) -> AsyncIterator[list[Scheduler]]:
    made = [Scheduler(database.app_url, name=f"test-scheduler-{n}", **options) for n in range(count)]
    try:
        yield made
    finally:
        for scheduler in made:
            await scheduler.close()


async def tick(database: TestDatabase, **options: Any) -> int:
    async with schedulers(database, **options) as (scheduler,):
        return await scheduler.tick()


def this_minute() -> datetime:
    """The latest firing of ``* * * * *`` (at or before now)."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def make_schedule(api: Api, create_agent: Any, create_workflow: Any, **fields: Any) -> dict[str, Any]:
    user = f"s-{uuid.uuid4().hex[:8]}"
    agent = await create_agent(user=user)
    workflow = await create_workflow(user, agent["id"])
    body = {"cron": "* * * * *", **fields}
    reply = await api("POST", "workflows", workflow["id"], "schedules", user=user, body=body)
    assert reply.status == 201, reply.text
    return {**reply.json, "user": user}


def make_due(admin_sql: AdminSql, schedule: dict[str, Any], at: datetime) -> None:
    admin_sql("UPDATE schedules SET next_run_at = %s WHERE id = %s", (at, schedule["id"]))


def runs(admin_sql: AdminSql, schedule: dict[str, Any]) -> list[tuple[datetime, str]]:
    """(scheduled_for, status) of the schedule's runs, oldest first."""
    return [
        (row[0], row[1])
        for row in admin_sql(
            "SELECT scheduled_for, status FROM workflow_executions WHERE schedule_id = %s ORDER BY scheduled_for",
            (schedule["id"],),
        )
    ]


def stored(admin_sql: AdminSql, schedule: dict[str, Any]) -> tuple[bool, datetime | None, datetime | None]:
    [row] = admin_sql("SELECT enabled, next_run_at, last_fired_at FROM schedules WHERE id = %s", (schedule["id"],))
    return row[0], row[1], row[2]


async def test_each_due_time_fires_once_with_concurrent_schedulers(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    made = [
        await make_schedule(api, create_agent, create_workflow, overlap_policy="queue", inputs={"n": n})
        for n in range(4)
    ]
    start = this_minute() - 4 * MINUTE
    for schedule in made:
        make_due(admin_sql, schedule, start)
    async with schedulers(database, 3, grace=HOUR) as running:
        counts = await asyncio.gather(*(s.tick() for s in running for _ in range(4)))
    total = 0
    for schedule in made:
        fired = runs(admin_sql, schedule)
        times = [at for at, _ in fired]
        assert times[:5] == [start + n * MINUTE for n in range(5)]
        assert times == sorted(set(times))  # once each
        assert times[-1] <= datetime.now(UTC)
        assert {status for _, status in fired} == {"queued"}
        total += len(fired)
    assert sum(counts) == total
    [(trigger, inputs, version, attempt, correlation)] = admin_sql(
        # inputs is json (it keeps the order of its keys), which has no equality operator: compare as jsonb
        "SELECT DISTINCT trigger, inputs::text::jsonb, version, attempt, correlation_id FROM workflow_executions"
        " WHERE schedule_id = %s",
        (made[2]["id"],),
    )
    assert (trigger, inputs, version, attempt, correlation) == ("schedule", {"n": 2}, 1, 0, f"schedule:{made[2]['id']}")


async def test_next_run_advances(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow)
    due = this_minute()
    make_due(admin_sql, schedule, due)
    assert await tick(database, grace=HOUR) >= 1
    enabled, next_run, last_fired = stored(admin_sql, schedule)
    now = datetime.now(UTC)
    assert enabled
    assert next_run is not None
    assert now < next_run <= now + MINUTE
    assert next_run.second == 0
    assert last_fired is not None
    assert last_fired >= due
    again = await tick(database)
    if datetime.now(UTC) < next_run:  # nothing is due until the next minute
        assert again == 0
        assert stored(admin_sql, schedule)[1] == next_run


@pytest.mark.parametrize("policy", ["run_once", "skip"])
async def test_misfires(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase, policy: str
) -> None:
    # yearly: every due time since 2020 is long past, none is on time
    schedule = await make_schedule(api, create_agent, create_workflow, cron="0 0 1 1 *", misfire_policy=policy)
    make_due(admin_sql, schedule, datetime(2020, 1, 1, tzinfo=UTC))
    inserted = await tick(database)
    now = datetime.now(UTC)
    latest = datetime(now.year, 1, 1, tzinfo=UTC)
    if policy == "run_once":
        assert inserted == 1
        assert runs(admin_sql, schedule) == [(latest, "queued")]
    else:
        assert inserted == 0
        assert runs(admin_sql, schedule) == []
    enabled, next_run, last_fired = stored(admin_sql, schedule)
    assert enabled
    assert next_run == datetime(now.year + 1, 1, 1, tzinfo=UTC)
    assert last_fired == (latest if policy == "run_once" else None)


async def previous_run(api: Api, admin_sql: AdminSql, schedule: dict[str, Any], status: str) -> tuple[str, datetime]:
    """A run of the schedule for yesterday's due time, still ``status``: its id and due time."""
    earlier = await api("POST", "workflows", schedule["workflow_id"], "execute", user=schedule["user"], body={})
    assert earlier.status == 202, earlier.text
    before = this_minute() - timedelta(days=1)
    admin_sql(
        "UPDATE workflow_executions SET schedule_id = %s, scheduled_for = %s, status = %s WHERE id = %s",
        (schedule["id"], before, status, earlier.json["id"]),
    )
    return earlier.json["id"], before


@pytest.mark.parametrize(
    ("policy", "previous"),
    [
        ("skip", "queued"),
        ("skip", "running"),
        ("queue", "queued"),
        ("cancel_previous", "queued"),
        ("cancel_previous", "running"),
    ],
)
async def test_overlap_policies(
    api: Api,
    create_agent: Any,
    create_workflow: Any,
    admin_sql: AdminSql,
    database: TestDatabase,
    policy: str,
    previous: str,
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow, overlap_policy=policy)
    earlier, before = await previous_run(api, admin_sql, schedule, previous)
    due = this_minute()
    make_due(admin_sql, schedule, due)
    inserted = await tick(database, grace=HOUR)
    fired = runs(admin_sql, schedule)
    [(status, cancel_requested, error)] = admin_sql(
        "SELECT status, cancel_requested_at IS NOT NULL, error FROM workflow_executions WHERE id = %s",
        (earlier,),
    )
    new = fired[1:]
    assert fired[0][0] == before
    assert len(new) == inserted
    if policy == "skip":
        assert (inserted, status, cancel_requested) == (0, previous, False)
        return
    assert new[0][0] == due
    assert new[-1][1] == "queued"
    if policy == "queue":
        assert (status, cancel_requested) == (previous, False)
        assert {s for _, s in new} == {"queued"}
    elif previous == "queued":
        assert (status, cancel_requested) == ("cancelled", True)
        assert CANCEL_REASON in error["message"]
    else:  # a running run is asked to stop; its worker ends it
        assert (status, cancel_requested) == ("running", True)


async def test_cancel_previous_within_one_tick(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow, overlap_policy="cancel_previous")
    make_due(admin_sql, schedule, this_minute() - 3 * MINUTE)
    assert await tick(database, grace=HOUR) >= 4
    statuses = [status for _, status in runs(admin_sql, schedule)]
    assert statuses == ["cancelled"] * (len(statuses) - 1) + ["queued"]


async def test_disabled_schedules_never_fire(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow, enabled=False)
    due = this_minute() - MINUTE
    make_due(admin_sql, schedule, due)  # even with a due time left behind
    assert await tick(database, grace=HOUR) == 0
    assert runs(admin_sql, schedule) == []
    assert stored(admin_sql, schedule) == (False, due, None)


async def test_schedules_of_deleted_agents_are_disabled(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow)
    make_due(admin_sql, schedule, this_minute())
    [(agent_id,)] = admin_sql("SELECT agent_id FROM workflows WHERE id = %s", (schedule["workflow_id"],))
    assert (await api("DELETE", "agents", str(agent_id), user=schedule["user"])).status == 204
    assert await tick(database, grace=HOUR) == 0
    assert runs(admin_sql, schedule) == []
    assert stored(admin_sql, schedule) == (False, None, None)


async def test_pinned_version_and_spec_limits(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow, version=1)
    [(spec,)] = admin_sql("SELECT spec FROM workflow_versions WHERE workflow_id = %s", (schedule["workflow_id"],))
    updated = await api(
        "PUT",
        "workflows",
        schedule["workflow_id"],
        user=schedule["user"],
        body={"spec": {**spec, "max_attempts": 3, "timeout_seconds": 60}},
    )
    assert updated.status == 200, updated.text
    unpinned = await api(
        "POST", "workflows", schedule["workflow_id"], "schedules", user=schedule["user"], body={"cron": "* * * * *"}
    )
    assert unpinned.status == 201, unpinned.text
    for made in (schedule, unpinned.json):
        make_due(admin_sql, made, this_minute())
    assert await tick(database, grace=HOUR) >= 2
    found = {
        row[0]: row[1:]
        for row in admin_sql(
            "SELECT schedule_id::text, version, max_attempts, timeout_seconds FROM workflow_executions"
            " WHERE schedule_id = ANY(%s::uuid[])",
            ([schedule["id"], unpinned.json["id"]],),
        )
    }
    assert found[schedule["id"]] == (1, spec.get("max_attempts", 1), spec.get("timeout_seconds"))
    assert found[unpinned.json["id"]] == (2, 3, 60)


async def test_run_fires_and_survives_lost_connections(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, database: TestDatabase
) -> None:
    schedule = await make_schedule(api, create_agent, create_workflow)
    due = this_minute()
    make_due(admin_sql, schedule, due)
    stop = asyncio.Event()
    async with schedulers(database, interval=0.05, grace=HOUR) as (scheduler,):
        task = asyncio.create_task(scheduler.run(stop))
        await wait_for(lambda: bool(runs(admin_sql, schedule)))
        # the database drops the scheduler's connections (a restart, as far as it can tell) ...
        dropped = admin_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (scheduler.name,)
        )
        assert dropped
        assert all(ok for (ok,) in dropped)
        # ... and the same due time comes round again: the running scheduler fires it
        admin_sql("DELETE FROM workflow_executions WHERE schedule_id = %s", (schedule["id"],))
        make_due(admin_sql, schedule, due)
        await wait_for(lambda: (due, "queued") in runs(admin_sql, schedule))
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 10)


class Recorder(logging.Handler):
    """Keeps the records of a logger that does not propagate (the JSON logging of the server)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_run_outlives_an_unreachable_database() -> None:
    scheduler = Scheduler("postgresql://nobody@127.0.0.1:9/none", interval=0.01, connect_timeout=0.2)
    recorder = Recorder()
    logger = logging.getLogger("orchestrator.scheduler")
    logger.addHandler(recorder)
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(scheduler.run(stop))
        await asyncio.sleep(0.6)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 5)  # the pause after a failed tick ends when asked to stop
    finally:
        logger.removeHandler(recorder)
        await scheduler.close()
    assert any("tick failed" in message for message in recorder.messages)


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_kill_9_of_a_scheduler_while_schedules_are_due_fires_each_once(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: AdminSql, processes: Any
) -> None:
    made = [await make_schedule(api, create_agent, create_workflow) for _ in range(3)]
    # many due schedules, so that the first scheduler is killed in the middle of its work
    admin_sql(
        "INSERT INTO schedules (org_id, workflow_id, cron, next_run_at, created_by) "
        "SELECT s.org_id, s.workflow_id, '* * * * *', %s, s.created_by FROM schedules s, generate_series(1, 150) "
        "WHERE s.id = ANY(%s::uuid[])",
        (this_minute(), [s["id"] for s in made]),
    )
    for schedule in made:
        make_due(admin_sql, schedule, this_minute())
    due = admin_sql("SELECT id, next_run_at FROM schedules WHERE enabled AND next_run_at IS NOT NULL")
    assert len(due) == 453
    first = processes("scheduler", scheduler_interval=0.05)
    while not admin_sql("SELECT 1 FROM workflow_executions WHERE trigger = 'schedule' LIMIT 1"):
        assert first.process.poll() is None, first.output()[-2000:]
        await asyncio.sleep(0.01)
    first.kill()
    fired_before = admin_sql("SELECT count(*) FROM workflow_executions WHERE trigger = 'schedule'")[0][0]
    assert fired_before < 453  # killed in the middle of its work
    others = [processes("scheduler", scheduler_interval=0.05) for _ in range(2)]
    deadline = asyncio.get_running_loop().time() + 60
    while admin_sql("SELECT count(*) FROM schedules WHERE enabled AND next_run_at <= now()")[0][0]:
        assert asyncio.get_running_loop().time() < deadline, others[0].output()[-2000:]
        await asyncio.sleep(0.1)
    # every firing due once: one per schedule, or (the minute turned meanwhile, on a busy machine) at most one
    # per minute that came due since, and never two for one minute (a unique index) whatever the kill did
    minutes = int((this_minute() - min(row[1] for row in due)).total_seconds() // 60) + 1
    fired = dict(
        admin_sql(
            "SELECT s.id, count(e.id) FROM schedules s LEFT JOIN workflow_executions e ON e.schedule_id = s.id "
            "WHERE s.id = ANY(%s::uuid[]) GROUP BY s.id",
            ([row[0] for row in due],),
        )
    )
    assert len(fired) == 453
    assert all(1 <= runs <= minutes for runs in fired.values()), (minutes, set(fired.values()))
    assert all(process.process.poll() is None for process in others)
