"""The scheduler: fires due schedules, each due time exactly once, however many schedulers run.

Each tick takes the due schedules in batches, one transaction per batch:
``FOR UPDATE OF s SKIP LOCKED`` hands each schedule to one scheduler at a time,
and a scheduler killed mid-batch (even ``kill -9``) rolls its whole batch back,
so another one fires it. The execution of a due time is inserted with
``ON CONFLICT (schedule_id, scheduled_for) DO NOTHING`` on the unique index
``uq_executions_schedule_firing``: a firing can never start two runs.

Schedulers reach PostgreSQL as the application role with the row-level-security
bypass on (they serve every tenant; ``db/system.py``), like the workers, through
a small pool of autocommit connections that are checked before use: a database
restart costs a few failed ticks, not the scheduler. This module knows nothing of tornado or
the services layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from ..db.system import configure_system_connection
from .cron import CronError, Firing, OverlapPolicy, due_firings

log = logging.getLogger("orchestrator.scheduler")

#: schedules locked and fired per transaction
BATCH = 50
#: batches per tick at most (a tick always ends, whatever is due)
MAX_BATCHES = 100
#: the pause after a failed tick (the database may be restarting)
ERROR_PAUSE = 5.0
CANCEL_REASON = "cancelled by the next run of its schedule"

DUE = """
SELECT s.id, s.cron, s.timezone, s.inputs, s.version AS pinned, s.overlap_policy, s.misfire_policy,
       s.next_run_at, s.created_by, w.id AS workflow_id, w.org_id, w.agent_id, w.current_version,
       (w.deleted_at IS NOT NULL OR a.deleted_at IS NOT NULL) AS gone, clock_timestamp() AS now
  FROM schedules s
  JOIN workflows w ON w.id = s.workflow_id
  JOIN agents a ON a.id = w.agent_id
 WHERE s.enabled AND s.next_run_at <= (SELECT clock_timestamp())
 ORDER BY s.next_run_at
   FOR UPDATE OF s SKIP LOCKED
 LIMIT %(batch)s
"""

VERSION = """
SELECT id, version, spec -> 'max_attempts' AS max_attempts, spec -> 'timeout_seconds' AS timeout_seconds
  FROM workflow_versions WHERE workflow_id = %(workflow_id)s AND version = %(version)s
"""

ACTIVE = """
SELECT id FROM workflow_executions
 WHERE schedule_id = %(schedule_id)s AND status IN ('queued', 'running') AND scheduled_for IS DISTINCT FROM %(at)s
 ORDER BY created_at
"""

CANCEL = "SELECT orchestrator_cancel_execution(%(id)s, %(reason)s) AS status"

INSERT = """
INSERT INTO workflow_executions
       (org_id, agent_id, workflow_id, workflow_version_id, version, status, trigger, inputs, attempt,
        max_attempts, timeout_seconds, created_by, correlation_id, schedule_id, scheduled_for)
VALUES (%(org_id)s, %(agent_id)s, %(workflow_id)s, %(version_id)s, %(version)s, 'queued', 'schedule', %(inputs)s, 0,
        %(max_attempts)s, %(timeout_seconds)s, %(created_by)s, %(correlation_id)s, %(schedule_id)s, %(at)s)
ON CONFLICT (schedule_id, scheduled_for) DO NOTHING
RETURNING id
"""

ADVANCE = """
UPDATE schedules SET next_run_at = %(next)s, last_fired_at = coalesce(%(fired)s::timestamptz, last_fired_at)
 WHERE id = %(id)s
