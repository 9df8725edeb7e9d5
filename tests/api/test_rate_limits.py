"""Rate limits through the API: 429 problem+json with Retry-After, per user, per organization, per address."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NOTEBOOK_SPEC, Api

WRITES = 3


@pytest.fixture
def orchestrator_config() -> dict[str, Any]:
    return {"rate_limits": True, "user_writes_per_minute": WRITES, "auth_failures_per_minute": 4}


async def test_a_users_writes_beyond_the_rate_get_429_with_retry_after(api: Api) -> None:
    for n in range(WRITES):
        created = await api("POST", "agents", user="wanda", body={"name": f"a{n}", "framework": "langgraph"})
        assert created.status == 201, created.json
    refused = await api("POST", "agents", user="wanda", body={"name": "one too many", "framework": "langgraph"})
    assert refused.status == 429
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60 // WRITES
    assert refused.json["retry_after"] == retry_after
    assert "your changes" in refused.json["detail"]
    # reads are not writes, and another user has a bucket of their own
    assert (await api("GET", "agents", user="wanda")).status == 200
    other = await api("POST", "agents", user="xavier", body={"name": "mine", "framework": "langgraph"})
    assert other.status == 201
    # nothing of the refused request was stored
    names = [a["name"] for a in (await api("GET", "agents", user="wanda")).json["items"]]
    assert "one too many" not in names


async def test_guessing_tokens_from_one_address_is_throttled_but_users_are_not(api: Api) -> None:
    statuses = [(await api("GET", "users", "me", user=None, headers={"Authorization": "token nope"})).status]
    for _ in range(5):
        statuses.append((await api("GET", "users", "me", user=None, headers={"Authorization": "token nope"})).status)
    assert statuses[:4] == [403] * 4
    assert statuses[4:] == [429, 429]
    # a user with a good token from the same address is not locked out
    assert (await api("GET", "users", "me", user="yolanda")).status == 200


@pytest.mark.parametrize("orchestrator_config", [{"rate_limits": True}])  # users' own rates: the defaults
async def test_an_organizations_runs_follow_its_tier(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any, orchestrator_config: dict[str, Any]
) -> None:
    # the team tier allows 2 runs a minute in this test's database, whoever of the organization starts them
    admin_sql("UPDATE resource_tiers SET executes_per_minute = 2 WHERE name = 'team'")
    org = (await api("POST", "organizations", user="zoe", body={"name": "Runners"})).json
    admin_sql("UPDATE organizations SET tier_name = 'team' WHERE id = %s", (org["id"],))
    agent = await create_agent("zoe", name="nb", framework="notebook", org_id=org["id"])
    workflow = await create_workflow("zoe", agent["id"], spec=NOTEBOOK_SPEC)
    answers = [
        await api("POST", "workflows", workflow["id"], "execute", user="zoe", body={"inputs": {"x": n}})
        for n in range(3)
    ]
    assert [a.status for a in answers[:2]] == [202, 202], [a.json for a in answers]
    assert answers[2].status == 429
    assert "this organization's runs" in answers[2].json["detail"]
    assert int(answers[2].headers["Retry-After"]) >= 1
