"""The fast read path: SQLAlchemy Core writes the query, psycopg runs it in one round trip.

The list endpoints are the hottest paths of the API. Through the ORM, a page
of 50 agents cost ~2.7 ms of server CPU for ~0.4 ms of database work: the
session, identity map, row objects and the asyncio adaptation layer dominate.
So these reads:

- build their SQL once per query shape from the typed models (Core, compiled
  for psycopg, named ``%(name)s`` parameters) and PREPARE it once per connection;
- run on a few psycopg connections of their own, as ONE simple-protocol batch
  ``EXECUTE enter(<user>); EXECUTE <query>(...)`` bound client-side by psycopg
  (``ClientCursor``, which quotes every value): one implicit transaction, so the
  row-level-security scope and the query cost a single round trip;
- have PostgreSQL write the page's JSON (``as_json_page``), which the server
  passes through: exactly what the pydantic response model describes (a test
  checks they agree).

Writes keep the ORM and its unit of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.rows import dict_row
from sqlalchemy import (
    ARRAY,
    Integer,
    Select,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ClauseElement

_DIALECT = psycopg_dialect()  # type: ignore[no-untyped-call]
_UUIDS = ARRAY(PG_UUID(as_uuid=True))


def dumps(payload: Any) -> bytes:
    """JSON as pydantic would write it for the response models (UTC as ``Z``, UUIDs as strings)."""
    return orjson.dumps(payload, option=orjson.OPT_UTC_Z)


@dataclass(frozen=True)
class Prepared:
    """A statement the read pool prepares once per connection and then EXECUTEs by name."""

    name: str
    text: str  # with numbered parameters $1..$n
    params: tuple[str, ...]  # parameter names, in the order of their numbers

    @classmethod
    def of(cls, sql: str) -> Prepared:
        """From SQL with named ``%(name)s`` parameters (SQLAlchemy's psycopg dialect, or hand-written)."""
        order: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"

        text = _PLACEHOLDER.sub(number, sql)
        name = "orch_" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
        return cls(name=name, text=text, params=tuple(order))

    def execute_sql(self) -> str:
        """``EXECUTE name(%(a)s, ...)``, bound client-side by psycopg."""
        args = ", ".join(f"%({p})s" for p in self.params)
        return f"EXECUTE {self.name}({args})" if args else f"EXECUTE {self.name}"


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class CompiledReads:
    """Prepared statements per query shape, compiled from Core on first use."""

    def __init__(self) -> None:
        self._prepared: dict[Hashable, Prepared] = {}

    def prepared(self, shape: Hashable, build: Callable[[], ClauseElement]) -> Prepared:
        found = self._prepared.get(shape)
        if found is None:
            found = Prepared.of(str(build().compile(dialect=_DIALECT)))
            self._prepared[shape] = found
        return found


def newest_first_page(
    table: Table, conditions: Callable[[Table], list[Any]], *, after: bool, all_mine: bool
) -> Select[Any]:
    """A page of ``table`` across the organizations in ``%(orgs)s`` (``all_mine``: every
    organization of the caller's scope, entered earlier in the batch), newest first.

    One ordered index scan per organization (a LATERAL subquery on
    ``(org_id, created_at DESC, id DESC)``), then a merge of at most
    ``limit`` rows from each: ``org_id = ANY(...)`` alone makes PostgreSQL
    sort every row of every organization.
    """
    source = func.orchestrator_org_ids() if all_mine else bindparam("orgs", type_=_UUIDS)
    orgs = func.unnest(source).table_valued("org_id").render_derived(name="o")
    inner = select(table).where(table.c.org_id == orgs.c.org_id, *conditions(table))
    if after:
        after_key = tuple_(bindparam("after_at"), bindparam("after_id", type_=PG_UUID(as_uuid=True)))
        inner = inner.where(tuple_(table.c.created_at, table.c.id) < after_key)
    page = inner.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(bindparam("limit")).lateral("page")
    return (
        select(*page.c)
        .select_from(orgs)
        .join(page, true())
        .order_by(page.c.created_at.desc(), page.c.id.desc())
        .limit(bindparam("limit"))
    )


def as_json_page(rows: Select[Any], fields: Sequence[str]) -> Select[str, bool, Any, Any]:
    """Let PostgreSQL write the page: wrap a newest-first query that fetches ``%(limit)s``
    (= ``%(page_size)s`` + 1) rows into one row of

    - ``items``: the first ``page_size`` rows as a JSON array of objects with exactly
      ``fields`` (PostgreSQL's own JSON for each type; the response models write
      timestamps the same way, see ``schemas.common.Timestamp``);
    - ``more``: whether a next page exists; ``last_at``, ``last_id``: the key of the
      page's last row, for the next cursor.
    """
    page = rows.cte("page_rows")
    order = (page.c.created_at.desc(), page.c.id.desc())
    size = bindparam("page_size", type_=Integer)
    kept = select(*(page.c[name] for name in fields)).order_by(*order).limit(size).subquery("item")
    items = select(
        func.coalesce(
            func.json_agg(aggregate_order_by(kept.table_valued(), kept.c.created_at.desc(), kept.c.id.desc())),
            literal_column("'[]'::json"),
        )
    ).scalar_subquery()
    last = (
        select(page.c.created_at, page.c.id)
        .order_by(*order)
        .offset(bindparam("last_offset"))
        .limit(literal_column("1"))
    )
    last_row = last.subquery("last_row")
    return select(
        items.label("items"),
        (select(func.count()).select_from(page).scalar_subquery() > size).label("more"),
        select(last_row.c.created_at).scalar_subquery().label("last_at"),
        select(last_row.c.id).scalar_subquery().label("last_id"),
    )


class RawJsonLoader(Loader):
    """Load ``json`` as the raw bytes PostgreSQL sent (the fast path writes them out as they are)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def _idle(conn: psycopg.AsyncConnection[Any]) -> bool:
    return conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def _batch(prepare: Sequence[Prepared], enter: Prepared, query: Prepared) -> str:
    """``[PREPARE ...;] EXECUTE enter; EXECUTE query``.

    PostgreSQL runs the statements of one simple-protocol message as a single
    implicit transaction, so the tenant scope that ``enter`` sets (transaction-local)
    holds for the query and ends with it; no BEGIN/COMMIT round of parsing needed.
    """
    prepared = "".join(f"PREPARE {p.name} AS {p.text.replace('%', '%%')}; " for p in prepare)
    return f"{prepared}{enter.execute_sql()}; {query.execute_sql()}"


class ReadPool:
    """A few psycopg connections for the fast reads, made on first use.

    Deliberately minimal (a semaphore of ``size`` slots, idle connections
    reused, broken ones closed and replaced): on this path a general-purpose
    pool's checkout and return cost more than a twentieth of the whole
    request. A request that finds every slot busy waits at most ``timeout``
    seconds, then fails with :class:`ReadPoolTimeout` (a 503).
    Connections are in autocommit mode: each batch is its own implicit transaction.
    """

    def __init__(self, url: str, size: int, statement_timeout_ms: int, timeout: float = 10.0) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._size = max(1, size)
        self._timeout = timeout
        self._options = f"-c statement_timeout={statement_timeout_ms} -c timezone=UTC"
        self._slots = asyncio.Semaphore(self._size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._open = 0
        self._closed = False
        self._prepared: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[str]] = weakref.WeakKeyDictionary()

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        """A slot, then an idle connection or a new one; the slot is freed by :meth:`_give_back`."""
        if self._closed:
            raise psycopg.OperationalError("the read pool is closed")
        try:
            await asyncio.wait_for(self._slots.acquire(), self._timeout)
        except TimeoutError as exc:
            raise ReadPoolTimeout(f"no read connection free within {self._timeout} s") from exc
        try:
            if self._idle:
                return self._idle.pop()
            # the cursor class by the connection (not named at each read): with tracing on, psycopg's
            # instrumentation wraps it, so each read's batch is a statement span like the ORM's
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, options=self._options, autocommit=True, cursor_factory=psycopg.AsyncClientCursor
            )
            # json values stay the bytes PostgreSQL wrote: pages are passed through, never parsed
            conn.adapters.register_loader("json", RawJsonLoader)
            self._open += 1
            return conn
        except BaseException:
            self._slots.release()
            raise

    async def _give_back(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            if not (self._closed or conn.broken or conn.closed) and not _idle(conn):
                # a batch that failed mid-way leaves its transaction open: end it, keep the connection
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
            if self._closed or conn.broken or conn.closed or not _idle(conn):
                # a connection in an unknown state is not reused: close it, make another later
                self._open -= 1
                self._prepared.pop(conn, None)
                if not conn.closed:
                    await conn.close()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    async def scoped(
        self, enter: Prepared, query: Prepared, params: Mapping[str, Any], *, retry: bool = True
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``EXECUTE enter; EXECUTE query`` in one round trip and one implicit transaction.

        Both statements are prepared on the connection the first time it runs
        them (the ``PREPARE`` goes in the same batch), so PostgreSQL plans each
        query shape once per connection instead of once per request.
        Connections are not pinged on checkout (a round trip per request); a
        connection the server dropped (restart, failover) fails here, is
        discarded by the pool as broken, and the read is tried once more
        (not with ``retry=False``: a write that may have committed is never repeated).
        """
        try:
            return await self._scoped_once(enter, query, params)
        except ReadPoolTimeout:
            raise
        except psycopg.OperationalError:
            if not retry:
                raise
            return await self._scoped_once(enter, query, params)

    async def _scoped_once(
        self, enter: Prepared, query: Prepared, params: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        conn = await self._take()
        try:
            known = self._prepared.setdefault(conn, set())
            cursor = conn.cursor(row_factory=dict_row)  # an AsyncClientCursor (see _take)
            missing = [p for p in (enter, query) if p.name not in known]
            try:
                await cursor.execute(_batch(missing, enter, query), params)
            except psycopg.errors.DuplicatePreparedStatement:
                # prepared by an earlier batch that failed afterwards: it is there
                await cursor.execute(_batch([], enter, query), params)
            known.update(p.name for p in missing)
            results: list[list[dict[str, Any]]] = []
            while True:
                if cursor.description is not None:
                    results.append(await cursor.fetchall())
                if not cursor.nextset():
                    break
            return results[0], results[1]
        finally:
            await self._give_back(conn)

    def status(self) -> dict[str, int]:
        return {"size": self._open, "available": len(self._idle)}

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            await self._idle.pop().close()
        self._open = 0


class ReadPoolTimeout(psycopg.OperationalError):
    """Every read connection stayed busy for the pool's timeout."""
