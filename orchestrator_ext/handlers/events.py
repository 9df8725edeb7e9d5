"""``GET /executions/{id}/events``: a run's events as server-sent events.

From the beginning, or after ``Last-Event-ID`` (the header a reconnecting
``EventSource`` sends, or the ``last_event_id`` query parameter). Each event
has its row id as ``id``, its kind as ``event`` (``status``, ``log``, ``step``)
and the event as JSON ``data``. The stream ends after the run's final status;
while nothing happens a comment line keeps proxies from closing it.

``GET /organizations/{org_id}/events``: the status changes of all of an
organization's runs (``event: status``, the data naming its ``execution_id``),
from the moment of the request or after ``Last-Event-ID``, each once, in the
order they became visible (an event whose transaction committed late comes
after ones with higher ids: consumers keep each run's highest). It closes after
``max_seconds`` (default 300): a client takes it up again with the last id it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Sequence

from jupyter_server.auth.decorator import authorized
from pydantic import Field
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import FieldError, ValidationFailed
from ..schemas.common import RequestModel
from ..schemas.executions import ExecutionEventOut, StatusEventOut
from ..security.permissions import Permission
from .base import Header, OrchestratorHandler, operation

TAGS = ("executions",)
KEEPALIVE_SECONDS = 15.0
#: an organization's stream also re-reads events this recent: one committed after a later id was sent
LATE_COMMIT_SECONDS = 10.0
#: how long the stream remembers an id it sent: past the re-read's window, with room for a slow answer
SENT_MEMORY_SECONDS = 2 * LATE_COMMIT_SECONDS + 5.0
LAST_EVENT_ID = "Last-Event-ID"
#: an event id: a non-negative integer that fits PostgreSQL's bigint
_EVENT_ID = re.compile(r"[0-9]{1,18}")
LAST_EVENT_HEADER = Header(
    "Resume after this event id (what a reconnecting EventSource sends).", f"^{_EVENT_ID.pattern}$"
)
EVENT_STREAM = "text/event-stream; charset=utf-8"


class EventsQuery(RequestModel):
    last_event_id: int | None = Field(default=None, ge=0, description="Start after this event id.")


class StatusEventsQuery(EventsQuery):
    max_seconds: float = Field(default=300.0, ge=0, le=3600, description="Close the stream after this long.")


class ExecutionEventsHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Stream an execution's status changes, log lines and steps (server-sent events)",
        query=EventsQuery,
        responses={200: None},
        permission=Permission.EXECUTIONS_READ,
        tags=TAGS,
        headers={LAST_EVENT_ID: LAST_EVENT_HEADER},
        media={200: ("text/event-stream",)},
    )
    async def get(self, execution_id: str) -> None:
        target = self.parse_id(execution_id, "execution")
        last = self._start_after()
        executions = self.services.executions
        # subscribe before the first read: an event committed in between still wakes us
        with self.services.live.subscribe(target) as woken:
            batch = await executions.events(self.identity, target, last)  # authorizes before anything is sent
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Accel-Buffering", "no")
            with contextlib.suppress(StreamClosedError):
                while True:
                    last = await self._send(batch.events, last)
                    if batch.ended and not batch.full:
                        break
                    if not batch.full:
                        await self._wait(woken)
                    woken.clear()  # before reading: a notification from now on wakes the next wait
                    batch = await executions.events(self.identity, target, last)
        self.finish(set_content_type=EVENT_STREAM)

    async def _wait(self, woken: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(woken.wait(), KEEPALIVE_SECONDS)
        except TimeoutError:
            self.write(": keep-alive\n\n")
            await self._flush()

    def _start_after(self) -> int:
        header = self.request.headers.get(LAST_EVENT_ID)
        if header is None:
            return self.parse_query(EventsQuery).last_event_id or 0
        if not _EVENT_ID.fullmatch(header):
            raise ValidationFailed(
                "Last-Event-ID must be an event id (a non-negative integer).",
                errors=[FieldError(LAST_EVENT_ID, "expected a non-negative integer", "invalid")],
            )
        return int(header)

    async def _send(self, events: list[ExecutionEventOut], last: int) -> int:
        for event in events:
            data = json.dumps(event.model_dump(mode="json"), separators=(",", ":"))
            self.write(f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n")
            last = event.id
        if events:
            await self._flush()
        return last

    async def _flush(self) -> None:
        self.set_header("Content-Type", EVENT_STREAM)  # before the headers go out with the first flush
        await self.flush()


class OrganizationEventsHandler(ExecutionEventsHandler):
    @web.authenticated
    @authorized
    @operation(
        "Stream the status changes of all of an organization's runs (server-sent events)",
        query=StatusEventsQuery,
        responses={200: None},
        permission=Permission.EXECUTIONS_READ,
        tags=TAGS,
        headers={LAST_EVENT_ID: LAST_EVENT_HEADER},
        media={200: ("text/event-stream",)},
    )
    async def get(self, org_id: str) -> None:
        target = self.parse_id(org_id, "organization")
        query = self.parse_query(StatusEventsQuery)
        header = self.request.headers.get(LAST_EVENT_ID)
        last: int | None = self._start_after() if header is not None or query.last_event_id is not None else None
        deadline = time.monotonic() + query.max_seconds
        executions = self.services.executions
        with self.services.live.subscribe_all() as woken:
            events, last = await executions.status_events(self.identity, target, last)  # authorizes first
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Accel-Buffering", "no")
            self.write(": ready\n\n")  # the stream is open: whatever happens from now on is sent
            await self._flush()
            sent: dict[int, float] = {}  # id -> when it was sent: the recent ones the re-read must skip
            with contextlib.suppress(StreamClosedError):
                while True:
                    events = [event for event in events if event.id not in sent]
                    await self._send_status(events)
                    _remember(sent, events)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if not events:
                        await self._wait_at_most(woken, left)
                    woken.clear()
                    events, last = await executions.status_events(
                        self.identity, target, last, lookback_s=LATE_COMMIT_SECONDS, sent=sent.keys()
                    )
        self.finish(set_content_type=EVENT_STREAM)

    async def _wait_at_most(self, woken: asyncio.Event, seconds: float) -> None:
        try:
            await asyncio.wait_for(woken.wait(), min(seconds, KEEPALIVE_SECONDS))
        except TimeoutError:
            self.write(": keep-alive\n\n")
            await self._flush()

    async def _send_status(self, events: Sequence[StatusEventOut]) -> None:
        for event in events:
            data = json.dumps(event.model_dump(mode="json"), separators=(",", ":"))
            self.write(f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n")
        if events:
            await self._flush()


def _remember(sent: dict[int, float], events: Sequence[StatusEventOut]) -> None:
    """Add the events just sent; forget those sent before the late re-read's window (inserted earlier still)."""
    now = time.monotonic()
    sent.update((event.id, now) for event in events)
    while sent:  # oldest first (insertion order): stop at the first one still in the window
        oldest, at = next(iter(sent.items()))
        if now - at <= SENT_MEMORY_SECONDS:
            break
        del sent[oldest]
