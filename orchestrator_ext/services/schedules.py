"""Schedules: create, list, read, change and delete the cron schedules of a workflow.

The service keeps ``next_run_at``: the first firing after now while the
schedule is enabled, null while it is disabled. Firing is the scheduler's
work (``engine/scheduler.py``), which moves ``next_run_at`` on.

A schedule lives under a live workflow: one whose workflow or agent was
deleted answers 404, like another tenant's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import delete, func, select

from ..db.models import Agent, Schedule, Workflow, WorkflowExecution
from ..engine.cron import CronError, check_cron, check_timezone, next_fire
from ..errors import FieldError, NotFound, ValidationFailed
from ..schemas.schedules import (
    LAST_RUNS,
    CreateSchedule,
    DescribeSchedule,
    DescribeScheduleRun,
    ListSchedulesQuery,
    ListSchedulesResponse,
    UpdateSchedule,
)
from ..security.permissions import Permission
from . import audit
from .executions import runnable_version
from .pagination import page_of, paginate
from .scope import Identity, Scope, ScopeFactory
from .settings import ServiceSettings
from .workflows import load_runnable_workflow

#: changing one of these moves ``next_run_at``
TIMING_FIELDS = frozenset({"cron", "timezone", "enabled"})
#: changing one of these checks the inputs against the version again
INPUT_FIELDS = frozenset({"inputs", "version"})


def cron_problem(exc: CronError) -> ValidationFailed:
    """A cron or time zone error as a 422 naming its field."""
    return ValidationFailed(
        "The schedule's timing is invalid.", errors=[FieldError(exc.field, str(exc), f"{exc.field}_invalid")]
    )


def checked_timing(cron: str, timezone: str) -> tuple[str, str]:
    """The normalized cron expression and time zone name; 422 on the field at fault."""
    try:
        return check_cron(cron), check_timezone(timezone).key
    except CronError as exc:
        raise cron_problem(exc) from exc


def first_firing(cron: str, timezone: str, enabled: bool) -> datetime | None:
    """The first firing after now, None for a disabled schedule; 422 on ``cron`` when it never fires again."""
    if not enabled:
        return None
    try:
        return next_fire(cron, timezone, datetime.now(UTC))
    except CronError as exc:
        raise cron_problem(exc) from exc


def describe_schedule(schedule: Schedule, runs: Sequence[WorkflowExecution] = ()) -> DescribeSchedule:
    fields = {name: getattr(schedule, name) for name in DescribeSchedule.model_fields if name != "last_runs"}
    return DescribeSchedule.model_validate(
        {**fields, "last_runs": [DescribeScheduleRun.model_validate(run) for run in runs]}
    )


class ScheduleService:
    def __init__(self, scopes: ScopeFactory, settings: ServiceSettings) -> None:
        self.scopes = scopes
        self.settings = settings

    async def create(self, identity: Identity, workflow_id: uuid.UUID, body: CreateSchedule) -> DescribeSchedule:
        async with self.scopes.enter(identity) as scope:
            workflow = await load_runnable_workflow(scope, workflow_id, Permission.SCHEDULES_MANAGE)
            cron, timezone = checked_timing(body.cron, body.timezone)
            await runnable_version(scope, workflow, body.version, body.inputs)
            schedule = Schedule(
                id=uuid.uuid4(),
                org_id=workflow.org_id,
                workflow_id=workflow.id,
                name=body.name,
                cron=cron,
                timezone=timezone,
                inputs=body.inputs,
                version=body.version,
                enabled=body.enabled,
                overlap_policy=body.overlap_policy.value,
                misfire_policy=body.misfire_policy.value,
                next_run_at=first_firing(cron, timezone, body.enabled),
                created_by=scope.actor.user_id,
            )
            scope.session.add(schedule)
            await scope.session.flush()
            await scope.session.refresh(schedule)
            audit.record(
                scope, "schedule.create", "schedule", schedule.id, schedule.org_id, workflow_id=str(workflow.id)
            )
            return describe_schedule(schedule)

    async def list(
        self, identity: Identity, workflow_id: uuid.UUID, query: ListSchedulesQuery
    ) -> ListSchedulesResponse:
        async with self.scopes.enter(identity) as scope:
            workflow = await load_runnable_workflow(scope, workflow_id, Permission.SCHEDULES_READ)
            stmt = select(Schedule).where(Schedule.workflow_id == workflow.id)
            page = paginate(stmt, Schedule.created_at, Schedule.id, query.limit, query.cursor)
            schedules, next_cursor = page_of((await scope.session.execute(page)).scalars().all(), query.limit)
            runs = await _last_runs(scope, [s.id for s in schedules])
            items = [describe_schedule(s, runs.get(s.id, [])) for s in schedules]
            return ListSchedulesResponse(items=items, next_cursor=next_cursor)

    async def get(self, identity: Identity, schedule_id: uuid.UUID) -> DescribeSchedule:
        async with self.scopes.enter(identity) as scope:
            schedule, _ = await _load_schedule(scope, schedule_id, Permission.SCHEDULES_READ)
            runs = await _last_runs(scope, [schedule.id])
            return describe_schedule(schedule, runs.get(schedule.id, []))

    async def update(self, identity: Identity, schedule_id: uuid.UUID, body: UpdateSchedule) -> DescribeSchedule:
        """Change the fields sent; the timing is checked and ``next_run_at`` recomputed when it changes."""
        async with self.scopes.enter(identity) as scope:
            schedule, workflow = await _load_schedule(scope, schedule_id, Permission.SCHEDULES_MANAGE, lock=True)
            sent = body.model_fields_set
            changes: dict[str, Any] = {name: getattr(body, name) for name in sent}
            if sent & {"cron", "timezone"}:
                changes["cron"], changes["timezone"] = checked_timing(
                    changes.get("cron", schedule.cron), changes.get("timezone", schedule.timezone)
                )
            if sent & INPUT_FIELDS:
                await runnable_version(
                    scope, workflow, changes.get("version", schedule.version), changes.get("inputs", schedule.inputs)
                )
            changed = sorted(name for name, value in changes.items() if _stored(value) != getattr(schedule, name))
            for name in changed:
                setattr(schedule, name, _stored(changes[name]))
            if TIMING_FIELDS.intersection(changed):
                schedule.next_run_at = first_firing(schedule.cron, schedule.timezone, schedule.enabled)
            if changed:
                schedule.updated_at = datetime.now(UTC)
                audit.record(scope, "schedule.update", "schedule", schedule.id, schedule.org_id, changed=changed)
            await scope.session.flush()
            await scope.session.refresh(schedule)
            runs = await _last_runs(scope, [schedule.id])
            return describe_schedule(schedule, runs.get(schedule.id, []))

    async def delete(self, identity: Identity, schedule_id: uuid.UUID) -> None:
        """Delete the schedule; the runs it started stay (their ``schedule_id`` becomes null)."""
        async with self.scopes.enter(identity) as scope:
            schedule, _ = await _load_schedule(scope, schedule_id, Permission.SCHEDULES_MANAGE, lock=True)
            await scope.session.execute(delete(Schedule).where(Schedule.id == schedule.id))
            audit.record(
                scope,
                "schedule.delete",
                "schedule",
                schedule.id,
                schedule.org_id,
                workflow_id=str(schedule.workflow_id),
            )


# ---- helpers -------------------------------------------------------------------


def _stored(value: Any) -> Any:
    """A request value as the column stores it (policies are enums in requests, text in rows)."""
    return value.value if isinstance(value, Enum) else value


async def _load_schedule(
    scope: Scope, schedule_id: uuid.UUID, permission: Permission, *, lock: bool = False
) -> tuple[Schedule, Workflow]:
    """A schedule of a live workflow and agent, and its workflow; 404 when invisible, 403 without ``permission``."""
    stmt = (
        select(Schedule, Workflow)
        .join(Workflow, Workflow.id == Schedule.workflow_id)
        .join(Agent, Agent.id == Workflow.agent_id)
        .where(Schedule.id == schedule_id, Workflow.deleted_at.is_(None), Agent.deleted_at.is_(None))
    )
    if lock:
        stmt = stmt.with_for_update(of=Schedule)
    found = (await scope.session.execute(stmt)).first()
    if found is None:
        raise NotFound(f"No schedule with id '{schedule_id}'.")
    schedule, workflow = found
    scope.actor.require(schedule.org_id, permission, what="schedule", resource_id=schedule_id)
    return schedule, workflow


async def _last_runs(scope: Scope, schedule_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[WorkflowExecution]]:
    """Up to ``LAST_RUNS`` most recent runs of each schedule, newest first."""
    ids = list(schedule_ids)
    if not ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=WorkflowExecution.schedule_id,
            order_by=(WorkflowExecution.scheduled_for.desc(), WorkflowExecution.created_at.desc()),
        )
        .label("rank")
    )
    ranked = select(WorkflowExecution.id, rank).where(WorkflowExecution.schedule_id.in_(ids)).subquery()
    stmt = (
        select(WorkflowExecution)
        .join(ranked, ranked.c.id == WorkflowExecution.id)
        .where(ranked.c.rank <= LAST_RUNS)
        .order_by(WorkflowExecution.scheduled_for.desc(), WorkflowExecution.created_at.desc())
    )
    found: dict[uuid.UUID, list[WorkflowExecution]] = {}
    for run in (await scope.session.execute(stmt)).scalars():
        if run.schedule_id is not None:
            found.setdefault(run.schedule_id, []).append(run)
    return found
