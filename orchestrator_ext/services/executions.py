"""Executions: queue a run of a workflow version, read, list and cancel runs, read their events.

Starting an execution only records it, ``queued``: the execution engine's
workers (:mod:`orchestrator_ext.engine`) move it through its states.

An ``Idempotency-Key`` makes a start safe to retry: the key is unique per
organization (a partial unique index), the first request inserts, and any
retry, even a concurrent one, gets the same execution back, provided its
request is the same (same sha256 of the canonical request), else 409.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from orchestrator_runtimes.notebook import inputs_mode, notebook_input_problems
from sqlalchemy import BigInteger, ColumnElement, Select, Table, all_, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from .. import tracing
from ..db.models import (
    ExecutionEvent,
    ExecutionNotebook,
    ExecutionStatus,
    ExecutionTrigger,
    Workflow,
    WorkflowExecution,
    WorkflowVersion,
)
from ..db.reads import CompiledReads, as_json_page, newest_first_page
from ..errors import Conflict, FieldError, NotFound, ValidationFailed
from ..observability.logging import correlation_id
from ..schemas.executions import (
    DescribeExecution,
    ExecuteWorkflow,
    ExecutionEventOut,
    ListExecutionsQuery,
    ResumeExecution,
    StatusEventOut,
)
from ..security.permissions import Permission
from . import audit
from . import execution_start as start
from .pagination import JsonPage, page_params
from .ratelimit import Bucket, Rate, RateLimiter
from .scope import Actor, Identity, Scope, ScopeFactory
from .settings import ServiceSettings
from .workflows import is_notebook_spec, load_version

KEY_FIELD = "Idempotency-Key"
FINISHED = frozenset({"succeeded", "failed", "cancelled", "timed_out"})


@dataclass(frozen=True)
class EventBatch:
    events: list[ExecutionEventOut]
    ended: bool
    full: bool


def request_hash(workflow_id: uuid.UUID, body: ExecuteWorkflow) -> str:
    """sha256 of the canonical request: the workflow, the version asked for, the inputs."""
    request: dict[str, Any] = {"workflow_id": str(workflow_id), "version": body.version, "inputs": body.inputs}
    for limit in ("timeout_seconds", "max_attempts"):
        if getattr(body, limit) is not None:
            request[limit] = getattr(body, limit)
    canonical = json.dumps(
        request,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_inputs(version: WorkflowVersion, inputs: dict[str, object], *, prefix: str = "inputs") -> None:
    """A notebook workflow takes the inputs its notebook allows: its parameters, each of its type (strict);
    any inputs when it has no parameters cell or its spec says ``options.inputs: lenient`` (papermill's way)."""
    source = version.spec.get("notebook")
    notebook = (source.get("content") or version.notebook_snapshot) if isinstance(source, dict) else None
    if not isinstance(notebook, dict):
        return
    problems = notebook_input_problems(notebook, inputs, inputs_mode(version.spec))
    if problems:
        errors = [
            FieldError(f"{prefix}.{name}", problem, "unknown" if "no parameter" in problem else "type")
            for name, problem in sorted(problems.items())
        ]
        raise ValidationFailed("Some inputs do not fit the notebook's parameters.", errors=errors)


async def runnable_version(
    scope: Scope, workflow: Workflow, number: int | None, inputs: dict[str, object], *, prefix: str = "inputs"
) -> WorkflowVersion:
    """Version ``number`` of the workflow (None: the current one), given that ``inputs`` fit it; 422 otherwise."""
    version = await load_version(scope, workflow.id, number or workflow.current_version)
    if version is None:
        raise ValidationFailed(
            f"The workflow has no version {number}.",
            errors=[FieldError("version", f"no version {number}; the current one is {workflow.current_version}")],
        )
    check_inputs(version, inputs, prefix=prefix)
    return version


_READS = CompiledReads()


def _executions_page(
    workflow: bool, agent: bool, status: bool, after: bool, all_mine: bool
) -> Select[str, bool, Any, Any]:
    """The executions page query for one combination of filters (bound parameters, compiled once)."""

    def conditions(runs: Table) -> list[Any]:
        found: list[Any] = []
        if workflow:
            found.append(runs.c.workflow_id == bindparam("workflow_id", type_=PG_UUID(as_uuid=True)))
        if agent:
            found.append(runs.c.agent_id == bindparam("agent_id", type_=PG_UUID(as_uuid=True)))
        if status:
            found.append(runs.c.status == bindparam("status"))
        return found

    table = WorkflowExecution.__table__
    rows = newest_first_page(table, conditions, after=after, all_mine=all_mine)  # type: ignore[arg-type]
    return as_json_page(rows, list(DescribeExecution.model_fields))


class ExecutionService:
    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings, limiter: RateLimiter | None = None) -> None:
        self.scopes = scopes
        self.settings = settings
        self.limiter = limiter

    async def _charge_organization(self, org_id: uuid.UUID, per_minute: int) -> None:
        """An organization's runs per minute, all its members together, as its tier allows (429 beyond)."""
        if self.limiter is None or not self.limiter.enabled:
            return
        await self.limiter.take(Bucket(f"org:{org_id}:execute", Rate(per_minute), "this organization's runs"))

    async def execute(
        self, identity: Identity, workflow_id: uuid.UUID, body: ExecuteWorkflow, idempotency_key: str | None
    ) -> tuple[DescribeExecution, bool]:
        """Queue a run; the execution, and False when it is the replay of an earlier request with the same key.

        Two round trips on the fast path (:mod:`.execution_start`): what the checks need, then the insert
        with its audit row; the checks in between, in the order the answers have always had.
        """
        actor, rows = await self.scopes.read(
            identity, start.FACTS, {"workflow_id": workflow_id, "number": body.version}
        )
        if not rows:
            raise NotFound(f"No workflow with id '{workflow_id}'.")
        facts = rows[0]
        actor.require(facts["org_id"], Permission.EXECUTIONS_CREATE, what="workflow", resource_id=workflow_id)
        if not facts["agent_live"]:
            raise NotFound(f"No workflow with id '{workflow_id}' (its agent was deleted).")
        digest = request_hash(workflow_id, body)
        if idempotency_key is not None:
            earlier = await self._by_key_fast(identity, facts["org_id"], idempotency_key)
            if earlier is not None:
                return _replay(earlier, digest), False
        await self._charge_organization(facts["org_id"], facts["executes_per_minute"])  # a replay costs nothing
        _check_version(facts, body)
        created = await self.scopes.write(
            actor, start.START, _start_params(facts, body, idempotency_key, digest, actor)
        )
        if not created and idempotency_key is not None:  # a concurrent request won the insert
            earlier = await self._by_key_fast(identity, facts["org_id"], idempotency_key)
            if earlier is None:  # pragma: no cover - the conflicting row is committed
                raise Conflict("A request with this Idempotency-Key is in progress; retry.")
            return _replay(earlier, digest), False
        return DescribeExecution.model_validate(start.answer(created[0])), True

    async def _by_key_fast(self, identity: Identity, org_id: uuid.UUID, key: str) -> dict[str, Any] | None:
        """The organization's run with this idempotency key (one round trip), or None."""
        _, rows = await self.scopes.read(identity, start.BY_KEY, {"org_id": org_id, "key": key})
        return start.answer(rows[0]) if rows else None

    async def get(self, identity: Identity, execution_id: uuid.UUID) -> DescribeExecution:
        """An execution, even one of a deleted agent or workflow."""
        async with self.scopes.enter(identity) as scope:
            execution = await self._visible(scope, execution_id, Permission.EXECUTIONS_READ)
            return DescribeExecution.model_validate(execution)

    async def list(self, identity: Identity, query: ListExecutionsQuery) -> JsonPage:
        """Newest first, on the fast read path (:mod:`..db.reads`); the page is ``ListExecutionsResponse``."""
        params: dict[str, Any] = page_params(query.limit, query.cursor)
        for name in ("workflow_id", "agent_id"):
            if getattr(query, name) is not None:
                params[name] = getattr(query, name)
        if query.status is not None:
            params["status"] = query.status.value
        if query.org_id is not None:
            params["orgs"] = [query.org_id]
        # without org_id: every organization of the caller (every role may read executions)
        filters = ("workflow_id", "agent_id", "status", "after_at")
        shape = (*(key in params for key in filters), "orgs" not in params)
        page_query = _READS.prepared(shape, lambda: _executions_page(*shape))
        actor, rows = await self.scopes.read(identity, page_query, params)
        if query.org_id is not None:
            actor.require(query.org_id, Permission.EXECUTIONS_READ)
        return JsonPage.of(rows[0])

    async def cancel(self, identity: Identity, execution_id: uuid.UUID) -> tuple[DescribeExecution, bool]:
        """Cancel a run: the execution, and True while its worker is still stopping it (202)."""
        async with self.scopes.enter(identity) as scope:
            execution = await self._visible(scope, execution_id, Permission.EXECUTIONS_CANCEL)
            if execution.status in FINISHED and execution.status != ExecutionStatus.CANCELLED.value:
                raise Conflict(
                    f"The execution already ended ({execution.status}); only queued and running ones can be cancelled.",
                    errors=[FieldError("status", f"is {execution.status}", "already_finished")],
                )
            reason = f"cancelled by {scope.actor.user_id}"
            await scope.session.execute(select(func.orchestrator_cancel_execution(execution_id, reason)))
            audit.record(scope, "execution.cancel", "execution", execution_id, execution.org_id)
            await scope.session.refresh(execution)
            return DescribeExecution.model_validate(execution), execution.status == ExecutionStatus.RUNNING.value

    async def resume(self, identity: Identity, execution_id: uuid.UUID, body: ResumeExecution) -> DescribeExecution:
        """Answer a waiting run: it goes back in the queue and continues from its checkpoint."""
        async with self.scopes.enter(identity) as scope:
            execution = await self._visible(scope, execution_id, Permission.EXECUTIONS_CREATE)
            await scope.session.refresh(execution, with_for_update=True)
            if execution.status != ExecutionStatus.WAITING.value:
                raise Conflict(
                    f"The execution is {execution.status}; only a waiting one can be resumed.",
                    errors=[FieldError("status", f"is {execution.status}", "not_waiting")],
                )
            execution.status = ExecutionStatus.QUEUED.value
            execution.resume = {"answer": body.answer, "by": str(scope.actor.user_id)}
            execution.waiting_for = None
            execution.run_after = func.clock_timestamp()
            execution.updated_at = func.clock_timestamp()
            # each resume takes one attempt: the run keeps its budget for failures worth retrying
            execution.max_attempts = execution.max_attempts + 1
            audit.record(scope, "execution.resume", "execution", execution_id, execution.org_id)
            await scope.session.flush()
            await scope.session.refresh(execution)
            return DescribeExecution.model_validate(execution)

    async def events(self, identity: Identity, execution_id: uuid.UUID, after: int, limit: int = 500) -> EventBatch:
        """The run's events after id ``after`` (oldest first), and whether the run has ended."""
        async with self.scopes.enter(identity) as scope:
            execution = await self._visible(scope, execution_id, Permission.EXECUTIONS_READ)
            stmt = (
                select(ExecutionEvent)
                .where(ExecutionEvent.execution_id == execution_id, ExecutionEvent.id > after)
                .order_by(ExecutionEvent.id)
                .limit(limit)
            )
            rows = (await scope.session.execute(stmt)).scalars().all()
            return EventBatch(
                events=[ExecutionEventOut.model_validate(row) for row in rows],
                ended=execution.status in FINISHED,
                full=len(rows) == limit,
            )

    async def status_events(
        self,
        identity: Identity,
        org_id: uuid.UUID,
        after: int | None,
        limit: int = 500,
        lookback_s: float = 0.0,
        sent: Collection[int] = (),
    ) -> tuple[Sequence[StatusEventOut], int]:
        """The organization's status changes after id ``after`` (oldest first; from now when None), and the last id.

        What a live list of runs needs: each run's creation and every change of
        its status, whoever started it, without following each run's stream.
        Ids are taken at insert, rows seen at commit: a run's transaction can
        commit after another's later id was read. ``lookback_s`` also returns
        rows inserted that recently with an id up to ``after``, less those in
        ``sent`` (what the caller already has). The two reads are separate, each
        capped, each on its own index: the ids after ``after`` always advance,
        however many recent events there are (one ``OR`` of the two, ordered by
        id, once returned the same 500 sent rows forever and read the whole table).
        """
        async with self.scopes.enter(identity) as scope:
            scope.actor.require(org_id, Permission.EXECUTIONS_READ)
            status = (ExecutionEvent.org_id == org_id, ExecutionEvent.kind == "status")
            if after is None:
                newest = select(func.max(ExecutionEvent.id)).where(*status)
                return [], int((await scope.session.execute(newest)).scalar_one_or_none() or 0)
            rows = list(await self._status_rows(scope, status, ExecutionEvent.id > after, limit))
            if lookback_s:
                late = [  # now(), not clock_timestamp(): a volatile bound cannot use the index on created_at
                    ExecutionEvent.created_at > func.now() - timedelta(seconds=lookback_s),
                    ExecutionEvent.id <= after,
                ]
                if sent:
                    late.append(ExecutionEvent.id != all_(bindparam("sent", sorted(sent), type_=ARRAY(BigInteger))))
                rows = [*await self._status_rows(scope, status, and_(*late), limit), *rows]
            events = [StatusEventOut.model_validate(row) for row in rows]
            return events, max([after, *(event.id for event in events)])

    @staticmethod
    async def _status_rows(
        scope: Scope, status: tuple[ColumnElement[bool], ...], which: ColumnElement[bool], limit: int
    ) -> Sequence[ExecutionEvent]:
        stmt = select(ExecutionEvent).where(*status, which).order_by(ExecutionEvent.id).limit(limit)
        return (await scope.session.execute(stmt)).scalars().all()

    async def logs(self, identity: Identity, execution_id: uuid.UUID) -> str:
        """The run's whole log (every attempt's), as text."""
        async with self.scopes.enter(identity) as scope:
            await self._visible(scope, execution_id, Permission.EXECUTIONS_READ)
            stmt = (
                select(ExecutionEvent.attempt, ExecutionEvent.data["text"].astext)
                .where(ExecutionEvent.execution_id == execution_id, ExecutionEvent.kind == "log")
                .order_by(ExecutionEvent.id)
            )
            parts: list[str] = []
            shown = 0
            for attempt, text in (await scope.session.execute(stmt)).all():
                if attempt != shown:
                    parts.append(f"--- attempt {attempt} ---\n")
                    shown = attempt
                parts.append(text or "")
            return "".join(parts)

    async def notebook(self, identity: Identity, execution_id: uuid.UUID) -> dict[str, Any]:
        """The executed notebook of a notebook run (its last attempt)."""
        async with self.scopes.enter(identity) as scope:
            execution = await self._visible(scope, execution_id, Permission.EXECUTIONS_READ)
            stmt = select(ExecutionNotebook.content).where(ExecutionNotebook.execution_id == execution_id)
            content = (await scope.session.execute(stmt)).scalar_one_or_none()
            if content is None:
                raise NotFound(await _why_no_notebook(scope, execution))
            return dict(content)

    # ---- helpers ---------------------------------------------------------------

    async def _visible(self, scope: Scope, execution_id: uuid.UUID, permission: Permission) -> WorkflowExecution:
        stmt = select(WorkflowExecution).where(WorkflowExecution.id == execution_id)
        execution = (await scope.session.execute(stmt)).scalar_one_or_none()
        if execution is None:
            raise NotFound(f"No execution with id '{execution_id}'.")
        scope.actor.require(execution.org_id, permission, what="execution", resource_id=execution_id)
        return execution


