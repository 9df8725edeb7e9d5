"""The queue is the ``workflow_executions`` table; these are its operations.

Workers reach PostgreSQL as the application role with the row-level-security
bypass on (they serve every tenant; ``db/system.py``), through a small pool of
autocommit connections that are checked before use when they sat idle, so a
database restart costs a retry, not a worker. Every write that ends or renews a run names the attempt and the
worker that holds it: a worker that lost its lease (a zombie) changes nothing.
"""

from __future__ import annotations

import json
import re
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import AsyncConnectionPool

from ..db.system import configure_system_connection

#: a pooled connection idle this long is checked (a round trip) before use
RECHECK_AFTER_SECONDS = 1.0

# The claim brings the integrations the run's spec names (``looked_for``: its list, and the model keys of its
# options and nodes, handing.MODEL_KEYS) and its organization's default model (framework runs), as INTEGRATIONS
# below: the worker saves a round trip a run. The worker checks that the
# names it finds in the spec are among those looked for (else it reads them with INTEGRATIONS).
CLAIM = """
SELECT c.id, c.org_id, c.workflow_id, c.agent_id, c.attempt, c.max_attempts, c.timeout_seconds, c.inputs,
       c.correlation_id, c.cancel_requested_at IS NOT NULL AS cancel_requested, c.resume, c.traceparent,
       v.spec, v.notebook_snapshot, a.framework, o.tier_name, o.runs_per_process, n.looked_for, h.integration_rows
  FROM orchestrator_claim_execution(%(worker)s, %(lease)s, %(tiers)s, %(kinds)s) c
  JOIN workflow_versions v ON v.id = c.workflow_version_id
  JOIN agents a ON a.id = c.agent_id
  JOIN organizations o ON o.id = c.org_id
 CROSS JOIN LATERAL (
   SELECT COALESCE(array_agg(DISTINCT name) FILTER (WHERE name IS NOT NULL), '{}') AS looked_for
     FROM (SELECT jsonb_path_query(v.spec, path) #>> '{}' AS name
             FROM unnest(ARRAY[
               'lax $.integrations[*]',
               'lax $.options.model', 'lax $.options.manager_model', 'lax $.options.embedder_model',
               'lax $.nodes[*].config.model', 'lax $.nodes[*].config.manager_model',
               'lax $.nodes[*].config.embedder_model'
             ]::jsonpath[]) path) named
 ) n
 CROSS JOIN LATERAL (
   SELECT COALESCE(jsonb_agg(jsonb_build_object(
            'id', i.id, 'name', i.name, 'kind', i.kind, 'config', i.config, 'secret_encrypted', i.secret_encrypted,
            'is_default', COALESCE(i.id = d.id, false))), '[]') AS integration_rows
     FROM integrations i
     LEFT JOIN LATERAL (
       SELECT id FROM integrations
        WHERE org_id = c.org_id AND kind = 'openai-compatible' AND a.framework <> 'notebook'
        ORDER BY name = 'default' DESC, created_at, name LIMIT 1
     ) d ON true
    WHERE i.org_id = c.org_id AND (i.id = d.id OR i.name = ANY(n.looked_for))
 ) h
"""

CANCEL_REQUESTED = "SELECT cancel_requested_at IS NOT NULL AS asked FROM workflow_executions WHERE id = %(id)s"

HEARTBEAT = """
UPDATE workflow_executions
   SET lease_expires_at = clock_timestamp() + make_interval(secs => %(lease)s)
 WHERE id = ANY(%(ids)s) AND worker_id = %(worker)s AND status = 'running'
RETURNING id, attempt, cancel_requested_at IS NOT NULL AS cancel_requested
"""

FINISH = """
UPDATE workflow_executions
   SET status = %(status)s, outputs = %(outputs)s, error = %(error)s, finished_at = clock_timestamp(),
       updated_at = clock_timestamp(), lease_expires_at = NULL
 WHERE id = %(id)s AND attempt = %(attempt)s AND worker_id = %(worker)s AND status = 'running'
RETURNING id
"""

