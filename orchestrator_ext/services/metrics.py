"""Figures the metrics endpoint reads at scrape time, across every organization.

The only cross-tenant read of the server: one read-only transaction that turns
on ``orchestrator.system`` (the row-level-security bypass) for a count by status.
"""

from __future__ import annotations

from sqlalchemy import func, select, text

from ..db.engine import Database
from ..db.models import ExecutionStatus, WorkflowExecution
from ..observability.metrics import Metrics


async def executions_by_status(db: Database) -> dict[str, int]:
    """The number of executions in each known status (zero when none), all organizations."""
    async with db.transaction() as session:
        await session.execute(text("SET TRANSACTION READ ONLY"))
        await session.execute(text("SELECT set_config('orchestrator.system', 'on', true)"))
        rows = (
            await session.execute(select(WorkflowExecution.status, func.count()).group_by(WorkflowExecution.status))
        ).all()
    counts = {status.value: 0 for status in ExecutionStatus}
    counts.update({str(status): int(count) for status, count in rows})
    return counts


async def refresh_executions(db: Database, metrics: Metrics) -> None:
    """Set the ``orchestrator_executions`` gauge from the database."""
    for status, count in (await executions_by_status(db)).items():
        metrics.executions.labels(status).set(count)
