"""The fast read path writes exactly what the pydantic response models describe."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from orchestrator_ext.schemas.agents import DescribeAgent, ListAgentsResponse
from orchestrator_ext.schemas.executions import ListExecutionsResponse
from tests.conftest import Api


def _as_model_writes(model: type[BaseModel], payload: Any) -> Any:
    return json.loads(model.model_validate(payload).model_dump_json())


async def test_agent_pages_match_the_model(api: Api, create_agent: Any) -> None:
    for i in range(3):
        await create_agent(user="fast", name=f"f-{i}", tags=["x", str(i)], description="d\u00e9j\u00e0 \u2713")
    page = await api("GET", "agents", user="fast", params={"limit": 2})
    assert page.status == 200
    assert page.json == _as_model_writes(ListAgentsResponse, page.json)
    assert set(page.json["items"][0]) == set(DescribeAgent.model_fields)
    assert page.json["items"][0]["created_at"].endswith("+00:00")


async def test_execution_pages_match_the_model(api: Api, create_agent: Any, create_workflow: Any) -> None:
    agent = await create_agent(user="fast2")
    workflow = await create_workflow("fast2", agent["id"])
    for i in range(3):
        run = await api("POST", "workflows", workflow["id"], "execute", user="fast2", body={"inputs": {"i": i}})
        assert run.status == 202, run.text
    page = await api("GET", "executions", user="fast2", params={"limit": 2, "status": "queued"})
    assert page.status == 200
    assert len(page.json["items"]) == 2
    assert page.json == _as_model_writes(ListExecutionsResponse, page.json)
    single = await api("GET", "executions", page.json["items"][0]["id"], user="fast2")
    assert single.json == page.json["items"][0]


async def test_pages_match_for_awkward_values(api: Api, create_agent: Any, admin_sql: Any) -> None:
    odd = await create_agent(user="odd", name='quote " back\\slash \u00e9\u2603', description="line\nbreak\ttab \u0001")
    admin_sql("UPDATE agents SET created_at = date_trunc('second', created_at) WHERE id = %s", (odd["id"],))
    page = await api("GET", "agents", user="odd")
    assert page.json == _as_model_writes(ListAgentsResponse, page.json)
    listed = page.json["items"][0]
    single = await api("GET", "agents", odd["id"], user="odd")
    assert listed == single.json
    assert "." not in listed["created_at"]  # whole seconds: no fraction, as pydantic writes them
