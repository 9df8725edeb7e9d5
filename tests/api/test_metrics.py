"""``/orchestrator/metrics``: Prometheus text, authenticated by default."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from orchestrator_ext.db.models import ExecutionStatus
from tests.conftest import Api

AdminSql = Callable[..., list[tuple[Any, ...]]]


async def scrape(jp_fetch: Any, user: str | None = "alice") -> Any:
    auth = f"token user:{user}" if user else "none"
    return await jp_fetch("orchestrator", "metrics", headers={"Authorization": auth}, raise_error=False)


def add_executions(admin_sql: AdminSql, agent: dict[str, Any], statuses: list[str]) -> None:
    """Executions written straight to the database, as the workers would."""
    workflow_id, version_id = uuid.uuid4(), uuid.uuid4()
    org, agent_id = agent["org_id"], agent["id"]
    admin_sql(
        "INSERT INTO workflows (id, org_id, agent_id, name) VALUES (%s, %s, %s, 'wf')", (workflow_id, org, agent_id)
    )
    admin_sql(
        "INSERT INTO workflow_versions (id, org_id, workflow_id, version, spec) VALUES (%s, %s, %s, 1, '{}')",
        (version_id, org, workflow_id),
    )
    for status in statuses:
        admin_sql(
            "INSERT INTO workflow_executions (org_id, agent_id, workflow_id, workflow_version_id, version, status) "
            "VALUES (%s, %s, %s, %s, 1, %s)",
            (org, agent_id, workflow_id, version_id, status),
        )


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    raise AssertionError(f"no sample {name}{labels}")


async def test_anonymous_is_refused(jp_fetch: Any) -> None:
    reply = await scrape(jp_fetch, user=None)
    assert reply.code == 403
    assert reply.headers["Content-Type"].startswith("application/problem+json")


async def test_metrics_after_traffic(api: Api, jp_fetch: Any, create_agent: Any, admin_sql: AdminSql) -> None:
    alice = await create_agent(user="alice")
    bob = await create_agent(user="bob")
    add_executions(admin_sql, alice, ["queued", "queued", "succeeded"])
    add_executions(admin_sql, bob, ["queued", "failed"])
    assert (await api("GET", "agents")).status == 200
    assert (await api("GET", "agents", str(uuid.uuid4()))).status == 404

    reply = await scrape(jp_fetch)
    assert reply.code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    text = reply.body.decode()
    assert sample(text, "orchestrator_http_requests_total", route="/agents", method="GET", status="200") == 1
    assert sample(text, "orchestrator_http_requests_total", route="/agents", method="POST", status="201") == 2
    assert sample(text, "orchestrator_http_requests_total", route="/agents/{agent_id}", status="404") == 1
    assert (
        sample(text, "orchestrator_http_request_duration_seconds_bucket", route="/agents", method="POST", le="+Inf")
        == 2
    )
    assert sample(text, "orchestrator_http_request_duration_seconds_count", route="/agents", method="GET") == 1
    assert "orchestrator_http_requests_in_flight " in text
    assert sample(text, "orchestrator_db_pool_connections", state="size") == 4
    # every organization's executions, every status
    assert sample(text, "orchestrator_executions", status="queued") == 3
    assert sample(text, "orchestrator_executions", status="succeeded") == 1
    assert sample(text, "orchestrator_executions", status="failed") == 1
    for status in ExecutionStatus:
        sample(text, "orchestrator_executions", status=status.value)

    again = (await scrape(jp_fetch)).body.decode()
    assert sample(again, "orchestrator_http_requests_total", route="/orchestrator/metrics", status="200") >= 1


async def test_scrape_survives_an_unavailable_database(jp_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unavailable(*_: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("orchestrator_ext.handlers.metrics.refresh_executions", unavailable)
    reply = await scrape(jp_fetch)
    assert reply.code == 200
    assert "orchestrator_http_requests_in_flight" in reply.body.decode()
