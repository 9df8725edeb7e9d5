"""A worker writes the events of all its runs (of every organization) in one batch: an event the database
refuses loses only itself, and a lone UTF-16 surrogate a run produced (jsonb refuses it) is written as U+FFFD."""

from __future__ import annotations

import json
import uuid
from typing import Any

from orchestrator_ext.engine.events import EventWriter
from tests.conftest import Api, TestDatabase
from tests.engine.conftest import notebook, who
from tests.engine.test_queue_order import enqueue, opened_queue


async def test_one_refused_event_does_not_drop_the_other_runs_events(
    api: Api, database: TestDatabase, notebook_workflow: Any, admin_sql: Any
) -> None:
    alice, bob = who("a"), who("b")
    runs: list[dict[str, Any]] = []
    for user in (alice, bob):
        workflow = await notebook_workflow(user, notebook("1"))
        (run,) = await enqueue(api, user, workflow["id"], 1)
        org = admin_sql("SELECT org_id FROM workflow_executions WHERE id = %s", (run,))[0][0]
        runs.append({"execution_id": str(run), "org_id": str(org), "attempt": 1})
    gone = {"execution_id": str(uuid.uuid4()), "org_id": runs[0]["org_id"], "attempt": 1}  # no such run
    async with opened_queue(database) as queue:
        writer = EventWriter(queue, interval=0)
        writer.add({**runs[0], "kind": "log", "data": {"text": "alice's line"}})
        writer.add({**gone, "kind": "log", "data": {"text": "refused"}})
        writer.add({**runs[1], "kind": "log", "data": {"text": "bob's \ud800 line"}})
        await writer.flush()
    texts = {
        str(row[0]): row[1]
        for row in admin_sql(
            "SELECT execution_id, data FROM execution_events WHERE execution_id = ANY(%s::uuid[]) AND kind = 'log'",
            ([runs[0]["execution_id"], runs[1]["execution_id"]],),
        )
    }
    assert texts[runs[0]["execution_id"]]["text"] == "alice's line"
    assert texts[runs[1]["execution_id"]]["text"] == "bob's \ufffd line"
    assert json.dumps(texts)  # what was stored reads back as JSON
