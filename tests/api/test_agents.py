"""``/agents``: create, list with filters and pages, read, update, soft delete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


async def test_create_defaults_to_personal_org(api: Api) -> None:
    reply = await api("POST", "agents", body={"name": "Support bot", "framework": "crewai", "tags": ["a"]})
    assert reply.status == 201, reply.text
    agent = reply.json
    assert agent["framework"] == "crewai"
    assert agent["name"] == "Support bot"
    assert reply.headers["Location"].endswith(f"/orchestrator/api/v1/agents/{agent['id']}")
    me = await api("GET", "agents", agent["id"])
    assert me.status == 200
    assert me.json == agent


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "framework": "tensorflow"}, "framework"),
        ({"framework": "agno"}, "name"),
        ({"name": "  ", "framework": "agno"}, "name"),
        ({"name": "x", "framework": "agno", "colour": "red"}, "colour"),
        ({"name": "x", "framework": "agno", "org_id": "nope"}, "org_id"),
        ({"name": 5, "framework": "agno"}, "name"),
    ],
)
async def test_create_rejects_bad_fields(api: Api, body: dict[str, Any], field: str) -> None:
    reply = await api("POST", "agents", body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert field in [e["field"] for e in reply.json["errors"]]


async def test_malformed_and_wrong_bodies(api: Api) -> None:
    bad_json = await api("POST", "agents", raw_body="{not json")
    assert bad_json.status == 400
    assert "JSON" in bad_json.json["detail"]
    not_object = await api("POST", "agents", raw_body="[1, 2]")
    assert not_object.status == 422
    wrong_type = await api("POST", "agents", raw_body="a=b", headers={"Content-Type": "text/plain"})
    assert wrong_type.status == 415


async def test_oversize_body_is_413(api: Api) -> None:
    reply = await api("POST", "agents", body={"name": "x", "framework": "agno", "description": "x" * (6 * 1024 * 1024)})
    assert reply.status == 413


async def test_duplicate_name_conflicts(api: Api, create_agent: Any) -> None:
    await create_agent(name="Twin")
    reply = await api("POST", "agents", body={"name": "twin", "framework": "agno"})
    assert reply.status == 409
    assert reply.json["errors"][0]["field"] == "name"


async def test_list_filters_and_pages(api: Api, create_agent: Any) -> None:
    made = [await create_agent(user="pager", name=f"p-{i}", framework="agno" if i % 2 else "crewai") for i in range(5)]
    first = await api("GET", "agents", user="pager", params={"limit": 2})
    assert first.status == 200
    assert [a["id"] for a in first.json["items"]] == [made[4]["id"], made[3]["id"]]
    second = await api("GET", "agents", user="pager", params={"limit": 2, "cursor": first.json["next_cursor"]})
    third = await api("GET", "agents", user="pager", params={"limit": 2, "cursor": second.json["next_cursor"]})
    seen = [a["id"] for page in (first, second, third) for a in page.json["items"]]
    assert seen == [a["id"] for a in reversed(made)]
    assert third.json["next_cursor"] is None
    agno = await api("GET", "agents", user="pager", params={"framework": "agno"})
    assert {a["name"] for a in agno.json["items"]} == {"p-1", "p-3"}
    search = await api("GET", "agents", user="pager", params={"q": "P-4"})
    assert [a["name"] for a in search.json["items"]] == ["p-4"]
    wildcard = await api("GET", "agents", user="pager", params={"q": "%"})
    assert wildcard.json["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"framework": "tensorflow"}, "framework"),
        ({"org_id": "not-a-uuid"}, "org_id"),
    ],
)
async def test_list_rejects_bad_query(api: Api, params: dict[str, Any], field: str) -> None:
    reply = await api("GET", "agents", params=params)
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_update_and_soft_delete(api: Api, create_agent: Any) -> None:
    agent = await create_agent(user="ed", name="Before")
    updated = await api("PUT", "agents", agent["id"], user="ed", body={"name": "After", "description": "d"})
    assert updated.status == 200
    assert updated.json["name"] == "After"
    assert updated.json["framework"] == agent["framework"]
    # the read (one statement on the fast path) answers what the update (the ORM) answered, to the byte
    reread = await api("GET", "agents", agent["id"], user="ed")
    assert reread.text == updated.text
    refused = await api("PUT", "agents", agent["id"], user="ed", body={"framework": "agno"})
    assert refused.status == 422
    deleted = await api("DELETE", "agents", agent["id"], user="ed")
    assert deleted.status == 204
    assert (await api("GET", "agents", agent["id"], user="ed")).status == 404
    listed = await api("GET", "agents", user="ed")
    assert agent["id"] not in [a["id"] for a in listed.json["items"]]
    # the name is free again once the agent is archived
    assert (await api("POST", "agents", user="ed", body={"name": "After", "framework": "agno"})).status == 201


async def test_other_tenant_sees_404(api: Api, create_agent: Any) -> None:
    agent = await create_agent(user="owner1")
    for method, body in (("GET", None), ("PUT", {"name": "stolen"}), ("DELETE", None)):
        reply = await api(method, "agents", agent["id"], user="intruder", body=body)
        assert reply.status == 404, (method, reply.text)
    listed = await api("GET", "agents", user="intruder")
    assert listed.json["items"] == []


async def test_bad_ids_and_anonymous(api: Api) -> None:
    assert (await api("GET", "agents", "12345")).status == 404
    anonymous = await api("GET", "agents", user=None)
    assert anonymous.status == 403
    assert anonymous.headers["Content-Type"].startswith("application/problem+json")


async def test_correlation_id_round_trip(api: Api) -> None:
    given = await api("GET", "agents", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    generated = await api("GET", "agents", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["X-Request-Id"] != "bad id with spaces"
    error = await api("GET", "agents", "nope", headers={"X-Request-ID": "err-1"})
    assert error.json["correlation_id"] == "err-1"


async def test_hostile_bodies_are_4xx(api: Api) -> None:
    deep = await api("POST", "agents", raw_body="[" * 100_000 + "]" * 100_000)
    assert deep.status == 400
    nan = await api("POST", "agents", raw_body='{"name": "x", "framework": "agno", "tags": [NaN]}')
    assert nan.status == 400
    nul = await api("POST", "agents", body={"name": "bad\u0000name", "framework": "agno"})
    assert nul.status == 422
    assert nul.json["errors"][0]["field"] == "name"
    nul_key = await api("POST", "agents", body={"name": "x", "framework": "agno", "tags": ["ok", "b\u0000d"]})
    assert nul_key.json["errors"][0]["field"] == "tags.1"
    nul_query = await api("GET", "agents", params={"q": "a\u0000b"})
    assert nul_query.status == 422


async def test_tier_agent_limit(api: Api, create_org: Any, admin_sql: Any) -> None:
    org = await create_org(user="lim")
    admin_sql("UPDATE organizations SET max_agents = 2 WHERE id = %s", (org["id"],))
    made = [
        await api("POST", "agents", user="lim", body={"org_id": org["id"], "name": f"a{i}", "framework": "agno"})
        for i in range(2)
    ]
    assert [m.status for m in made] == [201, 201]
    refused = await api("POST", "agents", user="lim", body={"org_id": org["id"], "name": "a2", "framework": "agno"})
    assert refused.status == 409
    assert "limit of 2 agents" in refused.json["detail"]
    assert (await api("DELETE", "agents", made[0].json["id"], user="lim")).status == 204
    again = await api("POST", "agents", user="lim", body={"org_id": org["id"], "name": "a2", "framework": "agno"})
    assert again.status == 201
    assert admin_sql("SELECT live_agents FROM organizations WHERE id = %s", (org["id"],)) == [(2,)]


@pytest.mark.parametrize(
    "payload",
    [
        '{"c": "2026-01-01T00:00:00+00:00", "i": 123}',
        '{"c": "2026-01-01T00:00:00+00:00", "i": [1]}',
        '{"c": "0001-01-01T00:00:00+23:59", "i": "00000000-0000-0000-0000-000000000000"}',
        '{"c": "2026-01-01T00:00:00", "i": "00000000-0000-0000-0000-000000000000"}',
        '["not", "an", "object"]',
    ],
)
async def test_crafted_cursors_are_422(api: Api, payload: str) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    for path in ("agents", "executions", "organizations"):
        reply = await api("GET", path, params={"cursor": cursor})
        assert reply.status == 422, (path, reply.text)
    # the read path still answers afterwards (a failed read must not use up its connections)
    assert (await api("GET", "agents")).status == 200


async def test_numbers_too_large_to_store_are_422(api: Api) -> None:
    reply = await api(
        "POST",
        "integrations",
        raw_body='{"kind": "tool", "name": "big", "config": {"x": 1e400}}',
    )
    assert reply.status == 422, reply.text
    assert reply.json["errors"][0]["field"] == "config.x"


async def test_concurrent_creates_never_pass_the_limit(api: Api, create_org: Any, admin_sql: Any) -> None:
    import asyncio

    org = await create_org(user="race")
    admin_sql("UPDATE organizations SET max_agents = 3 WHERE id = %s", (org["id"],))
    replies = await asyncio.gather(
        *(
            api("POST", "agents", user="race", body={"org_id": org["id"], "name": f"r{i}", "framework": "agno"})
            for i in range(8)
        )
    )
    assert sorted(r.status for r in replies) == [201] * 3 + [409] * 5
    assert admin_sql("SELECT live_agents FROM organizations WHERE id = %s", (org["id"],)) == [(3,)]
