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
from ..observability.metrics import Metrics


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


async def refresh_executions(db: Database, metrics: Metrics) -> None:
    """Set the ``orchestrator_executions`` gauge and the per-framework runtime totals from the database."""
    for status, count in (await executions_by_status(db)).items():
        metrics.executions.labels(status).set(count)
    metrics.runtime_totals = await runtime_totals(db)