WAIT = """
UPDATE workflow_executions
   SET status = 'waiting', outputs = %(outputs)s, waiting_for = %(waiting_for)s, error = NULL, resume = NULL,
       updated_at = clock_timestamp(), lease_expires_at = NULL, worker_id = NULL
 WHERE id = %(id)s AND attempt = %(attempt)s AND worker_id = %(worker)s AND status = 'running'
   AND cancel_requested_at IS NULL
RETURNING id
"""

RETRY = """
UPDATE workflow_executions
   SET status = 'queued', error = %(error)s, worker_id = NULL, lease_expires_at = NULL, updated_at = clock_timestamp(),
       run_after = clock_timestamp() + make_interval(secs => %(delay)s)
 WHERE id = %(id)s AND attempt = %(attempt)s AND worker_id = %(worker)s AND status = 'running'
   AND cancel_requested_at IS NULL
RETURNING id
"""

# Handed back (its worker is stopping) or lost (below): the run keeps its place in the queue. A claim
# leaves ``run_after`` as it was (when the run was enqueued, or when its retry fell due), and the
# queue is claimed in ``run_after`` order: the run is taken up before the runs enqueued after it.
RELEASE = """
UPDATE workflow_executions
   SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
 WHERE id = %(id)s AND attempt = %(attempt)s AND worker_id = %(worker)s AND status = 'running'
RETURNING id
"""

SAVE_NOTEBOOK = """
INSERT INTO execution_notebooks (execution_id, org_id, attempt, content)
SELECT id, org_id, attempt, %(content)s FROM workflow_executions WHERE id = %(id)s
ON CONFLICT (execution_id) DO UPDATE SET attempt = EXCLUDED.attempt, content = EXCLUDED.content,
                                         created_at = clock_timestamp()
"""

# A run whose lease ran out lost its worker: back to the queue in its place, unless it was
# being cancelled (then cancelled) or has been lost too often (then failed).
REQUEUE_LOST = """
UPDATE workflow_executions
   SET status = CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancelled'
                     WHEN attempt >= max_attempts + %(extra)s THEN 'failed' ELSE 'queued' END,
       error = CASE WHEN cancel_requested_at IS NOT NULL
                    THEN jsonb_build_object('kind', 'cancelled', 'message', 'cancelled (its worker was lost)')
                    ELSE jsonb_build_object('kind', 'internal', 'retryable', true, 'message',
                         format('the worker %%s running attempt %%s stopped answering (lease expired)',
                                worker_id, attempt)) END,
       finished_at = CASE WHEN cancel_requested_at IS NOT NULL OR attempt >= max_attempts + %(extra)s
                          THEN clock_timestamp() END,
       worker_id = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()
 WHERE status = 'running' AND lease_expires_at < clock_timestamp()
RETURNING id, status
"""

APPEND_EVENTS = """
INSERT INTO execution_events (execution_id, org_id, attempt, kind, data)
SELECT execution_id, org_id, attempt, kind, data
  FROM jsonb_to_recordset(%(rows)s) AS e(execution_id uuid, org_id uuid, attempt integer, kind text, data jsonb)
"""

#: a run's end and the events still waiting to be written (its last log lines and steps, and any other run's),
#: in one statement: one round trip, and the events are in when the end is (the end's status event, written by
#: a trigger at the end of the statement, comes after them)
FINISH_WITH_EVENTS = f"WITH events AS ({APPEND_EVENTS})\n{FINISH}"

#: the integrations a run names, and (``default_model``) the organization's default model: the
#: openai-compatible integration named 'default', else the oldest; one round trip
INTEGRATIONS = """
WITH preferred AS (
  SELECT id FROM integrations WHERE org_id = %(org)s AND kind = 'openai-compatible' AND %(with_default)s
   ORDER BY name = 'default' DESC, created_at, name LIMIT 1
)
SELECT i.id, i.name, i.kind, i.config, i.secret_encrypted, i.id IN (SELECT id FROM preferred) AS is_default
  FROM integrations i
 WHERE i.org_id = %(org)s AND (i.name = ANY(%(names)s) OR i.id IN (SELECT id FROM preferred))
"""


#: a JSON escape of NUL (an odd run of backslashes before u0000), which PostgreSQL's jsonb refuses
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