"""

DISABLE = "UPDATE schedules SET enabled = false, next_run_at = NULL, updated_at = clock_timestamp() WHERE id = %(id)s"


def default_name() -> str:
    return f"scheduler-{socket.gethostname()}-{os.getpid()}"


class Scheduler:
    """Fires due schedules every ``interval`` seconds; any number may run against one database.

    ``grace``: how late a due time may still run on time; older ones are
    missed and follow the schedule's misfire policy. ``connect_timeout``: how
    long a tick waits for a connection (while the database is down) before it
    fails. Its connections carry ``name`` as their ``application_name``.
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float = 1.0,
        grace: timedelta = timedelta(seconds=60),
        name: str | None = None,
        statement_timeout_ms: int = 30_000,
        connect_timeout: float = 10.0,
    ) -> None:
        self.interval = interval
        self.grace = grace
        self.name = name or default_name()
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=2,
            open=False,
            timeout=connect_timeout,
            kwargs={
                "autocommit": True,
                "application_name": self.name[:63],
                "options": f"-c statement_timeout={statement_timeout_ms}",
            },
            configure=configure_system_connection,
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=3600,
        )
        self._opened = False

    async def close(self) -> None:
        await self.pool.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; a failed tick is logged and retried."""
        log.info("scheduler %s started", self.name)
        while not stop.is_set():
            pause = self.interval
            try:
                await self.tick()
            except (psycopg.Error, OSError):
                log.warning("scheduler %s: tick failed; the database may be restarting", self.name, exc_info=True)
                pause = max(pause, ERROR_PAUSE)
            except Exception:
                log.exception("scheduler %s: tick failed", self.name)
                pause = max(pause, ERROR_PAUSE)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
        log.info("scheduler %s stopped", self.name)

    async def tick(self) -> int:
        """Fire what is due now; the number of executions inserted."""
        if not self._opened:
            await self.pool.open(wait=False)
            self._opened = True
        inserted = 0
        for _ in range(MAX_BATCHES):
            count, locked = await self._batch()
            inserted += count
            if locked < BATCH:
                break
        return inserted

    async def _batch(self) -> tuple[int, int]:
        """One transaction: lock up to ``BATCH`` due schedules and fire them; (inserted, schedules locked)."""
        async with self.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(DUE, {"batch": BATCH})
            due = await cur.fetchall()
            inserted = 0
            for schedule in due:
                inserted += await self._fire(cur, schedule)
            return inserted, len(due)

    async def _fire(self, cur: psycopg.AsyncCursor[dict[str, Any]], schedule: dict[str, Any]) -> int:
        """Run one locked schedule's due times and move its ``next_run_at`` on; the runs inserted."""
        if schedule["gone"]:
            return await self._disable(cur, schedule, "its workflow or agent was deleted")
        try:
            firing = due_firings(
                schedule["cron"],
                schedule["timezone"],
                schedule["next_run_at"],
                schedule["now"],
                schedule["misfire_policy"],
                grace=self.grace,
            )
        except (CronError, ValueError) as exc:
            return await self._disable(cur, schedule, f"its timing no longer reads ({exc})")
        number = schedule["pinned"] or schedule["current_version"]
        await cur.execute(VERSION, {"workflow_id": schedule["workflow_id"], "version": number})
        version = await cur.fetchone()
        if version is None:
            return await self._disable(cur, schedule, f"its workflow has no version {number}")
        if firing.missed:
            policy = schedule["misfire_policy"]
            log.warning("schedule %s missed %d firing(s) (misfire policy %s)", schedule["id"], firing.missed, policy)
        inserted = 0
        for at in firing.fire_times:
            inserted += await self._fire_at(cur, schedule, version, at)
        await self._advance(cur, schedule, firing)
        return inserted

    async def _fire_at(
        self, cur: psycopg.AsyncCursor[dict[str, Any]], schedule: dict[str, Any], version: dict[str, Any], at: datetime
    ) -> int:
        """One due time: apply the overlap policy, then insert its run (once); 1 if inserted."""
        policy = OverlapPolicy(schedule["overlap_policy"])
        if policy is not OverlapPolicy.QUEUE:
            await cur.execute(ACTIVE, {"schedule_id": schedule["id"], "at": at})
            active = [row["id"] for row in await cur.fetchall()]
            if active and policy is OverlapPolicy.SKIP:
                log.info("schedule %s skipped its firing of %s: run %s is still going", schedule["id"], at, active[0])
                return 0
            for execution_id in active:
                await cur.execute(CANCEL, {"id": execution_id, "reason": CANCEL_REASON})
                log.info("schedule %s cancelled its previous run %s", schedule["id"], execution_id)
        await cur.execute(INSERT, _run_values(schedule, version, at))
        created = await cur.fetchone()
        if created is None:
            log.info("schedule %s already fired for %s", schedule["id"], at)
            return 0
        log.info(
            "schedule %s fired for %s: execution %s",
            schedule["id"],
            at,
            created["id"],
            extra={"correlation_id": f"schedule:{schedule['id']}"},
        )
        return 1

    async def _advance(
        self, cur: psycopg.AsyncCursor[dict[str, Any]], schedule: dict[str, Any], firing: Firing
    ) -> None:
        fired = firing.fire_times[-1] if firing.fire_times else None
        await cur.execute(ADVANCE, {"id": schedule["id"], "next": firing.next_run_at, "fired": fired})

    async def _disable(self, cur: psycopg.AsyncCursor[dict[str, Any]], schedule: dict[str, Any], why: str) -> int:
        await cur.execute(DISABLE, {"id": schedule["id"]})
        log.warning("schedule %s disabled: %s", schedule["id"], why)
        return 0


def _run_values(schedule: dict[str, Any], version: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The columns of the run a schedule starts for the due time ``at``."""
    max_attempts = version["max_attempts"]
    timeout = version["timeout_seconds"]
    return {
        "org_id": schedule["org_id"],
        "agent_id": schedule["agent_id"],
        "workflow_id": schedule["workflow_id"],
        "version_id": version["id"],
        "version": version["version"],
        "inputs": Json(schedule["inputs"]),  # json, not jsonb: the keys keep their order
        "max_attempts": max_attempts if isinstance(max_attempts, int) and max_attempts >= 1 else 1,
        "timeout_seconds": timeout if isinstance(timeout, int) else None,
        "created_by": schedule["created_by"],
        "correlation_id": f"schedule:{schedule['id']}",
        "schedule_id": schedule["id"],
        "at": at,
    }
