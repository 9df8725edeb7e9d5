"""``/users/me``: the profile, its validation, and its encryption at rest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from orchestrator_ext.security.crypto import KeyRing, KeyRingError
from tests.conftest import TEST_KEYS, Api


def someone(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_first_sight_creates_profile_and_personal_org(api: Api) -> None:
    name = someone("newcomer")
    reply = await api("GET", "users", "me", user=name)
    assert reply.status == 200, reply.text
    me = reply.json
    assert me["username"] == name
    assert me["display_name"] == name.title()
    assert me["email"] is None
    assert uuid.UUID(me["id"])
    [personal] = me["memberships"]
    assert personal == {
        "org_id": personal["org_id"],
        "name": f"{name} (personal)",
        "role": "owner",
        "personal": True,
        "source": "api",
        "joined_at": personal["joined_at"],
    }
    # the membership is made with the profile, on first sight
    assert datetime.fromisoformat(personal["joined_at"]) >= datetime.fromisoformat(me["created_at"])
    assert me["platform_admin"] is False  # the header identity: not a hub admin, not in platform_admins
    again = await api("GET", "users", "me", user=name)
    assert again.json == me


async def test_update_profile_and_clear(api: Api) -> None:
    name = someone()
    reply = await api("PUT", "users", "me", user=name, body={"display_name": "  Ada L. ", "email": "ada@example.org"})
    assert reply.status == 200, reply.text
    assert (reply.json["display_name"], reply.json["email"]) == ("Ada L.", "ada@example.org")
    assert reply.json["updated_at"] >= reply.json["created_at"]
    kept = await api("PUT", "users", "me", user=name, body={"display_name": "Ada"})
    assert (kept.json["display_name"], kept.json["email"]) == ("Ada", "ada@example.org")
    cleared = await api("PUT", "users", "me", user=name, body={"email": None})
    assert (cleared.json["display_name"], cleared.json["email"]) == ("Ada", None)
    assert (await api("GET", "users", "me", user=name)).json == cleared.json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"display_name": 7}, "display_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "a b@example.org"}, "email"),
        ({"email": "a..b@example.org"}, "email"),
        ({"email": "a@-example.org"}, "email"),
        ({"email": "a@example.org\nBcc: x@y.org"}, "email"),
        ({"email": "x" * 65 + "@example.org"}, "email"),
        ({"username": "mallory"}, "username"),
    ],
)
async def test_update_rejects_bad_fields(api: Api, body: dict[str, Any], field: str) -> None:
    reply = await api("PUT", "users", "me", user="validator", body=body)
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in reply.json["errors"]] == [field]
    assert "@" not in reply.json["detail"]


async def test_profile_is_encrypted_at_rest(api: Api, admin_sql: Callable[..., list[tuple[Any, ...]]]) -> None:
    name = someone("secret")
    email = f"{name}@example.org"
    reply = await api("PUT", "users", "me", user=name, body={"display_name": "Grace Hopper", "email": email})
    assert reply.status == 200, reply.text
    [(user_id, email_sealed, name_sealed)] = admin_sql(
        "SELECT id, email_encrypted, display_name_encrypted FROM users WHERE subject = %s", (name,)
    )
    assert str(user_id) == reply.json["id"]
    for sealed, plain in ((email_sealed, email), (name_sealed, "Grace Hopper")):
        assert sealed.startswith("v1.")
        assert plain not in sealed
    # bound to its row and column: the email ciphertext does not open as the display name
    ring = KeyRing.parse(TEST_KEYS)
    assert ring.decrypt(email_sealed, f"users.email:{user_id}") == email
    with pytest.raises(KeyRingError):
        ring.decrypt(email_sealed, f"users.display_name:{user_id}")
    # and the audit row names the fields, not their values
    [(details,)] = admin_sql(
        "SELECT details FROM audit_events WHERE actor_user_id = %s AND action = 'user.update'", (user_id,)
    )
    assert details == {"fields": ["display_name", "email"]}


async def test_undecryptable_field_reads_as_null(api: Api, admin_sql: Callable[..., list[tuple[Any, ...]]]) -> None:
    name = someone("tampered")
    await api("PUT", "users", "me", user=name, body={"email": "t@example.org"})
    # a ciphertext moved from another column does not authenticate: reported absent, never a 500
    admin_sql("UPDATE users SET email_encrypted = display_name_encrypted WHERE subject = %s", (name,))
    reply = await api("GET", "users", "me", user=name)
    assert reply.status == 200, reply.text
    assert reply.json["email"] is None
    assert reply.json["display_name"] == name.title()


async def test_memberships_list_shared_orgs(api: Api, create_org: Any, add_member: Any) -> None:
    owner, member = someone("own"), someone("mem")
    org = await create_org(user=owner, name="Zeta shared")
    await add_member(owner, org["id"], member, "viewer")
    me = (await api("GET", "users", "me", user=member)).json
    assert [(m["name"], m["role"], m["personal"]) for m in me["memberships"]] == [
        (f"{member} (personal)", "owner", True),
        ("Zeta shared", "viewer", False),
    ]


async def test_anonymous_is_refused(api: Api) -> None:
    assert (await api("GET", "users", "me", user=None)).status == 403
    assert (await api("PUT", "users", "me", user=None, body={"display_name": "x"})).status == 403


async def test_a_failed_first_request_does_not_lose_the_user(api: Any) -> None:
    """First sight commits on its own: a first request that fails must not leave a half-made user."""
    refused = await api(
        "POST", "agents", user="first-fail", body={"name": "a", "framework": "agno", "org_id": str(uuid.uuid4())}
    )
    assert refused.status == 404
    me = await api("GET", "users", "me", user="first-fail")
    assert me.status == 200, me.text
    assert [m["personal"] for m in me.json["memberships"]] == [True]
    org = await api("POST", "organizations", user="first-fail", body={"name": "after"})
    assert org.status == 201, org.text
