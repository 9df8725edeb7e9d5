"""The one way past row-level security: work that must see every organization.

Every tenant table's policy admits a row of the caller's organizations, or any
row when ``orchestrator_is_system()`` (migration 0002) finds the setting
``orchestrator.system`` on. The application role may set it, so row-level
security guards against a query that forgets its organization filter, not
against code that lifts the policies on purpose: every place that does goes
through this module, and ``tests/db/test_system_transaction.py`` fails when the
setting's name appears anywhere else in the code. ``grep -rn
system_transaction orchestrator_ext`` lists who sees every tenant:

- the metrics collector (a read-only count across organizations);
- platform admins' ``/admin`` actions and the hub's group sync (organizations
  made from hub groups);
- the operator commands ``rotate-keys`` and ``set-tier`` (synchronous);
- the workers and schedulers, whose own connections serve every tenant
  (:func:`configure_system_connection`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, text

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from sqlalchemy.ext.asyncio import AsyncSession

    from .engine import Database

#: local to the transaction (``true``): gone at commit, so a pooled connection never keeps it
_LIFT_FOR_TRANSACTION = text("SELECT set_config('orchestrator.system', 'on', true)")
#: for the whole session of a connection that only ever serves every tenant
_LIFT_FOR_CONNECTION = "SELECT set_config('orchestrator.system', 'on', false), set_config('timezone', 'UTC', false)"


@asynccontextmanager
async def system_transaction(db: Database, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
    """A transaction of the server's pool that sees every organization; committed on success.

    ``read_only``: PostgreSQL refuses any write in it (the metrics' counts).
    """
    async with db.transaction() as session:
        if read_only:
            await session.execute(text("SET TRANSACTION READ ONLY"))
        await session.execute(_LIFT_FOR_TRANSACTION)
        yield session


@contextmanager
def system_transaction_sync(engine: Engine) -> Iterator[Connection]:
    """The same on a synchronous engine, for the operator commands (``rotate-keys``, ``set-tier``)."""
    with engine.begin() as conn:
        conn.execute(_LIFT_FOR_TRANSACTION)
        yield conn


async def configure_system_connection(conn: AsyncConnection[Any]) -> None:
    """Set up a worker's or scheduler's own pooled connection: every tenant, times in UTC."""
    await conn.execute(_LIFT_FOR_CONNECTION)