def _check_version(facts: dict[str, Any], body: ExecuteWorkflow) -> None:
    """The version asked for exists and the inputs fit it (422 naming the field), as :func:`runnable_version`."""
    if facts["version_id"] is None:
        current = facts["current_version"]
        raise ValidationFailed(
            f"The workflow has no version {body.version}.",
            errors=[FieldError("version", f"no version {body.version}; the current one is {current}")],
        )
    check_inputs(WorkflowVersion(spec=facts["spec"], notebook_snapshot=facts["notebook_snapshot"]), body.inputs)


def _start_params(
    facts: dict[str, Any], body: ExecuteWorkflow, idempotency_key: str | None, digest: str, actor: Actor
) -> dict[str, Any]:
    """The values of a new run (``execution_start.START``'s parameters), as the ORM's insert had them."""
    spec = facts["spec"]
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "org_id": facts["org_id"],
        "agent_id": facts["agent_id"],
        "workflow_id": facts["id"],
        "workflow_version_id": facts["version_id"],
        "version": facts["version_number"],
        "status": ExecutionStatus.QUEUED.value,
        "trigger": ExecutionTrigger.API.value,
        "inputs": json.dumps(body.inputs),  # the text the ORM's JSON type wrote (a json column keeps it as is)
        "idempotency_key": idempotency_key,
        "request_hash": digest,
        "correlation_id": correlation_id.get(),
        "traceparent": tracing.traceparent(),
        "attempt": 0,
        "timeout_seconds": body.timeout_seconds or spec.get("timeout_seconds"),
        "max_attempts": body.max_attempts or spec.get("max_attempts") or 1,
        "created_by": actor.user_id,
    }
    return {f"r_{name}": value for name, value in values.items()}


def _replay(earlier: dict[str, Any], digest: str) -> DescribeExecution:
    if earlier["request_hash"] != digest:
        raise Conflict(
            "This Idempotency-Key was used for a different request; use a new key for a new request.",
            errors=[FieldError(KEY_FIELD, "already used with a different request", "idempotency_key_reused")],
            execution_id=str(earlier["id"]),
        )
    return DescribeExecution.model_validate(earlier)


async def _why_no_notebook(scope: Scope, execution: WorkflowExecution) -> str:
    """Why a run has no notebook to show, truthfully: not a notebook run, not ended, or ended before it had one."""
    ran = select(WorkflowVersion.spec).where(WorkflowVersion.id == execution.workflow_version_id)
    spec = (await scope.session.execute(ran)).scalar_one_or_none()
    subject = f"Execution '{execution.id}' has no notebook"
    if spec is None or not is_notebook_spec(spec):
        return f"{subject}: it is not a notebook run."
    if execution.finished_at is None:
        return f"{subject} yet: it is {execution.status}; the executed notebook is kept when it ends."
    reason = (execution.error or {}).get("message") or "no error was recorded"
    return f"{subject}: it ended {execution.status} before its notebook could be prepared ({reason})."
