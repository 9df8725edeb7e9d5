"""``/workflows/{id}/schedules`` and ``/schedules/{id}``: cron schedules through the REST API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrator_ext.engine.scheduler import Scheduler
from tests.conftest import NOTEBOOK_SPEC, Api, TestDatabase


def who(prefix: str = "u") -> str:
    """A user of one test only (the module shares its database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def graph_workflow(create_agent: Any, create_workflow: Any, user: str, **agent: Any) -> dict[str, Any]:
    made = await create_agent(user=user, **agent)
    return await create_workflow(user, made["id"])  # type: ignore[no-any-return]


async def notebook_workflow(create_agent: Any, create_workflow: Any, user: str) -> dict[str, Any]:
    made = await create_agent(user=user, framework="notebook")
    return await create_workflow(user, made["id"], spec=NOTEBOOK_SPEC)  # type: ignore[no-any-return]


async def make_schedule(api: Api, workflow: dict[str, Any], user: str, **fields: Any) -> dict[str, Any]:
    body = {"cron": "*/5 * * * *", **fields}
    reply = await api("POST", "workflows", workflow["id"], "schedules", user=user, body=body)
    assert reply.status == 201, reply.text
    return reply.json  # type: ignore[no-any-return]


async def test_create_and_read(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    before = datetime.now(UTC)
    reply = await api(
        "POST",
        "workflows",
        workflow["id"],
        "schedules",
        user=user,
        body={"name": " nightly ", "cron": " 0  3 * * * ", "inputs": {"q": "hi"}},
    )
    assert reply.status == 201, reply.text
    made = reply.json
    assert reply.headers["Location"].endswith(f"/orchestrator/api/v1/schedules/{made['id']}")
    assert (made["name"], made["cron"], made["timezone"], made["inputs"]) == (
        "nightly",
        "0 3 * * *",
        "UTC",
        {"q": "hi"},
    )
    assert (made["version"], made["enabled"], made["overlap_policy"], made["misfire_policy"]) == (
        None,
        True,
        "skip",
        "run_once",
    )
    assert (made["workflow_id"], made["org_id"]) == (workflow["id"], workflow["org_id"])
    assert made["last_fired_at"] is None
    assert made["last_runs"] == []
    next_run = instant(made["next_run_at"])
    assert before < next_run <= before + timedelta(days=1)
    assert (next_run.hour, next_run.minute, next_run.second) == (3, 0, 0)

    got = await api("GET", "schedules", made["id"], user=user)
    assert got.status == 200
    assert got.json == made


async def test_list_newest_first_in_pages(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    made = await make_schedule(api, workflow, user, name="first")
    other = await make_schedule(api, workflow, user, name="second")
    listed = await api("GET", "workflows", workflow["id"], "schedules", user=user)
    assert listed.status == 200
    assert [s["id"] for s in listed.json["items"]] == [other["id"], made["id"]]
    assert listed.json["next_cursor"] is None
    first = await api("GET", "workflows", workflow["id"], "schedules", user=user, params={"limit": 1})
    assert [s["id"] for s in first.json["items"]] == [other["id"]]
    rest = await api(
        "GET", "workflows", workflow["id"], "schedules", user=user, params={"cursor": first.json["next_cursor"]}
    )
    assert [s["id"] for s in rest.json["items"]] == [made["id"]]
    assert rest.json["next_cursor"] is None
    bad = await api("GET", "workflows", workflow["id"], "schedules", user=user, params={"cursor": "###"})
    assert [e["field"] for e in bad.json["errors"]] == ["cursor"]


async def test_update_and_delete(api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    made = await make_schedule(api, workflow, user, cron="0 3 * * *", inputs={"q": "hi"})
    patched = await api(
        "PATCH",
        "schedules",
        made["id"],
        user=user,
        body={"cron": "30 4 * * *", "overlap_policy": "queue", "version": 1, "name": "early"},
    )
    assert patched.status == 200, patched.text
    assert (patched.json["cron"], patched.json["overlap_policy"], patched.json["version"]) == ("30 4 * * *", "queue", 1)
    assert (instant(patched.json["next_run_at"]).hour, instant(patched.json["next_run_at"]).minute) == (4, 30)
    assert patched.json["name"] == "early"
    assert patched.json["inputs"] == {"q": "hi"}
    unpinned = await api("PATCH", "schedules", made["id"], user=user, body={"version": None})
    assert unpinned.status == 200, unpinned.text
    assert unpinned.json["version"] is None
    assert unpinned.json["next_run_at"] == patched.json["next_run_at"]

    assert (await api("DELETE", "schedules", made["id"], user=user)).status == 204
    assert (await api("GET", "schedules", made["id"], user=user)).status == 404
    assert (await api("DELETE", "schedules", made["id"], user=user)).status == 404
    actions = admin_sql("SELECT action FROM audit_events WHERE resource_id = %s ORDER BY created_at", (made["id"],))
    assert [a for (a,) in actions] == ["schedule.create", "schedule.update", "schedule.update", "schedule.delete"]


async def test_next_run_in_a_time_zone(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    before = datetime.now(UTC)
    made = await make_schedule(api, workflow, user, cron="0 9 * * *", timezone="Europe/Paris")
    after = datetime.now(UTC)
    paris = ZoneInfo("Europe/Paris")
    today = before.astimezone(paris).date()
    candidates = [
        datetime(day.year, day.month, day.day, 9, tzinfo=paris).astimezone(UTC)
        for day in (today, today + timedelta(days=1))
    ]
    # the first 09:00 in Paris after the request (the two differ only if 09:00 struck during it)
    possible = {min(c for c in candidates if c > before), min(c for c in candidates if c > after)}
    assert instant(made["next_run_at"]) in possible
    assert instant(made["next_run_at"]).hour in (7, 8)  # 09:00 in Paris is 08:00 UTC in winter, 07:00 in summer
    assert made["timezone"] == "Europe/Paris"


async def test_disabling_clears_next_run(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    made = await make_schedule(api, workflow, user)
    assert made["next_run_at"] is not None
    off = await api("PATCH", "schedules", made["id"], user=user, body={"enabled": False})
    assert off.status == 200, off.text
    assert (off.json["enabled"], off.json["next_run_at"]) == (False, None)
    renamed = await api("PATCH", "schedules", made["id"], user=user, body={"name": "still off"})
    assert renamed.json["next_run_at"] is None
    on = await api("PATCH", "schedules", made["id"], user=user, body={"enabled": True})
    assert on.json["enabled"] is True
    assert instant(on.json["next_run_at"]) > datetime.now(UTC)
    disabled = await make_schedule(api, workflow, user, enabled=False)
    assert disabled["next_run_at"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "cron"),
        ({"cron": "every day"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": ""}, "cron"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "0 9 * * *", "timezone": ""}, "timezone"),
        ({"cron": "0 9 * * *", "overlap_policy": "sometimes"}, "overlap_policy"),
        ({"cron": "0 9 * * *", "misfire_policy": "catch_up"}, "misfire_policy"),
        ({"cron": "0 9 * * *", "version": 7}, "version"),
        ({"cron": "0 9 * * *", "version": 0}, "version"),
        ({"cron": "0 9 * * *", "version": "1"}, "version"),
        ({"cron": "0 9 * * *", "inputs": [1]}, "inputs"),
        ({"cron": "0 9 * * *", "enabled": "yes"}, "enabled"),
        ({"cron": "0 9 * * *", "name": "x" * 201}, "name"),
        ({"cron": "0 9 * * *", "every": "day"}, "every"),
    ],
)
async def test_create_rejects_bad_bodies(
    api: Api, create_agent: Any, create_workflow: Any, body: dict[str, Any], field: str
) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    reply = await api("POST", "workflows", workflow["id"], "schedules", user=user, raw_body=json.dumps(body))
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "nope"}, "cron"),
        ({"cron": None}, "cron"),
        ({"timezone": "Nowhere/Town"}, "timezone"),
        ({"enabled": None}, "enabled"),
        ({"overlap_policy": "never"}, "overlap_policy"),
        ({"version": 3}, "version"),
        ({"inputs": None}, "inputs"),
    ],
)
async def test_update_rejects_bad_bodies(
    api: Api, create_agent: Any, create_workflow: Any, body: dict[str, Any], field: str
) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    made = await make_schedule(api, workflow, user)
    reply = await api("PATCH", "schedules", made["id"], user=user, raw_body=json.dumps(body))
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]
    assert (await api("GET", "schedules", made["id"], user=user)).json == made


async def test_notebook_inputs_must_fit_the_parameters(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await notebook_workflow(create_agent, create_workflow, user)
    good = await make_schedule(api, workflow, user, inputs={"x": 3, "name": "you"})
    assert good["inputs"] == {"x": 3, "name": "you"}
    unknown = await api(
        "POST", "workflows", workflow["id"], "schedules", user=user, body={"cron": "@daily", "inputs": {"zz": 1}}
    )
    assert unknown.status == 422, unknown.text
    assert [(e["field"], e["type"]) for e in unknown.json["errors"]] == [("inputs.zz", "unknown")]
    wrong = await api(
        "POST", "workflows", workflow["id"], "schedules", user=user, body={"cron": "@daily", "inputs": {"x": "three"}}
    )
    assert wrong.status == 422, wrong.text
    assert [(e["field"], e["type"]) for e in wrong.json["errors"]] == [("inputs.x", "type")]
    patched = await api("PATCH", "schedules", good["id"], user=user, body={"inputs": {"name": 5}})
    assert patched.status == 422, patched.text
    assert [e["field"] for e in patched.json["errors"]] == ["inputs.name"]


async def test_other_tenant_sees_404(api: Api, create_agent: Any, create_workflow: Any) -> None:
    owner, intruder = who("owner"), who("intruder")
    workflow = await graph_workflow(create_agent, create_workflow, owner)
    made = await make_schedule(api, workflow, owner)
    assert (await api("GET", "schedules", made["id"], user=intruder)).status == 404
    assert (await api("PATCH", "schedules", made["id"], user=intruder, body={"enabled": False})).status == 404
    assert (await api("DELETE", "schedules", made["id"], user=intruder)).status == 404
    assert (await api("GET", "workflows", workflow["id"], "schedules", user=intruder)).status == 404
    posted = await api("POST", "workflows", workflow["id"], "schedules", user=intruder, body={"cron": "@daily"})
    assert posted.status == 404
    assert (await api("GET", "schedules", "12345", user=owner)).status == 404
    assert (await api("GET", "schedules", str(uuid.uuid4()), user=owner)).status == 404
    assert (await api("GET", "schedules", made["id"], user=owner)).json == made


async def test_viewer_reads_but_cannot_manage(
    api: Api, create_org: Any, add_member: Any, create_agent: Any, create_workflow: Any
) -> None:
    owner, viewer = who("owner"), who("viewer")
    org = await create_org(user=owner)
    await add_member(owner, org["id"], viewer, "viewer")
    workflow = await graph_workflow(create_agent, create_workflow, owner, org_id=org["id"])
    made = await make_schedule(api, workflow, owner)
    assert (await api("GET", "schedules", made["id"], user=viewer)).status == 200
    listed = await api("GET", "workflows", workflow["id"], "schedules", user=viewer)
    assert [s["id"] for s in listed.json["items"]] == [made["id"]]
    refused = await api("POST", "workflows", workflow["id"], "schedules", user=viewer, body={"cron": "@daily"})
    assert refused.status == 403, refused.text
    assert (await api("PATCH", "schedules", made["id"], user=viewer, body={"enabled": False})).status == 403
    assert (await api("DELETE", "schedules", made["id"], user=viewer)).status == 403


async def test_schedules_of_a_deleted_agent_are_gone(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    made = await make_schedule(api, workflow, user)
    assert (await api("DELETE", "agents", workflow["agent_id"], user=user)).status == 204
    assert (await api("GET", "schedules", made["id"], user=user)).status == 404
    assert (await api("GET", "workflows", workflow["id"], "schedules", user=user)).status == 404
    late = await api("POST", "workflows", workflow["id"], "schedules", user=user, body={"cron": "@daily"})
    assert late.status == 404


async def test_last_runs_after_firing(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any, database: TestDatabase
) -> None:
    user = who()
    workflow = await graph_workflow(create_agent, create_workflow, user)
    made = await make_schedule(api, workflow, user, cron="* * * * *", inputs={"k": 1})
    due = datetime.now(UTC).replace(second=0, microsecond=0)  # a firing of "* * * * *", due now
    admin_sql("UPDATE schedules SET next_run_at = %s WHERE id = %s", (due, made["id"]))
    scheduler = Scheduler(database.app_url)
    try:
        assert await scheduler.tick() >= 1
    finally:
        await scheduler.close()
    got = await api("GET", "schedules", made["id"], user=user)
    assert got.status == 200
    [run] = got.json["last_runs"]
    assert run["status"] == "queued"
    assert instant(run["scheduled_for"]) == due
    assert instant(got.json["last_fired_at"]) == due
    assert instant(got.json["next_run_at"]) > datetime.now(UTC)
    execution = await api("GET", "executions", run["id"], user=user)
    assert execution.status == 200
    assert (execution.json["trigger"], execution.json["inputs"]) == ("schedule", {"k": 1})
    assert execution.json["correlation_id"] == f"schedule:{made['id']}"
    listed = await api("GET", "workflows", workflow["id"], "schedules", user=user)
    assert [r["id"] for r in listed.json["items"][0]["last_runs"]] == [run["id"]]
    # deleting the schedule keeps its runs
    assert (await api("DELETE", "schedules", made["id"], user=user)).status == 204
    assert (await api("GET", "executions", run["id"], user=user)).status == 200