#: a JSON escape of a UTF-16 surrogate: a high one with its low one (kept), or one alone (refused by jsonb)
_SURROGATE_ESCAPE = re.compile(
    r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})(\\ud[c-f][0-9a-f]{2})?"  # a high one, and its low one if there
    r"|(?<!\\)((?:\\\\)*)\\ud[c-f][0-9a-f]{2}"  # a low one alone
)


def _lone_surrogate(match: re.Match[str]) -> str:
    if match.group(3):  # a pair: a character outside the BMP, as json.dumps writes it
        return match.group(0)
    return (match.group(1) or match.group(4) or "") + "\\ufffd"


def _pg_dumps(value: Any) -> str:
    """JSON as jsonb takes it: what a run produced may hold NUL characters or lone UTF-16 surrogates (a
    Python str can, e.g. from a bad decode); both become U+FFFD."""
    text = _NUL_ESCAPE.sub(r"\1\\ufffd", json.dumps(value, default=str))
    if "\\ud" in text:
        text = _SURROGATE_ESCAPE.sub(_lone_surrogate, text)
    return text


def jsonb(value: Any) -> Jsonb:
    """Every JSON value the engine writes goes through here: a run's output never fails its own completion."""
    return Jsonb(value, dumps=_pg_dumps)


@dataclass
class ClaimedRun:
    """A run a worker holds: what to run, with what, for which attempt."""

    id: uuid.UUID
    org_id: uuid.UUID
    workflow_id: uuid.UUID
    agent_id: uuid.UUID
    attempt: int
    max_attempts: int
    timeout_seconds: int | None
    inputs: dict[str, Any]
    correlation_id: str | None
    cancel_requested: bool
    spec: dict[str, Any]
    notebook_snapshot: dict[str, Any] | None
    framework: str
    #: the human's answer a resumed run goes on with
    resume: dict[str, Any] | None = None
    #: the W3C traceparent of the request that queued it (tracing on): the run continues that trace
    traceparent: str | None = None
    #: its organization's tier, and how many of its runs one forked process may serve (engine/reuse.py)
    tier_name: str = ""
    runs_per_process: int = 1
    #: the names the claim looked for in the spec, and the integrations it found (rows as INTEGRATIONS gives)
    looked_for: list[str] | None = None
    integration_rows: list[dict[str, Any]] | None = None


