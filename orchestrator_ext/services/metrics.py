"""Figures the metrics endpoint reads at scrape time, across every organization.

The only cross-tenant read of the server: one read-only system transaction
(the row-level-security bypass, :func:`~orchestrator_ext.db.system.system_transaction`)
for a count by status.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from ..db.engine import Database
from ..db.models import ExecutionStatus, WorkflowExecution
from ..db.system import system_transaction
from ..observability.metrics import WORKER_APPLICATION_NAME, Metrics


async def executions_by_status(db: Database) -> dict[str, int]:
    """The number of executions in each known status (zero when none), all organizations."""
    async with system_transaction(db, read_only=True) as session:
        rows = (
            await session.execute(select(WorkflowExecution.status, func.count()).group_by(WorkflowExecution.status))
        ).all()
    counts = {status.value: 0 for status in ExecutionStatus}
    counts.update({str(status): int(count) for status, count in rows})
    return counts


#: per framework, what its runs recorded in ``outputs.steps`` and ``outputs.usage`` (framework runtimes)
RUNTIME_TOTALS = text("""
SELECT a.framework,
       count(*) AS runs,
       coalesce(sum(jsonb_array_length(e.outputs -> 'steps')), 0) AS steps,
       coalesce(sum((e.outputs -> 'usage' ->> 'model_calls')::bigint), 0) AS model_calls,
       coalesce(sum((e.outputs -> 'usage' ->> 'prompt_tokens')::bigint), 0) AS prompt_tokens,
       coalesce(sum((e.outputs -> 'usage' ->> 'completion_tokens')::bigint), 0) AS completion_tokens,
       coalesce(sum((SELECT sum((s ->> 'latency_ms')::float8) FROM jsonb_array_elements(e.outputs -> 'steps') s)), 0)
         / 1000.0 AS step_seconds
  FROM workflow_executions e JOIN agents a ON a.id = e.agent_id
 WHERE a.framework <> 'notebook' AND jsonb_typeof(e.outputs -> 'steps') = 'array'
   AND jsonb_typeof(e.outputs -> 'usage') = 'object'
 GROUP BY a.framework
""")


async def runtime_totals(db: Database) -> dict[str, dict[str, float]]:
    """Per framework: runs, steps, model calls, tokens and step time its runs recorded, all organizations."""
    async with system_transaction(db, read_only=True) as session:
        rows = (await session.execute(RUNTIME_TOTALS)).mappings().all()
    return {str(row["framework"]): {k: float(v) for k, v in row.items() if k != "framework"} for row in rows}


#: what the alerts watch: the oldest due queued run's wait, runs stuck past their lease or timeout,
#: and live workers (each holds a LISTEN connection named ``WORKER_APPLICATION_NAME``:<its name>)
QUEUE_HEALTH = text("""
SELECT coalesce(extract(epoch FROM clock_timestamp() - min(run_after) FILTER (
         WHERE status = 'queued' AND run_after <= clock_timestamp())), 0) AS oldest_seconds,
       count(*) FILTER (WHERE status = 'running' AND (lease_expires_at < clock_timestamp()
         OR started_at + make_interval(secs => timeout_seconds + 60) < clock_timestamp())) AS stuck,
       (SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE :workers) AS workers
  FROM workflow_executions WHERE status IN ('queued', 'running')
""")


async def queue_health(db: Database) -> dict[str, float]:
    """The oldest due queued run's wait (s), the runs stuck past lease or timeout, the live workers."""
    async with system_transaction(db, read_only=True) as session:
        row = (await session.execute(QUEUE_HEALTH, {"workers": WORKER_APPLICATION_NAME + ":%"})).mappings().one()
    return {key: float(value) for key, value in row.items()}


async def refresh_executions(db: Database, metrics: Metrics) -> None:
    """Set the gauges read from the database (executions by status, queue health, runtime totals);
    ``orchestrator_database_up`` says whether that worked."""
    try:
        for status, count in (await executions_by_status(db)).items():
            metrics.executions.labels(status).set(count)
        health = await queue_health(db)
        metrics.runtime_totals = await runtime_totals(db)
    except BaseException:
        metrics.database_up.set(0)
        raise
    metrics.queue_oldest.set(health["oldest_seconds"])
    metrics.stuck.set(health["stuck"])
    metrics.workers.set(health["workers"])
    metrics.database_up.set(1)
