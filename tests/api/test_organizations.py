"""``/organizations`` and ``/organizations/{id}/members``: tiers, limits, roles, tenants, the last owner."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import Api

Sql = Callable[..., list[tuple[Any, ...]]]
Factory = Callable[..., Awaitable[dict[str, Any]]]
ROLES = ("owner", "admin", "developer", "viewer")


def someone(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def user_id_of(api: Api, user: str) -> str:
    reply = await api("GET", "users", "me", user=user)
    assert reply.status == 200, reply.text
    return str(reply.json["id"])


async def org_with(create_org: Factory, add_member: Factory, **members: str) -> tuple[str, str]:
    """A new organization founded by a fresh owner, with ``members`` (user=role) added; (org id, founder)."""
    founder = someone("founder")
    org = await create_org(user=founder)
    for user, role in members.items():
        await add_member(founder, org["id"], user, role)
    return str(org["id"]), founder


# ---- organizations -----------------------------------------------------------------


async def test_create_describes_tier_and_limits(api: Api) -> None:
    user = someone("creator")
    reply = await api("POST", "organizations", user=user, body={"name": "  Acme  "})
    assert reply.status == 201, reply.text
    org = reply.json
    assert (org["name"], org["role"], org["personal"]) == ("Acme", "owner", False)
    assert org["tier"] == {
        "name": "free",
        "title": "Free",
        "cpu": 1.0,
        "memory_mib": 2048,
        "gpu_count": 0,
        "gpu_type": None,
        "max_concurrent_executions": 2,
        "max_agents": 50,
    }
    assert org["limits"] == {k: v for k, v in org["tier"].items() if k not in ("name", "title")}
    assert reply.headers["Location"].endswith(f"/orchestrator/api/v1/organizations/{org['id']}")
    got = await api("GET", "organizations", org["id"], user=user)
    assert got.status == 200
    assert got.json == org
    team = await api("POST", "organizations", user=user, body={"name": "Acme team", "tier": "team"})
    assert team.status == 201
    assert team.json["limits"]["max_concurrent_executions"] == 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": ["x"]}, "name"),
        ({"name": "x", "tier": "platinum"}, "tier"),
        ({"name": "x", "tier": "gpu-large"}, "tier"),
        ({"name": "x", "tier": ""}, "tier"),
        ({"name": "x", "owner": "bob"}, "owner"),
    ],
)
async def test_create_rejects_bad_fields(api: Api, body: dict[str, Any], field: str) -> None:
    reply = await api("POST", "organizations", body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_list_is_the_callers_orgs_in_pages(api: Api, create_org: Factory) -> None:
    user = someone("lister")
    await user_id_of(api, user)  # personal org first: first sight shares a transaction (and now()) otherwise
    made = [await create_org(user=user, name=f"list-{i}") for i in range(3)]
    await create_org(user=someone("stranger"), name="not mine")
    everything = await api("GET", "organizations", user=user)
    assert everything.status == 200
    names = [o["name"] for o in everything.json["items"]]
    assert names == ["list-2", "list-1", "list-0", f"{user} (personal)"]
    assert everything.json["next_cursor"] is None
    personal = everything.json["items"][-1]
    assert (personal["personal"], personal["role"], personal["tier"]["name"]) == (True, "owner", "free")
    first = await api("GET", "organizations", user=user, params={"limit": 2})
    second = await api("GET", "organizations", user=user, params={"limit": 2, "cursor": first.json["next_cursor"]})
    paged = [o["id"] for o in first.json["items"] + second.json["items"]]
    assert paged == [o["id"] for o in everything.json["items"]]
    assert made[2]["id"] == paged[0]
    assert second.json["next_cursor"] is None


@pytest.mark.parametrize(("params", "field"), [({"limit": 0}, "limit"), ({"cursor": "garbage!"}, "cursor")])
async def test_list_rejects_bad_query(api: Api, params: dict[str, Any], field: str) -> None:
    reply = await api("GET", "organizations", params=params)
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_effective_limits_prefer_the_org_override(api: Api, create_org: Factory, admin_sql: Sql) -> None:
    user = someone()
    org = await create_org(user=user)
    admin_sql("UPDATE organizations SET max_agents = 7 WHERE id = %s", (org["id"],))
    reply = await api("GET", "organizations", org["id"], user=user)
    assert reply.json["limits"]["max_agents"] == 7
    assert reply.json["tier"]["max_agents"] == 50
    assert reply.json["limits"]["max_concurrent_executions"] == 2


async def test_owner_renames_and_changes_tier(api: Api, create_org: Factory, admin_sql: Sql) -> None:
    user = someone()
    org = await create_org(user=user, name="Before")
    reply = await api("PATCH", "organizations", org["id"], user=user, body={"name": "After", "tier": "team"})
    assert reply.status == 200, reply.text
    assert reply.json["name"] == "After"
    assert reply.json["tier"]["name"] == "team"
    assert reply.json["limits"]["max_agents"] == 1000
    assert (await api("GET", "organizations", org["id"], user=user)).json == reply.json
    actions = admin_sql("SELECT action, details FROM audit_events WHERE org_id = %s ORDER BY created_at", (org["id"],))
    assert actions[0] == ("organization.create", {"tier": "free"})
    assert actions[-1] == ("organization.update", {"fields": ["name", "tier"], "tier": "team"})
    # the larger tiers cost real resources: an operator grants them
    gpu = await api("PATCH", "organizations", org["id"], user=user, body={"tier": "gpu-large"})
    assert gpu.status == 403
    assert "set-tier" in gpu.json["detail"]


async def test_personal_org_can_be_renamed(api: Api) -> None:
    user = someone()
    me = (await api("GET", "users", "me", user=user)).json
    personal = me["memberships"][0]["org_id"]
    reply = await api("PATCH", "organizations", personal, user=user, body={"name": "My lab"})
    assert reply.status == 200, reply.text
    assert (reply.json["name"], reply.json["personal"]) == ("My lab", True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": "platinum"}, "tier"),
        ({"tier": None}, "tier"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_update_rejects_bad_fields(api: Api, create_org: Factory, body: dict[str, Any], field: str) -> None:
    user = someone()
    org = await create_org(user=user)
    reply = await api("PATCH", "organizations", org["id"], user=user, body=body)
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_downgrade_below_live_agents_is_refused(api: Api, create_org: Factory, admin_sql: Sql) -> None:
    user = someone()
    org = await create_org(user=user, tier="team")
    admin_sql(
        "INSERT INTO agents (id, org_id, name, framework) "
        "SELECT gen_random_uuid(), %s, 'bulk-' || n, 'agno' FROM generate_series(1, 51) AS n",
        (org["id"],),
    )
    reply = await api("PATCH", "organizations", org["id"], user=user, body={"tier": "free"})
    assert reply.status == 409, reply.text
    assert reply.json["errors"][0]["field"] == "tier"
    assert (await api("GET", "organizations", org["id"], user=user)).json["tier"]["name"] == "team"


@pytest.mark.parametrize(
    ("role", "rename", "retier"),
    [("owner", 200, 200), ("admin", 200, 403), ("developer", 403, 403), ("viewer", 403, 403)],
)
async def test_update_by_role(
    api: Api, create_org: Factory, add_member: Factory, role: str, rename: int, retier: int
) -> None:
    actor = someone(role)
    org_id, _ = await org_with(create_org, add_member, **{actor: role})
    assert (await api("GET", "organizations", org_id, user=actor)).json["role"] == role
    renamed = await api("PATCH", "organizations", org_id, user=actor, body={"name": f"by {role}"})
    assert renamed.status == rename, renamed.text
    retiered = await api("PATCH", "organizations", org_id, user=actor, body={"tier": "team"})
    assert retiered.status == retier, retiered.text
    if retier == 403:
        assert retiered.headers["Content-Type"].startswith("application/problem+json")


async def test_other_tenants_get_404_everywhere(api: Api, create_org: Factory) -> None:
    owner, intruder = someone("owner"), someone("intruder")
    org = await create_org(user=owner)
    owner_id = await user_id_of(api, owner)
    await user_id_of(api, intruder)
    calls: list[tuple[str, tuple[str, ...], Any]] = [
        ("GET", (org["id"],), None),
        ("PATCH", (org["id"],), {"name": "mine now"}),
        ("GET", (org["id"], "members"), None),
        ("POST", (org["id"], "members"), {"username": intruder, "role": "owner"}),
        ("PATCH", (org["id"], "members", owner_id), {"role": "viewer"}),
        ("DELETE", (org["id"], "members", owner_id), None),
    ]
    for method, path, body in calls:
        reply = await api(method, "organizations", *path, user=intruder, body=body)
        assert reply.status == 404, (method, path, reply.text)
    listed = await api("GET", "organizations", user=intruder)
    assert org["id"] not in [o["id"] for o in listed.json["items"]]
    untouched = await api("GET", "organizations", org["id"], user=owner)
    assert untouched.json["name"] == org["name"]


async def test_bad_ids_are_404(api: Api, create_org: Factory) -> None:
    org = await create_org()
    assert (await api("GET", "organizations", "not-a-uuid")).status == 404
    assert (await api("GET", "organizations", str(uuid.uuid4()))).status == 404
    assert (await api("PATCH", "organizations", org["id"], "members", "12", body={"role": "viewer"})).status == 404
    missing = await api("DELETE", "organizations", org["id"], "members", str(uuid.uuid4()))
    assert missing.status == 404


# ---- members -----------------------------------------------------------------------


async def test_add_list_update_remove_members(api: Api, create_org: Factory, admin_sql: Sql) -> None:
    owner, dev = someone("owner"), someone("dev")
    org = await create_org(user=owner)
    dev_id = await user_id_of(api, dev)
    added = await api(
        "POST", "organizations", org["id"], "members", user=owner, body={"username": dev, "role": "developer"}
    )
    assert added.status == 201, added.text
    assert added.json["user_id"] == dev_id
    assert (added.json["username"], added.json["display_name"], added.json["role"]) == (dev, dev.title(), "developer")
    assert added.headers["Location"].endswith(f"/organizations/{org['id']}/members/{dev_id}")
    listed = await api("GET", "organizations", org["id"], "members", user=dev)
    assert listed.status == 200
    assert [(m["username"], m["role"]) for m in listed.json["items"]] == [(dev, "developer"), (owner, "owner")]
    assert listed.json["next_cursor"] is None
    page = await api("GET", "organizations", org["id"], "members", user=dev, params={"limit": 1})
    rest = await api(
        "GET", "organizations", org["id"], "members", user=dev, params={"limit": 1, "cursor": page.json["next_cursor"]}
    )
    assert [m["username"] for m in page.json["items"] + rest.json["items"]] == [dev, owner]
    changed = await api("PATCH", "organizations", org["id"], "members", dev_id, user=owner, body={"role": "admin"})
    assert (changed.status, changed.json["role"]) == (200, "admin")
    removed = await api("DELETE", "organizations", org["id"], "members", dev_id, user=owner)
    assert removed.status == 204
    assert (await api("GET", "organizations", org["id"], user=dev)).status == 404
    actions = admin_sql(
        "SELECT action, details FROM audit_events WHERE org_id = %s AND resource_type = 'member' ORDER BY created_at",
        (org["id"],),
    )
    assert actions == [
        ("member.add", {"role": "developer"}),
        ("member.update", {"old_role": "developer", "role": "admin"}),
        ("member.remove", {"role": "admin", "left": False}),
    ]


async def test_add_by_user_id(api: Api, create_org: Factory) -> None:
    owner, viewer = someone("owner"), someone("viewer")
    org = await create_org(user=owner)
    viewer_id = await user_id_of(api, viewer)
    reply = await api(
        "POST", "organizations", org["id"], "members", user=owner, body={"user_id": viewer_id, "role": "viewer"}
    )
    assert reply.status == 201, reply.text
    assert (reply.json["username"], reply.json["role"]) == (viewer, "viewer")
    again = await api(
        "POST", "organizations", org["id"], "members", user=owner, body={"username": viewer, "role": "admin"}
    )
    assert again.status == 409
    assert again.json["errors"][0]["field"] == "username"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "developer"}, "username"),
        ({"username": "never-seen-anywhere", "role": "developer"}, "username"),
        ({"user_id": str(uuid.UUID(int=1)), "role": "developer"}, "user_id"),
        ({"user_id": "nope", "role": "developer"}, "user_id"),
        ({"username": "x", "user_id": str(uuid.UUID(int=1)), "role": "developer"}, "username"),
        ({"username": "x"}, "role"),
        ({"username": "x", "role": "superuser"}, "role"),
        ({"username": "", "role": "viewer"}, "username"),
        ({"username": "x", "role": "viewer", "admin": True}, "admin"),
    ],
)
async def test_add_rejects_bad_fields(api: Api, create_org: Factory, body: dict[str, Any], field: str) -> None:
    owner = someone()
    org = await create_org(user=owner)
    reply = await api("POST", "organizations", org["id"], "members", user=owner, body=body)
    assert reply.status == 422, reply.text
    assert [e["field"] for e in reply.json["errors"]] == [field]


async def test_update_rejects_bad_role(api: Api, create_org: Factory, add_member: Factory) -> None:
    dev = someone("dev")
    org_id, founder = await org_with(create_org, add_member, **{dev: "developer"})
    dev_id = await user_id_of(api, dev)
    for body in ({"role": "god"}, {}, {"role": "viewer", "extra": 1}):
        reply = await api("PATCH", "organizations", org_id, "members", dev_id, user=founder, body=body)
        assert reply.status == 422, (body, reply.text)


async def test_personal_org_has_one_member(api: Api) -> None:
    owner, guest = someone("solo"), someone("guest")
    await user_id_of(api, guest)
    me = (await api("GET", "users", "me", user=owner)).json
    personal = me["memberships"][0]["org_id"]
    reply = await api(
        "POST", "organizations", personal, "members", user=owner, body={"username": guest, "role": "viewer"}
    )
    assert reply.status == 409, reply.text
    assert "personal" in reply.json["detail"]
    leave = await api("DELETE", "organizations", personal, "members", me["id"], user=owner)
    assert leave.status == 409
    demote = await api("PATCH", "organizations", personal, "members", me["id"], user=owner, body={"role": "admin"})
    assert demote.status == 409


async def test_last_owner_stays(api: Api, create_org: Factory, add_member: Factory) -> None:
    second = someone("second")
    org_id, founder = await org_with(create_org, add_member, **{second: "owner"})
    founder_id, second_id = await user_id_of(api, founder), await user_id_of(api, second)
    demoted = await api("PATCH", "organizations", org_id, "members", founder_id, user=second, body={"role": "admin"})
    assert demoted.status == 200, demoted.text
    # the second is now the only owner: the founder (an admin now) may not touch an owner,
    # and the owner may neither demote themself nor leave
    by_admin = await api("PATCH", "organizations", org_id, "members", second_id, user=founder, body={"role": "viewer"})
    assert by_admin.status == 403, by_admin.text
    by_self = await api("PATCH", "organizations", org_id, "members", second_id, user=second, body={"role": "viewer"})
    assert by_self.status == 409, by_self.text
    left = await api("DELETE", "organizations", org_id, "members", second_id, user=second)
    assert left.status == 409
    assert "last owner" in left.json["detail"]
    # an unchanged role is not a demotion
    same = await api("PATCH", "organizations", org_id, "members", second_id, user=second, body={"role": "owner"})
    assert same.status == 200


@pytest.mark.parametrize("role", ["admin", "developer", "viewer"])
async def test_any_member_may_leave(api: Api, create_org: Factory, add_member: Factory, role: str) -> None:
    member = someone(role)
    org_id, _ = await org_with(create_org, add_member, **{member: role})
    member_id = await user_id_of(api, member)
    reply = await api("DELETE", "organizations", org_id, "members", member_id, user=member)
    assert reply.status == 204, reply.text
    assert (await api("GET", "organizations", org_id, user=member)).status == 404


# What each role may do to another member: (action, {role: expected status}).
MATRIX: list[tuple[str, dict[str, int]]] = [
    ("list", {"owner": 200, "admin": 200, "developer": 200, "viewer": 200}),
    ("add-developer", {"owner": 201, "admin": 201, "developer": 403, "viewer": 403}),
    ("add-owner", {"owner": 201, "admin": 403, "developer": 403, "viewer": 403}),
    ("developer-to-viewer", {"owner": 200, "admin": 200, "developer": 403, "viewer": 403}),
    ("developer-to-owner", {"owner": 200, "admin": 403, "developer": 403, "viewer": 403}),
    ("owner-to-admin", {"owner": 200, "admin": 403, "developer": 403, "viewer": 403}),
    ("remove-developer", {"owner": 204, "admin": 204, "developer": 403, "viewer": 403}),
    ("remove-owner", {"owner": 204, "admin": 403, "developer": 403, "viewer": 403}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("action", "expected"), MATRIX, ids=[a for a, _ in MATRIX])
async def test_member_management_by_role(
    api: Api, create_org: Factory, add_member: Factory, role: str, action: str, expected: dict[str, int]
) -> None:
    actor, target, newcomer = someone(role), someone("target"), someone("new")
    org_id, founder = await org_with(create_org, add_member, **{actor: role, target: "developer"})
    await user_id_of(api, newcomer)
    target_id, founder_id = await user_id_of(api, target), await user_id_of(api, founder)
    members = ("organizations", org_id, "members")
    requests: dict[str, tuple[str, tuple[str, ...], Any]] = {
        "list": ("GET", members, None),
        "add-developer": ("POST", members, {"username": newcomer, "role": "developer"}),
        "add-owner": ("POST", members, {"username": newcomer, "role": "owner"}),
        "developer-to-viewer": ("PATCH", (*members, target_id), {"role": "viewer"}),
        "developer-to-owner": ("PATCH", (*members, target_id), {"role": "owner"}),
        "owner-to-admin": ("PATCH", (*members, founder_id), {"role": "admin"}),
        "remove-developer": ("DELETE", (*members, target_id), None),
        "remove-owner": ("DELETE", (*members, founder_id), None),
    }
    method, path, body = requests[action]
    reply = await api(method, *path, user=actor, body=body)
    assert reply.status == expected[role], reply.text
    if reply.status == 403:
        assert reply.json["title"] == "Forbidden"
