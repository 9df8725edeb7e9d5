"""Platform admins (``/admin``) and organization membership from hub groups (``org:<slug>[:<role>]``).

Platform admins here are a name in ``OrchestratorApp.platform_admins`` (``operator``) and callers the
hub says are admins. Hub callers come through the real :class:`~orchestrator_ext.hub.identity.HubAccess`
with the model JupyterHub's server extension gives (``Authorization: token hub:<name>``, see
tests/identity.py); tests/hub/test_admins.py shows the same with a real hub.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from orchestrator_ext.hub.identity import HubAccess
from tests.conftest import Api, TestDatabase

OPERATOR = "operator"


@pytest.fixture
def orchestrator_config() -> dict[str, Any]:
    return {"platform_admins": [OPERATOR]}


@pytest.fixture
def hub_rules(jp_serverapp: Any) -> None:
    """The rules the API follows as a hub service (the app installs them when JupyterHub's extension is loaded)."""
    jp_serverapp.web_app.settings["orchestrator_hub"] = HubAccess()


def someone(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def slug() -> str:
    return f"team-{uuid.uuid4().hex[:8]}"


Hub = Callable[..., Any]


@pytest.fixture
def hub_call(api: Api, hub_rules: None) -> Hub:
    """``await hub_call("GET", "users", "me", name="ada", groups=["org:x"], admin=False)``"""

    async def call(method: str, *path: str, name: str, groups: list[str] = (), admin: bool = False, **kw: Any) -> Any:  # type: ignore[assignment]
        headers = {
            "Authorization": f"token hub:{name}",
            "X-Test-Hub-Groups": ",".join(groups),
            "X-Test-Hub-Admin": "true" if admin else "false",
        }
        return await api(method, *path, headers=headers, **kw)

    return call


def memberships(me: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["role"], m["source"]) for m in me["memberships"] if not m["personal"]}


# ---- who is a platform admin ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", ("admin", "organizations"), None),
        ("PATCH", ("admin", "organizations", str(uuid.uuid4())), {"tier": "gpu-large"}),
        ("POST", ("admin", "organizations", str(uuid.uuid4()), "members"), {"username": "x", "role": "owner"}),
    ],
)
async def test_everyone_else_is_refused(
    api: Api, create_org: Any, method: str, path: tuple[str, ...], body: Any
) -> None:
    owner = someone("owner")
    await create_org(user=owner)  # an owner of an organization is still no platform admin
    reply = await api(method, *path, user=owner, body=body)
    assert reply.status == 403, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert "Only platform admins may use /admin" in reply.json["detail"]
    assert (await api("GET", "users", "me", user=owner)).json["platform_admin"] is False


async def test_hub_admins_are_platform_admins_at_once(hub_call: Hub) -> None:
    name = someone("hubadmin")
    me = await hub_call("GET", "users", "me", name=name, admin=True)
    assert me.json["platform_admin"] is True
    assert (await hub_call("GET", "admin", "organizations", name=name, admin=True)).status == 200
    # the hub took the admin flag away: the next request is refused
    refused = await hub_call("GET", "admin", "organizations", name=name, admin=False)
    assert refused.status == 403, refused.text
    assert (await hub_call("GET", "users", "me", name=name)).json["platform_admin"] is False


# ---- organizations --------------------------------------------------------------------------


async def test_lists_every_organization_with_counts(api: Api, create_org: Any, add_member: Any) -> None:
    owner, guest = someone("owner"), someone("guest")
    org = await create_org(user=owner, name="Listed")
    await add_member(owner, org["id"], guest, "viewer")
    seen: dict[str, Any] = {}
    cursor = None
    while True:
        params = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        page = await api("GET", "admin", "organizations", user=OPERATOR, params=params)
        assert page.status == 200, page.text
        seen.update({o["id"]: o for o in page.json["items"]})
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    listed = seen[org["id"]]
    assert (listed["name"], listed["personal"], listed["members"], listed["live_agents"]) == ("Listed", False, 2, 0)
    assert listed["tier"]["name"] == "free"
    assert listed["limits"]["max_agents"] == 50
    assert listed["overrides"] == {"max_concurrent_executions": None, "max_agents": None}
    # the operator sees other people's personal organizations too, and can filter them out
    assert any(o["personal"] and o["name"] == f"{owner} (personal)" for o in seen.values())
    shared = await api("GET", "admin", "organizations", user=OPERATOR, params={"personal": "false", "limit": "200"})
    assert shared.json["items"]
    assert not any(o["personal"] for o in shared.json["items"])
    bad = await api("GET", "admin", "organizations", user=OPERATOR, params={"slug": "Not A Slug"})
    assert bad.status == 422
    assert bad.json["errors"][0]["field"] == "slug"


