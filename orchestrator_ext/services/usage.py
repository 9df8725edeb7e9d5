"""An organization's usage against its tier: ``GET /organizations/{id}/usage``.

Who may read it: the organization's owners and admins (``usage:read``), and
platform admins for any organization (a read-only system transaction, like
``/admin``). A developer or viewer gets 403; anyone else 404 (another tenant's
organization does not exist for them).

What is counted, per calendar month (UTC), from the month's runs by when each
was created (``ix_executions_org_created`` bounds the read):

- runs, against the tier's ``monthly_runs``;
- tokens: prompt plus completion tokens the runs recorded in ``outputs.usage``
  (framework runtimes and n8n record what the model servers report; a value
  that is not a number counts as 0), against ``monthly_tokens``;
- GPU-seconds: no run records GPU time yet, so they are the runs' wall-clock
  seconds (started to finished, or to now) times the tier's GPUs per run, on a
  tier with GPUs (the tier at reading time), against ``monthly_gpu_seconds``;
- concurrency: the runs going now against the concurrent-run limit (enforced
  by the claim: runs beyond it wait in the queue).

The monthly allowances are shown, not enforced.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import Organization, ResourceTier
from ..db.system import system_transaction
from ..errors import NotFound
from ..schemas.usage import DescribeUsage, UsageFigure, UsageQuery
from ..security.permissions import Permission, role_allows
from .scope import Identity, ScopeFactory

#: the month's runs and their recorded tokens (a value that is not a number counts as 0: a notebook may
#: record anything under that name), their wall-clock seconds, and the runs going now
MONTH_USAGE = text("""
SELECT count(*) AS runs,
       coalesce(sum(CASE WHEN jsonb_typeof(outputs -> 'usage' -> 'prompt_tokens') = 'number'
                         THEN (outputs -> 'usage' ->> 'prompt_tokens')::numeric ELSE 0 END), 0) AS prompt_tokens,
       coalesce(sum(CASE WHEN jsonb_typeof(outputs -> 'usage' -> 'completion_tokens') = 'number'
                         THEN (outputs -> 'usage' ->> 'completion_tokens')::numeric ELSE 0 END), 0)
         AS completion_tokens,
       coalesce(sum(extract(epoch FROM coalesce(finished_at, clock_timestamp()) - started_at))
         FILTER (WHERE started_at IS NOT NULL), 0) AS wall_seconds,
       (SELECT count(*) FROM workflow_executions WHERE org_id = :org AND status = 'running') AS running
  FROM workflow_executions
 WHERE org_id = :org AND created_at >= :starts AND created_at < :ends
""")


def month_bounds(month: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The first instant of ``month`` (YYYY-MM, default ``now``'s) and of the next, UTC."""
    year, number = (int(part) for part in month.split("-")) if month else (now.year, now.month)
    starts = datetime(year, number, 1, tzinfo=UTC)
    ends = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return starts, ends


def describe_usage(
    org: Organization, tier: ResourceTier, counted: dict[str, Any], starts: datetime, ends: datetime
) -> DescribeUsage:
    """The figures from the month's counts and the tier (pure: tested without a database)."""
    prompt, completion = int(counted["prompt_tokens"]), int(counted["completion_tokens"])
    gpu_seconds = round(float(counted["wall_seconds"]) * tier.gpu_count) if tier.gpu_count else 0
    concurrency = (
        org.max_concurrent_executions if org.max_concurrent_executions is not None else tier.max_concurrent_executions
    )
    return DescribeUsage(
        org_id=org.id,
        tier=tier.name,
        month=f"{starts:%Y-%m}",
        starts_at=starts,
        ends_at=ends,
        runs=UsageFigure(used=int(counted["runs"]), limit=tier.monthly_runs, enforced=False),
        concurrency=UsageFigure(used=int(counted["running"]), limit=concurrency, enforced=True),
        tokens=UsageFigure(used=prompt + completion, limit=tier.monthly_tokens, enforced=False),
        prompt_tokens=prompt,
        completion_tokens=completion,
        gpu_seconds=UsageFigure(used=gpu_seconds, limit=tier.monthly_gpu_seconds, enforced=False),
        gpu_seconds_measured="wall_clock",
    )


async def count_usage(session: AsyncSession, org_id: uuid.UUID, month: str | None) -> DescribeUsage:
    row = (
        await session.execute(
            select(Organization, ResourceTier)
            .join(ResourceTier, ResourceTier.name == Organization.tier_name)
            .where(Organization.id == org_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No organization with id '{org_id}'.")
    starts, ends = month_bounds(month, datetime.now(UTC))
    params = {"org": org_id, "starts": starts, "ends": ends}
    counted = (await session.execute(MONTH_USAGE, params)).mappings().one()
    return describe_usage(row[0], row[1], dict(counted), starts, ends)


class UsageService:
    def __init__(self, scopes: ScopeFactory) -> None:
        self.scopes = scopes

    async def get(self, identity: Identity, org_id: uuid.UUID, query: UsageQuery) -> DescribeUsage:
        """Owners and admins in their tenant's scope; platform admins for any organization."""
        async with self.scopes.enter(identity) as scope:
            role = scope.actor.role_in(org_id)
            if role is not None and role_allows(role, Permission.USAGE_READ):
                return await count_usage(scope.session, org_id, query.month)
            if not identity.platform_admin:
                scope.actor.require(org_id, Permission.USAGE_READ)  # 404 for outsiders, 403 for members
        async with system_transaction(self.scopes.db, read_only=True) as session:
            return await count_usage(session, org_id, query.month)
