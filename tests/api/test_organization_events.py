"""``GET /organizations/{org_id}/events``: every status change of an organization's runs, as they
happen (what the dashboard's live list follows), resumable after an event id, invisible to outsiders."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from tests.conftest import Api, TestDatabase
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


async def test_an_event_committed_after_a_later_one_is_still_sent(
    api: Api, create_agent: Make, create_workflow: Make, database: TestDatabase
) -> None:
    """Ids are taken at insert, rows seen at commit: the stream must not skip the slower transaction."""
    user = f"u-{uuid.uuid4().hex[:8]}"
    agent = await create_agent(user)
    workflow = await create_workflow(user, agent["id"])
    org = agent["org_id"]
    first = (await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})).json
    live = asyncio.ensure_future(api("GET", "organizations", org, "events", user=user, params={"max_seconds": 4}))
    await asyncio.sleep(0.5)
    async with await psycopg.AsyncConnection.connect(database.admin_url) as late:
        # this transaction takes its id first and commits last
        await late.execute(
            "INSERT INTO execution_events (execution_id, org_id, attempt, kind, data)"
            ' VALUES (%s, %s, 1, \'status\', \'{"status": "running", "slow": true}\')',
            (first["id"], org),
        )
        second = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
        await asyncio.sleep(0.5)  # the stream has sent the second run's event, with a higher id
        await late.commit()
    streamed = sse_events((await asyncio.wait_for(live, 30)).text)
    seen = [(e["data"]["execution_id"], e["data"]["data"]["status"], e["data"]["data"].get("slow")) for e in streamed]
    queued, slow = seen.index((second.json["id"], "queued", None)), seen.index((first["id"], "running", True))
    assert queued < slow  # sent after the later id...
    assert streamed[slow]["id"] < streamed[queued]["id"]  # ...though its id is lower
    assert len({e["id"] for e in streamed}) == len(streamed)  # and each once