async def test_moves_an_organization_to_any_tier_and_overrides_limits(
    api: Api, create_org: Any, add_member: Any, database: TestDatabase
) -> None:
    owner = someone("owner")
    org = await create_org(user=owner)
    # an owner may not take a GPU tier for themself ...
    assert (await api("PATCH", "organizations", org["id"], user=owner, body={"tier": "gpu-small"})).status == 403
    # ... a platform admin grants it
    body = {"tier": "gpu-small", "max_concurrent_executions": 3}
    moved = await api("PATCH", "admin", "organizations", org["id"], user=OPERATOR, body=body)
    assert moved.status == 200, moved.text
    assert moved.json["tier"]["name"] == "gpu-small"
    assert moved.json["limits"]["gpu_count"] == 1
    assert moved.json["limits"]["max_concurrent_executions"] == 3
    assert moved.json["overrides"] == {"max_concurrent_executions": 3, "max_agents": None}
    seen = (await api("GET", "organizations", org["id"], user=owner)).json
    assert (seen["tier"]["name"], seen["limits"]["max_concurrent_executions"]) == ("gpu-small", 3)
    cleared = await api(
        "PATCH", "admin", "organizations", org["id"], user=OPERATOR, body={"max_concurrent_executions": None}
    )
    assert cleared.json["limits"]["max_concurrent_executions"] == 10  # the tier's again
    # the organization's own audit log says what the operator did
    with psycopg.connect(database.admin_url) as conn:
        rows = conn.execute(
            "SELECT a.action, u.subject, a.details->>'platform_admin' FROM audit_events a "
            "JOIN users u ON u.id = a.actor_user_id WHERE a.org_id = %s AND a.action = 'organization.admin_update'",
            (org["id"],),
        ).fetchall()
    assert rows == [("organization.admin_update", OPERATOR, "true")] * 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"tier": "platinum"}, 422, "tier"),
        ({"tier": None}, 422, "tier"),
        ({"slug": "Has Spaces"}, 422, "slug"),
        ({"slug": "-leading-dash"}, 422, "slug"),
        ({"max_agents": 0}, 422, "max_agents"),
        ({"max_agents": "many"}, 422, "max_agents"),
        ({"owner": "me"}, 422, "owner"),
    ],
)
async def test_bad_changes_are_refused_with_the_field(
    api: Api, create_org: Any, body: dict[str, Any], status: int, field: str
) -> None:
    org = await create_org(user=someone("owner"))
    reply = await api("PATCH", "admin", "organizations", org["id"], user=OPERATOR, body=body)
    assert reply.status == status, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]
    after = await api("GET", "admin", "organizations", user=OPERATOR, params={"personal": "false", "limit": "200"})
    [same] = [o for o in after.json["items"] if o["id"] == org["id"]]
    assert same["tier"]["name"] == "free"
    assert same["slug"] is None


async def test_slugs_are_unique_and_never_on_a_personal_organization(api: Api, create_org: Any) -> None:
    owner = someone("owner")
    first, second = await create_org(user=owner), await create_org(user=owner)
    name = slug()
    assert (await api("PATCH", "admin", "organizations", first["id"], user=OPERATOR, body={"slug": name})).status == 200
    taken = await api("PATCH", "admin", "organizations", second["id"], user=OPERATOR, body={"slug": name})
    assert taken.status == 409
    assert taken.json["errors"][0]["field"] == "slug"
    personal = next(
        m["org_id"] for m in (await api("GET", "users", "me", user=owner)).json["memberships"] if m["personal"]
    )
    refused = await api("PATCH", "admin", "organizations", personal, user=OPERATOR, body={"slug": slug()})
    assert refused.status == 422
    assert refused.json["errors"][0]["field"] == "slug"
    assert (await api("GET", "organizations", first["id"], user=owner)).json["slug"] == name
    missing = await api("PATCH", "admin", "organizations", str(uuid.uuid4()), user=OPERATOR, body={"name": "x"})
    assert missing.status == 404


async def test_a_limit_below_the_live_agents_is_refused(api: Api, create_org: Any, create_agent: Any) -> None:
    owner = someone("owner")
    org = await create_org(user=owner)
    for _ in range(2):
        await create_agent(user=owner, org_id=org["id"])
    reply = await api("PATCH", "admin", "organizations", org["id"], user=OPERATOR, body={"max_agents": 1})
    assert reply.status == 409
    assert reply.json["errors"][0]["field"] == "max_agents"
    assert (
        await api("PATCH", "admin", "organizations", org["id"], user=OPERATOR, body={"max_agents": 2})
    ).status == 200