class Queue:
    """The queue's operations over a small pool of the worker's own connections."""

    def __init__(self, url: str, *, size: int = 4, statement_timeout_ms: int = 30_000) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=size,
            open=False,
            kwargs={"autocommit": True, "options": f"-c statement_timeout={statement_timeout_ms}"},
            configure=configure_system_connection,
            check=self._check,
            reconnect_timeout=3600,
        )
        self._last_checked: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()

    async def _check(self, conn: AsyncConnection[Any]) -> None:
        """Check a connection that sat idle (a round trip): one in use a moment ago is still good, and a
        run's claim, events and end would otherwise each pay a second round trip for the check."""
        now = time.monotonic()
        if now - self._last_checked.get(conn, -RECHECK_AFTER_SECONDS) >= RECHECK_AFTER_SECONDS:
            await AsyncConnectionPool.check_connection(conn)
        self._last_checked[conn] = now

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall() if cur.description else []

    async def claim(
        self, worker: str, lease_seconds: float, tiers: list[str] | None = None, kinds: list[str] | None = None
    ) -> ClaimedRun | None:
        """The oldest runnable run (of an organization on one of ``tiers``, of one of ``kinds``: 'notebook',
        'framework'; None: any), now held by ``worker``."""
        params = {"worker": worker, "lease": lease_seconds, "tiers": tiers or None, "kinds": kinds}
        rows = await self._rows(CLAIM, params)
        return ClaimedRun(**rows[0]) if rows else None

    async def claim_many(
        self,
        worker: str,
        lease_seconds: float,
        tiers: list[str] | None = None,
        limit: int = 1,
        kinds: list[str] | None = None,
    ) -> list[ClaimedRun]:
        """Up to ``limit`` runs, oldest first, in one round trip (a pipeline: one transaction, each claim
        seeing the ones before it, so the organizations' concurrency limits hold)."""
        params = {"worker": worker, "lease": lease_seconds, "tiers": tiers or None, "kinds": kinds}
        async with self.pool.connection() as conn, conn.pipeline() as pipeline:
            cursors = [conn.cursor(row_factory=dict_row) for _ in range(max(1, limit))]
            for cur in cursors:
                await cur.execute(CLAIM, params)
            await pipeline.sync()
            return [ClaimedRun(**row) for cur in cursors for row in await cur.fetchall()]

    async def cancel_requested(self, run_id: uuid.UUID) -> bool:
        """Whether someone asked the API to cancel the run (its row), as a cancel notification claims."""
        rows = await self._rows(CANCEL_REQUESTED, {"id": run_id})
        return bool(rows and rows[0]["asked"])

    async def heartbeat(self, worker: str, ids: list[uuid.UUID], lease_seconds: float) -> dict[uuid.UUID, bool]:
        """Renew the leases of ``ids``; the runs still held, each with whether a cancel was asked."""
        rows = await self._rows(HEARTBEAT, {"worker": worker, "ids": ids, "lease": lease_seconds})
        return {row["id"]: row["cancel_requested"] for row in rows}

    async def finish(
        self,
        run: ClaimedRun,
        worker: str,
        status: str,
        outputs: dict[str, Any] | None,
        error: dict[str, Any] | None,
        notebook: dict[str, Any] | None,
        events: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Record the end of an attempt, once, with ``events`` (written whether or not it is held): False when
        this worker no longer holds it (its row does not change)."""
        sql, params = (
            FINISH,
            {
                "id": run.id,
                "attempt": run.attempt,
                "worker": worker,
                "status": status,
                "outputs": jsonb(outputs) if outputs is not None else None,
                "error": jsonb(error) if error is not None else None,
            },
        )
        if events:
            sql, params["rows"] = FINISH_WITH_EVENTS, jsonb(events)
        if notebook is None:  # one statement, one round trip (a transaction would add BEGIN and COMMIT)
            return bool(await self._rows(sql, params))
        async with self.pool.connection() as conn, conn.transaction():
            done = await (await conn.execute(sql, params)).fetchone()
            if done is not None and notebook is not None:
                # json, not jsonb: the notebook keeps its keys' order (its parameters, as the inputs gave them)
                await conn.execute(SAVE_NOTEBOOK, {"id": run.id, "content": Json(notebook, dumps=_pg_dumps)})
            return done is not None

    async def wait(self, run: ClaimedRun, worker: str, outputs: dict[str, Any], waiting_for: dict[str, Any]) -> bool:
        """End an attempt that stopped for a human: ``waiting`` until resumed; False when not held."""
        params = {
            "id": run.id,
            "attempt": run.attempt,
            "worker": worker,
            "outputs": jsonb(outputs),
            "waiting_for": jsonb(waiting_for),
        }
        return bool(await self._rows(WAIT, params))

    async def retry(self, run: ClaimedRun, worker: str, error: dict[str, Any], delay: float) -> bool:
        """Put a failed attempt back in the queue after ``delay`` seconds; False when not held (or cancelled)."""
        params = {"id": run.id, "attempt": run.attempt, "worker": worker, "error": jsonb(error), "delay": delay}
        return bool(await self._rows(RETRY, params))

    async def release(self, run: ClaimedRun, worker: str) -> bool:
        """Hand a run this worker is stopping for back to the queue (a stopping worker's runs)."""
        return bool(await self._rows(RELEASE, {"id": run.id, "attempt": run.attempt, "worker": worker}))

    async def requeue_lost(self, extra_attempts: int) -> list[dict[str, Any]]:
        return await self._rows(REQUEUE_LOST, {"extra": extra_attempts})

    async def append_events(self, rows: list[dict[str, Any]]) -> None:
        await self._rows(APPEND_EVENTS, {"rows": jsonb(rows)})

    async def integrations(
        self, org_id: uuid.UUID, names: list[str], *, with_default: bool = False
    ) -> list[dict[str, Any]]:
        """The organization's integrations named ``names`` (and its default model: ``is_default``)."""
        return await self._rows(INTEGRATIONS, {"org": org_id, "names": names, "with_default": with_default})
