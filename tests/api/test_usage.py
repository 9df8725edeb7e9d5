"""``GET /organizations/{id}/usage``: the month's runs, tokens and GPU-seconds and the runs going now,
against the tier; owners and admins read it, developers and viewers get 403, other tenants 404, a
platform admin reads any organization's; a bad month is a 422 naming ``month``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg.types.json import Jsonb

from orchestrator_ext.services.usage import month_bounds
from tests.conftest import Api

OPERATOR = "usage-operator"
Factory = Callable[..., Awaitable[dict[str, Any]]]
Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def orchestrator_config() -> dict[str, Any]:
    return {"platform_admins": [OPERATOR]}


def someone(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def runs_of(api: Api, owner: str, org_id: str, create_workflow: Factory, count: int) -> list[str]:
    agent = await api(
        "POST", "agents", user=owner, body={"org_id": org_id, "name": someone(), "framework": "langgraph"}
    )
    assert agent.status == 201, agent.text
    workflow = await create_workflow(owner, agent.json["id"])
    ids = []
    for _ in range(count):
        run = await api("POST", "workflows", workflow["id"], "execute", user=owner, body={"inputs": {}})
        assert run.status == 202, run.text
        ids.append(run.json["id"])
    return ids


def finish(admin_sql: Sql, run_id: str, *, seconds: float, usage: Any, created: datetime | None = None) -> None:
    """What a worker leaves: a finished run of ``seconds`` that recorded ``usage`` in its outputs."""
    admin_sql(
        "UPDATE workflow_executions SET status = 'succeeded', outputs = %(outputs)s,"
        " started_at = coalesce(%(created)s, created_at), finished_at = coalesce(%(created)s, created_at)"
        " + make_interval(secs => %(seconds)s), created_at = coalesce(%(created)s, created_at) WHERE id = %(id)s",
        {"outputs": Jsonb({"output": 1, "usage": usage}), "seconds": seconds, "id": run_id, "created": created},
    )


def test_month_bounds() -> None:
    now = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)
    assert month_bounds(None, now) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert month_bounds("2026-02", now) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


async def test_owner_reads_runs_tokens_and_gpu_seconds_of_the_month(
    api: Api, create_org: Factory, create_workflow: Factory, admin_sql: Sql
) -> None:
    owner = someone("owner")
    org = await create_org(user=owner)
    empty = await api("GET", "organizations", org["id"], "usage", user=owner)
    assert empty.status == 200, empty.text
    assert empty.json["tier"] == "free"
    assert empty.json["runs"] == {"used": 0, "limit": 1000, "enforced": False}
    assert empty.json["tokens"] == {"used": 0, "limit": 1_000_000, "enforced": False}
    assert empty.json["gpu_seconds"] == {"used": 0, "limit": 0, "enforced": False}
    assert empty.json["concurrency"]["enforced"] is True
    assert empty.json["month"] == f"{datetime.now(UTC):%Y-%m}"

    first, second, garbage, old, running = await runs_of(api, owner, org["id"], create_workflow, 5)
    finish(admin_sql, first, seconds=30, usage={"prompt_tokens": 120, "completion_tokens": 30, "model_calls": 2})
    finish(admin_sql, second, seconds=70, usage={"prompt_tokens": 1000, "completion_tokens": 500})
    finish(admin_sql, garbage, seconds=1, usage={"prompt_tokens": "many", "completion_tokens": [1]})
    finish(
        admin_sql,
        old,
        seconds=5,
        usage={"prompt_tokens": 7, "completion_tokens": 3},
        created=datetime(2025, 3, 9, tzinfo=UTC),
    )
    admin_sql(
        "UPDATE workflow_executions SET status = 'running', started_at = clock_timestamp() WHERE id = %s", (running,)
    )

    usage = (await api("GET", "organizations", org["id"], "usage", user=owner)).json
    assert usage["runs"]["used"] == 4  # the one of March 2025 is not this month's
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["tokens"]["used"]) == (1120, 530, 1650)
    assert usage["concurrency"]["used"] == 1
    assert usage["gpu_seconds"]["used"] == 0  # no GPUs on the free tier

    march = (await api("GET", "organizations", org["id"], "usage", user=owner, params={"month": "2025-03"})).json
    assert (march["runs"]["used"], march["tokens"]["used"], march["month"]) == (1, 10, "2025-03")
    assert march["starts_at"].startswith("2025-03-01T00:00:00")

    admin_sql("UPDATE organizations SET tier_name = 'gpu-small' WHERE id = %s", (org["id"],))
    gpu = (await api("GET", "organizations", org["id"], "usage", user=owner)).json
    assert gpu["gpu_seconds"]["limit"] == 36_000
    assert gpu["gpu_seconds_measured"] == "wall_clock"
    assert 101 <= gpu["gpu_seconds"]["used"] <= 101 + 60  # 30 + 70 + 1 s, and the running one so far


async def test_who_may_read_it(api: Api, create_org: Factory, add_member: Factory) -> None:
    owner = someone("owner")
    org = await create_org(user=owner)
    for role, status in (("admin", 200), ("developer", 403), ("viewer", 403)):
        member = someone(role)
        await add_member(owner, org["id"], member, role)
        reply = await api("GET", "organizations", org["id"], "usage", user=member)
        assert reply.status == status, (role, reply.text)
        if status == 403:
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            assert "usage:read" in reply.json["detail"] or "permission" in reply.json["detail"].lower()
    outsider = someone("eve")
    assert (await api("GET", "organizations", org["id"], "usage", user=outsider)).status == 404
    operator = await api("GET", "organizations", org["id"], "usage", user=OPERATOR)
    assert operator.status == 200, operator.text
    assert operator.json["org_id"] == org["id"]
    nowhere = await api("GET", "organizations", str(uuid.uuid4()), "usage", user=OPERATOR)
    assert nowhere.status == 404


@pytest.mark.parametrize("month", ["2026-13", "26-01", "2026-1", "1969-12", "3000-01", "now", ""])
async def test_a_bad_month_is_a_problem_naming_it(api: Api, create_org: Factory, month: str) -> None:
    owner = someone("owner")
    org = await create_org(user=owner)
    reply = await api("GET", "organizations", org["id"], "usage", user=owner, params={"month": month})
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == ["month"]
