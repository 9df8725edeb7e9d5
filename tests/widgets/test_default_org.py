"""Which organization ``Dashboard()`` and ``Admin()`` open: the caller's personal one even after they are
invited into colleagues' teams, one created before the caller first signed in and one after (the API
lists organizations newest first, so that one comes first there), a team they own before one they were
merely invited to, else the membership held longest; one asked for by name or id; a name that two of
theirs share is refused with their ids."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from orchestrator_widgets import Admin, Dashboard
from orchestrator_widgets.choosing import OrganizationNotFound, default_membership, named_membership

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.test_admin import app_database, colleague

pytestmark = pytest.mark.timeout(300)


def team_of(server: PersonalServer, personal_id: str, owner: str, name: str, after: timedelta) -> str:
    """A team ``owner`` created ``after`` the caller's personal organization was (negative: before the
    caller first signed in), as the API would have left it: the organization, its creator its owner."""
    team = str(uuid.uuid4())
    with psycopg.connect(**app_database(server), autocommit=True) as conn:
        row = conn.execute("SELECT created_at FROM organizations WHERE id = %s", (personal_id,)).fetchone()
        assert row is not None
        created = row[0] + after
        [(owner_id,)] = conn.execute("SELECT id FROM users WHERE subject = %s", (owner,)).fetchall()
        conn.execute(
            "INSERT INTO organizations (id, name, tier_name, created_by, created_at, updated_at) "
            "VALUES (%s, %s, 'free', %s, %s, %s)",
            (team, name, owner_id, created, created),
        )
        conn.execute(
            "INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES (%s, %s, 'owner', %s)",
            (team, owner_id, created),
        )
    return team


def test_an_invitation_into_an_older_team_leaves_the_widgets_on_the_callers_own(
    server: PersonalServer, client: Client
) -> None:
    me = client.me()
    [personal] = [str(m["org_id"]) for m in me["memberships"] if m["personal"]]
    name = f"Colleague's team {uuid.uuid4().hex[:6]}"
    team = team_of(server, personal, colleague(server), name, -timedelta(days=1))
    newer = team_of(server, personal, colleague(server), f"Newer team {uuid.uuid4().hex[:6]}", timedelta(hours=1))
    for invited in (team, newer):  # the personal server's owner is a platform admin: added as a hub admin would
        body = {"username": me["username"], "role": "developer"}
        client.request("POST", f"admin/organizations/{invited}/members", body=body)
    try:
        listed = [str(o["id"]) for o in client.organizations()]
        assert listed[0] == newer  # the API's order, newest first: what "the first organization" was
        assert listed.index(personal) < listed.index(team)

        dashboard = Dashboard(client=client)
        admin = Admin(client=client)
        try:
            assert str(dashboard.org["id"]) == personal
            assert admin.org["id"] == personal
            assert admin.org["personal"] is True
        finally:
            dashboard.close()
            admin.close()

        by_name, by_id = Dashboard(name, client=client), Admin(team, client=client)
        try:
            assert str(by_name.org["id"]) == team
            assert by_name.org["role"] == "developer"
            assert (by_id.org["id"], by_id.org["role"]) == (team, "developer")
        finally:
            by_name.close()
            by_id.close()

        unknown = Dashboard(f"no such team {uuid.uuid4().hex[:6]}", client=client)
        assert "You belong to no organization named" in unknown.board["error"]
        unknown.close()
    finally:
        for invited in (team, newer):
            client.request("DELETE", f"organizations/{invited}/members/{me['id']}")
    assert {team, newer}.isdisjoint(str(o["id"]) for o in client.organizations())


def membership(name: str, role: str, joined: str, *, personal: bool = False) -> dict[str, Any]:
    return {"org_id": str(uuid.uuid4()), "name": name, "role": role, "personal": personal, "joined_at": joined}


def test_the_default_prefers_personal_then_owned_then_the_oldest_membership() -> None:
    invited_first = membership("Old team", "developer", "2026-01-01T00:00:00Z")
    owned_later = membership("Mine", "owner", "2026-03-01T00:00:00.5Z")
    owned_latest = membership("Also mine", "owner", "2026-06-01T00:00:00Z")
    personal = membership("me", "owner", "2026-02-01T00:00:00Z", personal=True)
    assert default_membership([invited_first, owned_latest, owned_later, personal]) == personal
    assert default_membership([invited_first, owned_latest, owned_later]) == owned_later
    viewer = membership("Viewed", "viewer", "2025-12-31T23:59:59.999Z")
    assert default_membership([invited_first, viewer]) == viewer
    assert default_membership([]) is None


def test_a_name_picks_exactly_one_of_the_callers_organizations() -> None:
    first, second = membership("Team", "owner", "2026-01-01T00:00:00Z"), membership("team", "viewer", "")
    assert named_membership([first, second], "Team") == first  # exact before ignoring case
    assert named_membership([first], "TEAM") == first
    twin = membership("Twin", "owner", ""), membership("twin", "owner", "")
    with pytest.raises(OrganizationNotFound, match="2 of your organizations are named 'TWIN'"):
        named_membership(twin, "TWIN")
    with pytest.raises(OrganizationNotFound, match="no organization named 'Other'"):
        named_membership([first], "Other")
