"""The hub decides who runs the platform and who belongs where, with a real JupyterHub in team mode.

Hub admins are the Orchestrator's platform admins (``/admin``), from the request after the admin
panel changes it; hub groups ``org:<slug>[:<role>]`` make organization members, and taking someone
out of the group takes them out of the organization. Everything goes through the hub's own REST API
(what its admin panel calls) and the service behind the hub's proxy, with the people's own tokens.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests

from orchestrator_ext.hub.spawner import system_name
from tests.hub.conftest import needs_root
from tests.hub.team_hub import API, Person, TeamHub

pytestmark = [needs_root, pytest.mark.timeout(600)]


def admin_of(hub: TeamHub) -> Person:
    return hub.people.get(hub.admin) or hub.person(hub.admin)


def call(hub: TeamHub, method: str, path: str, person: Person, **kwargs: Any) -> requests.Response:
    """One API request through the hub's proxy with ``person``'s token."""
    return requests.request(
        method, f"{hub.api_url}{path}", headers=person.headers, timeout=30, verify=hub.ssl_verify, **kwargs
    )


def memberships(hub: TeamHub, person: Person) -> dict[str, tuple[str, str]]:
    me = hub.get(f"{API}/users/me", person.token)
    assert me.status_code == 200, me.text
    return {m["name"]: (m["role"], m["source"]) for m in me.json()["memberships"] if not m["personal"]}


def test_hub_admins_are_platform_admins_and_the_panel_decides_at_once(team_hub: TeamHub) -> None:
    hub = team_hub
    admin, carol = admin_of(hub), hub.person(f"carol-{secrets.token_hex(2)}")
    assert hub.get(f"{API}/users/me", admin.token).json()["platform_admin"] is True
    listed = hub.get(f"{API}/admin/organizations", admin.token)
    assert listed.status_code == 200, listed.text

    refused = hub.get(f"{API}/admin/organizations", carol.token)
    assert refused.status_code == 403
    assert "platform admins" in refused.json()["detail"]

    # the admin panel's "admin" box, through the hub's API
    assert hub.hub_api("PATCH", f"/users/{carol.name}", admin.token, json={"admin": True}).status_code == 200
    assert hub.get(f"{API}/admin/organizations", carol.token).status_code == 200
    assert hub.get(f"{API}/users/me", carol.token).json()["platform_admin"] is True
    assert hub.hub_api("PATCH", f"/users/{carol.name}", admin.token, json={"admin": False}).status_code == 200
    assert hub.get(f"{API}/admin/organizations", carol.token).status_code == 403


def test_org_groups_make_members_until_the_hub_takes_them_out(team_hub: TeamHub) -> None:
    hub = team_hub
    admin, dana = admin_of(hub), hub.person(f"dana-{secrets.token_hex(2)}")
    slug = f"lab-{secrets.token_hex(3)}"
    group = f"org:{slug}:admin"
    assert hub.hub_api("POST", f"/groups/{group}", admin.token).status_code == 201
    added = hub.hub_api("POST", f"/groups/{group}/users", admin.token, json={"users": [dana.name]})
    assert added.status_code == 200, added.text

    assert memberships(hub, dana) == {slug: ("admin", "hub")}
    [org] = [o for o in hub.get(f"{API}/organizations", dana.token).json()["items"] if o["slug"] == slug]
    made = hub.get(f"{API}/organizations/{org['id']}/members", dana.token)
    assert made.status_code == 200
    assert [(m["username"], m["role"], m["source"]) for m in made.json()["items"]] == [(dana.name, "admin", "hub")]
    # the API leaves what the hub manages to the hub
    me = hub.get(f"{API}/users/me", dana.token).json()
    left = call(hub, "DELETE", f"/organizations/{org['id']}/members/{me['id']}", dana)
    assert left.status_code == 409
    assert group.rsplit(":", 1)[0] in left.json()["detail"]

    # a platform admin sees the organization the group made, and grants it a GPU tier
    moved = call(hub, "PATCH", f"/admin/organizations/{org['id']}", admin, json={"tier": "gpu-small"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["slug"], moved.json()["members"], moved.json()["tier"]["name"]) == (slug, 1, "gpu-small")

    removed = hub.hub_api("DELETE", f"/groups/{group}/users", admin.token, json={"users": [dana.name]})
    assert removed.status_code == 200
    assert memberships(hub, dana) == {}
    assert hub.get(f"{API}/organizations/{org['id']}", dana.token).status_code == 404


def approved(hub: TeamHub, admin: Person, name: str) -> bool:
    """What the authorization page says of ``name`` (asking, not logging in: NativeAuthenticator
    counts a login refused for want of approval as a failed one, towards the lockout)."""
    page = admin.session.get(f"{hub.url}/hub/authorize", timeout=30).text
    row = page.split(f'id="{name}"', 1)[1].split("</tr>", 1)[0]
    return "<td>Yes</td>" in row


def test_approving_a_sign_up_takes_the_admins_post_not_a_link(team_hub: TeamHub) -> None:
    """NativeAuthenticator approves on a GET, which any page an admin visits can trigger; here only
    the authorization page's POST, with the hub's XSRF token, does."""
    hub = team_hub
    admin, name = admin_of(hub), f"ivan-{secrets.token_hex(2)}"
    assert hub.sign_up(name).status_code == 200
    hub.accounts.add(f"jupyter-{name}")

    # a page elsewhere sends the admin's browser to the old approval link: nothing changes
    followed = admin.session.get(f"{hub.url}/hub/authorize/{name}", allow_redirects=False, timeout=30)
    assert followed.status_code == 302
    assert not approved(hub, admin, name)
    # a form elsewhere posts without the page's XSRF token: refused
    forged = admin.session.post(f"{hub.url}/hub/authorize/{name}", allow_redirects=False, timeout=30)
    assert forged.status_code == 403
    assert not approved(hub, admin, name)
    # not an admin: refused even with a token
    other = hub.person(f"judy-{secrets.token_hex(2)}")
    other.session.get(f"{hub.url}/hub/home", timeout=30)
    refused = other.session.post(
        f"{hub.url}/hub/authorize/{name}",
        data={"_xsrf": other.session.cookies.get("_xsrf", "")},
        allow_redirects=False,
        timeout=30,
    )
    assert refused.status_code == 403
    assert not approved(hub, admin, name)
    assert hub.log_in(name)[1].status_code == 200  # waiting for approval: no session

    # the authorization page's button
    page = admin.session.get(f"{hub.url}/hub/authorize", timeout=30).text
    assert f'action="/hub/authorize/{name}"' in page
    assert 'name="_xsrf"' in page
    assert hub.approve(name).status_code == 302
    assert hub.log_in(name)[1].status_code == 302
    # discarding is a POST too, and only for accounts still waiting
    waiting = f"kim-{secrets.token_hex(2)}"
    assert hub.sign_up(waiting).status_code == 200
    assert admin.session.get(f"{hub.url}/hub/discard/{waiting}", allow_redirects=False, timeout=30).status_code == 302
    assert waiting in admin.session.get(f"{hub.url}/hub/authorize", timeout=30).text
    discarded = admin.session.post(
        f"{hub.url}/hub/discard/{waiting}",
        data={"_xsrf": admin.session.cookies.get("_xsrf", "")},
        allow_redirects=False,
        timeout=30,
    )
    assert discarded.status_code == 302
    assert waiting not in admin.session.get(f"{hub.url}/hub/authorize", timeout=30).text


def test_no_one_becomes_an_admin_by_signing_up_under_an_admin_name(team_hub: TeamHub) -> None:
    """The first admin is made when the hub starts, with the operator's password: its name is taken
    before the port opens. Another admin name may be signed up, but only an admin's approval opens it."""
    hub = team_hub
    squatter = "squatters-own-password-7"
    taken = hub.sign_up(hub.admin, squatter)
    assert taken.status_code == 200
    assert "already in use" in taken.text
    _, refused = hub.log_in(hub.admin, squatter)
    assert refused.status_code == 200  # the login page again: no session
    admin = admin_of(hub)  # the operator's password opens it
    assert hub.hub_api("GET", f"/users/{admin.name}", admin.token).json()["admin"] is True

    second = f"{hub.admin}-2"  # in ORCHESTRATOR_HUB_ADMINS, never made
    signed = hub.sign_up(second, squatter)
    assert signed.status_code == 200
    assert "can now go to the home page and log in" not in signed.text
    hub.accounts.add(system_name(second))
    assert not approved(hub, admin, second)
    _, waiting = hub.log_in(second, squatter)
    assert waiting.status_code == 200  # no approval, no session: no admin
