"""An organization's stream under a burst of status changes: it keeps up, and shows its own runs only.

The stream re-reads the last seconds' events (a transaction may commit after a
later id was sent). Read together with the ids after the last one sent, ordered
by id and capped at 500, a burst of more than 500 events in those seconds once
returned the same 500 sent rows at every wake: nothing after them was ever sent.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from tests.conftest import Api, TestDatabase
from tests.engine.test_notebook_runs import sse_events

Make = Callable[..., Awaitable[dict[str, Any]]]
BURST = 600  # more than one read's cap (500), inside the re-read's window (10 s)
INSERT = (
    "INSERT INTO execution_events (execution_id, org_id, attempt, kind, data)"
    " SELECT %s, %s, 1, 'status', jsonb_build_object('status', 'running', 'n', n)"
    " FROM generate_series(1, %s) AS n RETURNING id"
)


async def _queued_run(api: Api, create_agent: Make, create_workflow: Make, user: str) -> dict[str, Any]:
    agent = await create_agent(user)
    workflow = await create_workflow(user, agent["id"])
    started = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
    assert started.status == 202, started.text
    return started.json  # type: ignore[no-any-return]


async def test_a_burst_of_status_changes_does_not_stall_the_stream(
    api: Api, create_agent: Make, create_workflow: Make, database: TestDatabase
) -> None:
    user, outsider = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    ours = await _queued_run(api, create_agent, create_workflow, user)
    theirs = await _queued_run(api, create_agent, create_workflow, outsider)
    assert ours["org_id"] != theirs["org_id"]
    live = asyncio.ensure_future(
        api("GET", "organizations", ours["org_id"], "events", user=user, params={"max_seconds": 5})
    )
    await asyncio.sleep(0.5)  # the stream is open (it sends from the moment of the request)
    async with await psycopg.AsyncConnection.connect(database.admin_url, autocommit=True) as admin:
        burst = [row[0] for row in await (await admin.execute(INSERT, (ours["id"], ours["org_id"], BURST))).fetchall()]
        await asyncio.sleep(0.5)
        other = await (await admin.execute(INSERT, (theirs["id"], theirs["org_id"], 3))).fetchall()
        last = await (await admin.execute(INSERT, (ours["id"], ours["org_id"], 1))).fetchall()
    streamed = sse_events((await asyncio.wait_for(live, 30)).text)
    ids = [event["id"] for event in streamed]
    assert len(ids) == len(set(ids))  # each once
    assert set(burst) <= set(ids)
    assert last[0][0] in ids  # the one after the burst: the stream kept going
    assert not {row[0] for row in other} & set(ids)  # another organization's run: never in this stream
    assert {event["data"]["execution_id"] for event in streamed} == {ours["id"]}
