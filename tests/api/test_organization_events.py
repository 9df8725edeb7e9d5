"""``GET /organizations/{org_id}/events``: every status change of an organization's runs, as they
happen (what the dashboard's live list follows), resumable after an event id, invisible to outsiders."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import Api
from tests.engine.test_notebook_runs import sse_events

Make = Callable[..., Awaitable[dict[str, Any]]]


async def test_an_organizations_runs_stream_their_status_changes(
    api: Api, create_agent: Make, create_workflow: Make
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    agent = await create_agent(user)
    workflow = await create_workflow(user, agent["id"])
    org = agent["org_id"]
    # from now on: the stream opens before the run starts and sees its creation, then ends on time
    live = asyncio.ensure_future(api("GET", "organizations", org, "events", user=user, params={"max_seconds": 3}))
    await asyncio.sleep(0.5)
    started = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
    assert started.status == 202, started.text
    cancelled = await api("POST", "executions", started.json["id"], "cancel", user=user)
    assert cancelled.status in (200, 202), cancelled.text
    streamed = await asyncio.wait_for(live, 30)
    assert streamed.status == 200
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert {e["event"] for e in events} == {"status"}
    assert [e["data"]["execution_id"] for e in events] == [started.json["id"]] * len(events)
    assert [e["data"]["data"]["status"] for e in events][:1] == ["queued"]
    assert events[-1]["data"]["data"]["status"] == "cancelled"

    # resumed after the first event: exactly the rest, and at once (max_seconds=0 sends what there is)
    after = events[0]["id"]
    resumed = await api(
        "GET",
        "organizations",
        org,
        "events",
        user=user,
        params={"max_seconds": 0},
        headers={"Last-Event-ID": str(after)},
    )
    assert [e["id"] for e in sse_events(resumed.text)] == [e["id"] for e in events[1:]]

    # another organization's member: no such organization
    outsider = await api(
        "GET", "organizations", org, "events", user=f"u-{uuid.uuid4().hex[:8]}", params={"max_seconds": 0}
    )
    assert outsider.status == 404
    bad = await api("GET", "organizations", org, "events", user=user, params={"max_seconds": -1})
    assert bad.status == 422
    assert "max_seconds" in bad.text
