"""Rate limits held in PostgreSQL, so they hold across processes and replicas.

The algorithm is GCRA (the generic cell rate algorithm, a leaky bucket kept as
one timestamp per bucket): a bucket allowing ``count`` requests per ``period``
spaces requests ``T = period / count`` apart and lets a burst of ``count`` through.
Its row keeps the *theoretical arrival time* (TAT) of the next request; a request
is allowed when ``max(TAT, now) + T - now <= period``, and then moves the TAT by
``T``. One conditional upsert does the check and the move atomically, in one round
trip, so concurrent servers never let more through than the rate allows.

A refused request learns when it may come back: ``max(TAT, now) + T - period - now``
seconds, sent as ``Retry-After``.

Buckets (``Bucket.key``) name who is limited: ``user:<name>:write``,
``user:<name>:execute``, ``org:<id>:execute``, ``org:<id>:write``, ``auth:<address>``.
Which requests charge which bucket is decided by the callers (the base handler for
users and failed authentication, the services for organizations, whose tier sets
the rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import OrchestratorError

#: allowed: the row moved. A refused request leaves the row as it was and returns nothing.
_TAKE = text(
    """
    INSERT INTO rate_limits AS r (key, tat)
    VALUES (:key, clock_timestamp() + make_interval(secs => :spacing))
    ON CONFLICT (key) DO UPDATE
       SET tat = GREATEST(r.tat, clock_timestamp()) + make_interval(secs => :spacing)
     WHERE GREATEST(r.tat, clock_timestamp()) + make_interval(secs => :spacing)
           <= clock_timestamp() + make_interval(secs => :period)
    RETURNING 1
    """
)
_WAIT = text(
    """
    SELECT EXTRACT(EPOCH FROM GREATEST(tat, clock_timestamp()) + make_interval(secs => :spacing)
                              - make_interval(secs => :period) - clock_timestamp())
      FROM rate_limits WHERE key = :key
    """
)
_SWEEP = text("DELETE FROM rate_limits WHERE tat < clock_timestamp() - interval '1 minute'")


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``period`` seconds, in a burst or spread out."""

    count: int
    period: float = 60.0

    @property
    def spacing(self) -> float:
        return self.period / self.count

    def __str__(self) -> str:
        return f"{self.count} per {self.period:g} s"


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: Rate
    #: what the caller reads in the error: "your writes", "this organization's runs"
    what: str


class RateLimited(OrchestratorError):
    """Too many requests: ``retry_after`` seconds until the next one is allowed."""

    status = 429
    title = "Too many requests"

    def __init__(self, bucket: Bucket, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            f"rate limit reached for {bucket.what} ({bucket.rate}); retry in {self.retry_after} s",
            retry_after=self.retry_after,
        )


class RateLimiter:
    """Takes one request from each bucket, or raises :class:`RateLimited` for the first that is full."""

    def __init__(self, engine: AsyncEngine, *, enabled: bool = True) -> None:
        self.engine = engine
        self.enabled = enabled

    async def take(self, *buckets: Bucket) -> None:
        """Charge every bucket in order; the first full one refuses (earlier ones stay charged)."""
        if not self.enabled or not buckets:
            return
        async with self.engine.connect() as conn:
            # each statement its own transaction: one round trip per bucket, no COMMIT after it, and the
            # row's lock released at once (concurrent requests of one user queue on that row)
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for bucket in buckets:
                params = {"key": bucket.key, "spacing": bucket.rate.spacing, "period": bucket.rate.period}
                if (await conn.execute(_TAKE, params)).first() is None:
                    wait = (await conn.execute(_WAIT, params)).scalar()
                    raise RateLimited(bucket, float(wait or 1.0))

    async def sweep(self) -> int:
        """Forget buckets idle for a minute past their last request (they are full again anyway)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_SWEEP)
        return int(result.rowcount or 0)
