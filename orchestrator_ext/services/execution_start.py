"""Starting a run in two round trips, on the fast path of :mod:`..db.reads` (no ORM session).

``POST /workflows/{id}/execute`` is what a server does most under load (issue 15): through the ORM it
cost ten round trips (BEGIN, entering the scope, the workflow, its agent, the tier, the version, the
insert, the audit row, a re-read of the run, COMMIT) and 8-9 ms of server CPU. Here:

1. one batch ``EXECUTE enter; EXECUTE facts``: the workflow, whether its agent is live, the version
   asked for (None: the current one) and the organization's runs per minute, in the caller's scope;
2. the checks, in the same order as before: unknown or another tenant's workflow 404, a role that may
   not start runs 403, a deleted agent 404, an idempotent replay, the rate limit 429, the version and
   the inputs 422;
3. one batch ``EXECUTE enter; EXECUTE start``: the insert (``ON CONFLICT DO NOTHING`` on the
   organization's key) and its audit row in one statement (a data-modifying CTE: the audit row exists
   exactly when the run does), returning the run as the answer shows it.

Row-level security holds on both batches as on the ORM's path (the same ``orchestrator_enter``). Only
the write is never retried on a broken connection: it may have committed.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Integer, Select, String, bindparam, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSON, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from ..db.models import Agent, AuditEvent, Organization, ResourceTier, Workflow, WorkflowExecution, WorkflowVersion
from ..db.reads import CompiledReads
from ..schemas.executions import DescribeExecution

_STATEMENTS = CompiledReads()
_ANSWER = (*DescribeExecution.model_fields, "request_hash")
_JSON_FIELDS = ("inputs", "outputs", "error", "waiting_for")
_INSERTED = (
    "id",
    "org_id",
    "agent_id",
    "workflow_id",
    "workflow_version_id",
    "version",
    "status",
    "trigger",
    "inputs",
    "idempotency_key",
    "request_hash",
    "correlation_id",
    "traceparent",
    "attempt",
    "timeout_seconds",
    "max_attempts",
    "created_by",
)


def _facts() -> Select[Any]:
    """A live workflow, whether its agent is live, the version asked for and its organization's tier rate."""
    workflows, versions = Workflow.__table__, WorkflowVersion.__table__
    number = func.coalesce(bindparam("number", type_=Integer), workflows.c.current_version)
    per_minute = (
        select(ResourceTier.executes_per_minute)
        .join(Organization, Organization.tier_name == ResourceTier.name)
        .where(Organization.id == workflows.c.org_id)
        .scalar_subquery()
    )
    agent_live = select(Agent.id).where(Agent.id == workflows.c.agent_id, Agent.deleted_at.is_(None)).exists()
    return (
        select(
            workflows.c.id,
            workflows.c.org_id,
            workflows.c.agent_id,
            workflows.c.current_version,
            agent_live.label("agent_live"),
            versions.c.id.label("version_id"),
            versions.c.version.label("version_number"),
            versions.c.spec,
            versions.c.notebook_snapshot,
            per_minute.label("executes_per_minute"),
        )
        .select_from(workflows)
        .outerjoin(versions, (versions.c.workflow_id == workflows.c.id) & (versions.c.version == number))
        .where(
            workflows.c.id == bindparam("workflow_id", type_=PG_UUID(as_uuid=True)), workflows.c.deleted_at.is_(None)
        )
    )


def _by_key() -> Select[Any]:
    """The organization's run with an idempotency key, as the answer shows it, and its request's hash."""
    runs = WorkflowExecution.__table__
    return select(*(runs.c[name] for name in _ANSWER)).where(
        runs.c.org_id == bindparam("org_id", type_=PG_UUID(as_uuid=True)),
        runs.c.idempotency_key == bindparam("key", type_=String),
    )


def _start() -> Select[Any]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the answer, with the audit row in the same statement."""
    runs = WorkflowExecution.__table__
    types: dict[str, Any] = {"id": PG_UUID(as_uuid=True), "inputs": JSON()}
    # bound as r_<column>: SQLAlchemy keeps the bare column names for itself
    values = {name: bindparam(f"r_{name}", type_=types.get(name, runs.c[name].type)) for name in _INSERTED}
    run = (
        insert(WorkflowExecution)
        .values(values)
        .on_conflict_do_nothing(
            index_elements=[runs.c.org_id, runs.c.idempotency_key], index_where=runs.c.idempotency_key.is_not(None)
        )
        .returning(*(runs.c[name] for name in _ANSWER))
        .cte("run")
    )
    audit = (
        insert(AuditEvent)
        .from_select(
            ["id", "org_id", "actor_user_id", "action", "resource_type", "resource_id", "details"],
            select(
                func.gen_random_uuid(),
                run.c.org_id,
                bindparam("r_created_by", type_=PG_UUID(as_uuid=True)),
                literal_column("'execution.create'"),
                literal_column("'execution'"),
                cast(run.c.id, String),
                func.jsonb_build_object(literal_column("'version'"), run.c.version),
            ),
        )
        .cte("audit")
    )
    return select(*run.c).add_cte(audit)


FACTS = _STATEMENTS.prepared("facts", _facts)
BY_KEY = _STATEMENTS.prepared("by_key", _by_key)
START = _STATEMENTS.prepared("start", _start)


def answer(row: dict[str, Any]) -> dict[str, Any]:
    """A run's row as :class:`DescribeExecution` takes it (``json`` columns come from the fast path as bytes)."""
    return {
        name: orjson.loads(value) if name in _JSON_FIELDS and isinstance(value, bytes) else value
        for name, value in row.items()
    }
