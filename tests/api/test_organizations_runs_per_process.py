"""``runs_per_process`` of an organization: owners and admins set it, bad values are a 422 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_organizations import Factory, Sql, org_with, someone
from tests.conftest import Api


async def test_defaults_to_one_and_owner_sets_it(api: Api, create_org: Factory, admin_sql: Sql) -> None:
    user = someone()
    org = await create_org(user=user)
    assert org["runs_per_process"] == 1  # a fresh process for every run, as before the setting existed
    reply = await api("PATCH", "organizations", org["id"], user=user, body={"runs_per_process": 50})
    assert reply.status == 200, reply.text
    assert reply.json["runs_per_process"] == 50
    assert (await api("GET", "organizations", org["id"], user=user)).json["runs_per_process"] == 50
    assert admin_sql("SELECT runs_per_process FROM organizations WHERE id = %s", (org["id"],)) == [(50,)]
    actions = admin_sql("SELECT details FROM audit_events WHERE org_id = %s ORDER BY created_at", (org["id"],))
    assert actions[-1][0]["fields"] == ["runs_per_process"]
    back = await api("PATCH", "organizations", org["id"], user=user, body={"runs_per_process": 1.0})
    assert back.status == 200, back.text  # JSON's 1.0 is the integer 1
    assert back.json["runs_per_process"] == 1


@pytest.mark.parametrize("value", [0, -3, 1001, 2.5, "5", True, None, [2], {"n": 2}])
async def test_bad_values_are_a_422_naming_the_field(api: Api, create_org: Factory, value: Any) -> None:
    user = someone()
    org = await create_org(user=user)
    reply = await api("PATCH", "organizations", org["id"], user=user, body={"runs_per_process": value})
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == ["runs_per_process"]
    assert (await api("GET", "organizations", org["id"], user=user)).json["runs_per_process"] == 1


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("admin", 200), ("developer", 403), ("viewer", 403)])
async def test_only_owners_and_admins_change_it(
    api: Api, create_org: Factory, add_member: Factory, role: str, status: int
) -> None:
    actor = someone(role)
    org_id, founder = await org_with(create_org, add_member, **{actor: role})
    reply = await api("PATCH", "organizations", org_id, user=actor, body={"runs_per_process": 10})
    assert reply.status == status, reply.text
    expected = 10 if status == 200 else 1
    assert (await api("GET", "organizations", org_id, user=founder)).json["runs_per_process"] == expected


async def test_another_organization_is_404(api: Api, create_org: Factory) -> None:
    owner, stranger = someone(), someone()
    org = await create_org(user=owner)
    reply = await api("PATCH", "organizations", org["id"], user=stranger, body={"runs_per_process": 10})
    assert reply.status == 404, reply.text
    assert (await api("GET", "organizations", org["id"], user=owner)).json["runs_per_process"] == 1


async def test_the_document_states_what_isolation_is_lost(api: Api) -> None:
    document = (await api("GET", "openapi.json")).json
    schemas = document["components"]["schemas"]
    update = next(
        s for name, s in schemas.items() if "runs_per_process" in s.get("properties", {}) and "Update" in name
    )
    field = update["properties"]["runs_per_process"]
    assert (field["type"], field["minimum"], field["maximum"]) == ("integer", 1, 1000)
    for said in ("module globals", "monkeypatches", "threads", "/tmp", "never serves two organizations"):
        assert said in field["description"]