async def test_makes_anyone_a_member_of_a_shared_organization(api: Api, create_org: Any) -> None:
    owner, helper = someone("owner"), someone("helper")
    org = await create_org(user=owner)
    await api("GET", "users", "me", user=helper)
    await api("GET", "users", "me", user=OPERATOR)
    added = await api(
        "POST",
        "admin",
        "organizations",
        org["id"],
        "members",
        user=OPERATOR,
        body={"username": OPERATOR, "role": "owner"},
    )
    assert added.status == 201, added.text
    assert added.headers["Location"].endswith(f"/organizations/{org['id']}/members/{added.json['user_id']}")
    # the operator is now an owner there, through the ordinary API
    assert (await api("GET", "organizations", org["id"], user=OPERATOR)).json["role"] == "owner"
    body = {"username": helper, "role": "viewer"}
    assert (await api("POST", "admin", "organizations", org["id"], "members", user=OPERATOR, body=body)).status == 201
    body["role"] = "admin"
    changed = await api("POST", "admin", "organizations", org["id"], "members", user=OPERATOR, body=body)
    assert (changed.status, changed.json["role"], changed.json["source"]) == (200, "admin", "api")
    nobody = await api(
        "POST",
        "admin",
        "organizations",
        org["id"],
        "members",
        user=OPERATOR,
        body={"username": "ghost", "role": "owner"},
    )
    assert nobody.status == 422
    assert nobody.json["errors"][0]["field"] == "username"
    personal = next(
        m["org_id"] for m in (await api("GET", "users", "me", user=owner)).json["memberships"] if m["personal"]
    )
    into_personal = await api(
        "POST",
        "admin",
        "organizations",
        personal,
        "members",
        user=OPERATOR,
        body={"username": helper, "role": "viewer"},
    )
    assert into_personal.status == 409


# ---- hub groups ------------------------------------------------------------------------------


async def test_org_groups_make_members_and_follow_the_hub(hub_call: Hub) -> None:
    name, team = someone("ada"), slug()
    groups = [f"org:{team}", f"org:{team}:admin", "org:Not A Slug", f"org:{slug()}:king", "data-science"]
    me = await hub_call("GET", "users", "me", name=name, groups=groups)
    assert me.status == 200, me.text
    # the organization the group names was created; the highest role of its groups wins; bad groups are ignored
    assert memberships(me.json) == {team: ("admin", "hub")}
    [org] = [m for m in me.json["memberships"] if m["name"] == team]
    assert (await hub_call("GET", "organizations", org["org_id"], name=name, groups=groups)).json["slug"] == team
    # the hub changed the role
    me = await hub_call("GET", "users", "me", name=name, groups=[f"org:{team}:viewer"])
    assert memberships(me.json) == {team: ("viewer", "hub")}
    denied = await hub_call(
        "POST",
        "agents",
        name=name,
        groups=[f"org:{team}:viewer"],
        body={"name": "a", "framework": "langgraph", "org_id": org["org_id"]},
    )
    assert denied.status == 403
    # the API does not change what the hub manages
    for method, body in (("PATCH", {"role": "owner"}), ("DELETE", None)):
        refused = await hub_call(
            method,
            "organizations",
            org["org_id"],
            "members",
            me.json["id"],
            name=name,
            groups=[f"org:{team}:viewer"],
            body=body,
        )
        assert refused.status == 409, refused.text
        assert f"org:{team}" in refused.json["detail"]
    # out of the group: out of the organization at the next request
    me = await hub_call("GET", "users", "me", name=name, groups=[])
    assert memberships(me.json) == {}
    gone = await hub_call("GET", "organizations", org["org_id"], name=name)
    assert gone.status == 404


async def test_groups_leave_memberships_granted_in_the_api_alone(api: Api, hub_call: Hub, create_org: Any) -> None:
    owner, bea, team = someone("owner"), someone("bea"), slug()
    org = await create_org(user=owner, name="Linked")
    assert (await api("PATCH", "admin", "organizations", org["id"], user=OPERATOR, body={"slug": team})).status == 200
    await hub_call("GET", "users", "me", name=bea)
    body = {"username": bea, "role": "developer"}
    assert (await api("POST", "organizations", org["id"], "members", user=owner, body=body)).status == 201
    # the group names the organization the operator linked: no second one is made, the API's role stays
    me = await hub_call("GET", "users", "me", name=bea, groups=[f"org:{team}:owner"])
    assert memberships(me.json) == {"Linked": ("developer", "api")}
    me = await hub_call("GET", "users", "me", name=bea, groups=[])
    assert memberships(me.json) == {"Linked": ("developer", "api")}
    # a group member joins the linked organization
    carl = someone("carl")
    me = await hub_call("GET", "users", "me", name=carl, groups=[f"org:{team}"])
    assert memberships(me.json) == {"Linked": ("developer", "hub")}
    listed = await api("GET", "organizations", org["id"], "members", user=owner)
    assert {(m["username"], m["source"]) for m in listed.json["items"]} == {
        (owner, "api"),
        (bea, "api"),
        (carl, "hub"),
    }


async def test_the_blocked_group_still_wins(hub_call: Hub) -> None:
    reply = await hub_call("GET", "users", "me", name=someone("mallory"), groups=["blocked", f"org:{slug()}:owner"])
    assert reply.status == 403
    assert "blocked" in reply.json["detail"]
