"""Schedules: cron expressions that start runs of a workflow, and their recent runs.

The service checks the cron expression and the time zone (its errors name the
field at fault) and a notebook workflow's inputs against its parameters; the
scheduler (``engine/scheduler.py``) fires each due time exactly once.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict, StringConstraints

from ..db.models import ExecutionStatus
from ..engine.cron import MisfirePolicy, OverlapPolicy
from .common import WHOLE_NUMBER, NotNull, PageQuery, RequestModel, ResponseModel, Timestamp, as_sent, omit_default
from .workflows import MAX_VERSION, JsonObject, storable

#: how many recent runs a schedule's description lists
LAST_RUNS = 10

ScheduleName = Annotated[
    str, as_sent(200), StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(storable)
]
CronText = Annotated[
    str,
    as_sent(200),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(storable),
    Field(description="Five fields (minute hour day-of-month month day-of-week) or @hourly, @daily ..."),
]
TimezoneName = Annotated[
    str,
    as_sent(64),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(storable),
    Field(description="The IANA time zone the expression is read in, e.g. 'Europe/Paris'."),
]
PinnedVersion = Annotated[int, Strict(), Field(ge=1, le=MAX_VERSION), WHOLE_NUMBER]
Flag = Annotated[bool, Field(strict=True)]

VERSION_HELP = "The workflow version to run; null: the workflow's current version at each firing."
OVERLAP_HELP = (
    "When a firing comes while an earlier run of the schedule is queued or running: "
    "'skip' it, 'queue' it anyway, or 'cancel_previous' runs first."
)
MISFIRE_HELP = (
    "Firings missed while no scheduler ran (older than its grace period): "
    "'run_once' runs the latest of them once, 'skip' runs none."
)


class CreateSchedule(RequestModel):
    name: ScheduleName = ""
    cron: CronText
    timezone: TimezoneName = "UTC"
    inputs: JsonObject = Field(
        default_factory=dict, description="The inputs of every run; for notebook workflows, the notebook's parameters."
    )
    version: PinnedVersion | None = Field(default=None, description=VERSION_HELP)
    enabled: Flag = True
    overlap_policy: OverlapPolicy = Field(default=OverlapPolicy.SKIP, description=OVERLAP_HELP)
    misfire_policy: MisfirePolicy = Field(default=MisfirePolicy.RUN_ONCE, description=MISFIRE_HELP)


class UpdateSchedule(RequestModel):
    """Change some fields (merge-patch): absent fields keep their value; ``version`` may be set to null."""

    name: NotNull[ScheduleName] = Field(default=None, json_schema_extra=omit_default)
    cron: NotNull[CronText] = Field(default=None, json_schema_extra=omit_default)
    timezone: NotNull[TimezoneName] = Field(default=None, json_schema_extra=omit_default)
    inputs: NotNull[JsonObject] = Field(
        default=None, description="Replaces the inputs as a whole.", json_schema_extra=omit_default
    )
    version: PinnedVersion | None = Field(default=None, description=VERSION_HELP)
    enabled: NotNull[Flag] = Field(default=None, json_schema_extra=omit_default)
    overlap_policy: NotNull[OverlapPolicy] = Field(
        default=None, description=OVERLAP_HELP, json_schema_extra=omit_default
    )
    misfire_policy: NotNull[MisfirePolicy] = Field(
        default=None, description=MISFIRE_HELP, json_schema_extra=omit_default
    )


class DescribeScheduleRun(ResponseModel):
    """An execution a schedule started."""

    id: uuid.UUID
    status: ExecutionStatus
    scheduled_for: Timestamp | None = Field(description="The firing time it was started for.")
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class DescribeSchedule(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    workflow_id: uuid.UUID
    name: str
    cron: str
    timezone: str
    inputs: dict[str, Any]
    version: int | None = Field(description=VERSION_HELP)
    enabled: bool
    overlap_policy: OverlapPolicy
    misfire_policy: MisfirePolicy
    next_run_at: Timestamp | None = Field(description="The next firing, in UTC; null when disabled.")
    last_fired_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    last_runs: list[DescribeScheduleRun] = Field(
        default_factory=list, description=f"Up to {LAST_RUNS} of its most recent runs, newest first."
    )


class ListSchedulesQuery(PageQuery):
    pass


class ListSchedulesResponse(ResponseModel):
    """A workflow's schedules, newest first."""

    items: list[DescribeSchedule]
    next_cursor: str | None
