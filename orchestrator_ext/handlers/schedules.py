"""``/workflows/{workflow_id}/schedules`` and ``/schedules/{schedule_id}``: cron schedules of a workflow.

Creating a schedule answers 201 with its ``Location``; ``PATCH`` changes the
fields sent (``version: null`` unpins the version); ``DELETE`` answers 204 and
keeps the runs the schedule started.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.schedules import (
    CreateSchedule,
    DescribeSchedule,
    ListSchedulesQuery,
    ListSchedulesResponse,
    UpdateSchedule,
)
from ..security.permissions import Permission
from .base import API_PREFIX, OrchestratorHandler, operation, route_table

TAGS = ("schedules",)


class WorkflowSchedulesHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "List a workflow's schedules, newest first",
        query=ListSchedulesQuery,
        responses={200: ListSchedulesResponse},
        lists="schedule_id",
        permission=Permission.SCHEDULES_READ,
        tags=TAGS,
    )
    async def get(self, workflow_id: str) -> None:
        query = self.parse_query(ListSchedulesQuery)
        reply = await self.services.schedules.list(self.identity, self.parse_id(workflow_id, "workflow"), query)
        self.write_model(reply)

    @web.authenticated
    @authorized
    @operation(
        "Create a cron schedule that starts runs of a workflow",
        body=CreateSchedule,
        responses={201: DescribeSchedule},
        creates="schedule_id",
        permission=Permission.SCHEDULES_MANAGE,
        tags=TAGS,
    )
    async def post(self, workflow_id: str) -> None:
        target = self.parse_id(workflow_id, "workflow")
        body = self.parse_body(CreateSchedule)
        schedule = await self.services.schedules.create(self.identity, target, body)
        self.set_header("Location", f"{self.base_url.rstrip('/')}/{API_PREFIX}/schedules/{schedule.id}")
        self.write_model(schedule, status=201)


class ScheduleHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Get a schedule and its most recent runs",
        responses={200: DescribeSchedule},
        permission=Permission.SCHEDULES_READ,
        tags=TAGS,
    )
    async def get(self, schedule_id: str) -> None:
        schedule = await self.services.schedules.get(self.identity, self.parse_id(schedule_id, "schedule"))
        self.write_model(schedule)

    @web.authenticated
    @authorized
    @operation(
        "Change a schedule (the fields sent)",
        body=UpdateSchedule,
        responses={200: DescribeSchedule},
        permission=Permission.SCHEDULES_MANAGE,
        tags=TAGS,
    )
    async def patch(self, schedule_id: str) -> None:
        target = self.parse_id(schedule_id, "schedule")
        body = self.parse_body(UpdateSchedule)
        self.write_model(await self.services.schedules.update(self.identity, target, body))

    @web.authenticated
    @authorized
    @operation(
        "Delete a schedule (the runs it started stay)",
        responses={204: None},
        permission=Permission.SCHEDULES_MANAGE,
        tags=TAGS,
    )
    async def delete(self, schedule_id: str) -> None:
        await self.services.schedules.delete(self.identity, self.parse_id(schedule_id, "schedule"))
        self.set_status(204)
        self.finish()


default_handlers = route_table(
    ("/workflows/{workflow_id}/schedules", WorkflowSchedulesHandler),
    ("/schedules/{schedule_id}", ScheduleHandler),
)
