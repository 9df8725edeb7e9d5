"""Team mode with OpenID Connect: the hub's GenericOAuthenticator against a real OIDC provider.

The provider is ``oidc-provider-mock`` (authlib's authorization server: discovery, authorization
code with PKCE, refresh tokens, userinfo, end-session) on a free loopback port; its consent page
asks who you are, as a real provider's login page would. The hub is started with the ``OAUTH_*``
settings of docs/deploy/oauth.md. A person logs in through the provider's page, the provider's
``groups`` claim becomes hub groups (``org:<slug>:<role>`` → organization memberships, the admin
group → platform admin), a change at the provider reaches the API at the next refresh, a denied
login makes no account, and logout ends the hub session and sends the browser to the provider's
end-session page.
"""

from __future__ import annotations

import secrets
import subprocess  # nosec B404 - the provider runs as a child of the tests
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.hub.conftest import needs_root
from tests.hub.team_hub import API, TeamHub, start_hub, stop_hub
from tests.personal_server import free_port

pytestmark = [needs_root, pytest.mark.timeout(600)]

ADMIN_GROUP = "platform-admins"
REFRESH_AGE_S = 2


@dataclass
class Provider:
    url: str
    process: subprocess.Popen[bytes]

    def set_claims(self, sub: str, **claims: object) -> None:
        """What the provider says about ``sub`` from now on (its admin API)."""
        reply = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=10)
        assert reply.status_code == 204, reply.text


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    port = free_port()
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("wb")
    process = subprocess.Popen(  # nosec B603 - our own interpreter and arguments
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/.well-known/openid-configuration", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the OIDC provider did not start:\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.2)
    try:
        yield Provider(url, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def oidc_hub(team_env: Path, provider: Provider) -> Iterator[TeamHub]:
    discovery = requests.get(f"{provider.url}/.well-known/openid-configuration", timeout=10).json()
    hub = start_hub(
        team_env,
        extra_env={
            "OAUTH_CLIENT_ID": "orchestrator-hub",
            "OAUTH_CLIENT_SECRET": secrets.token_hex(16),
            "OAUTH_AUTHORIZE_URL": discovery["authorization_endpoint"],
            "OAUTH_TOKEN_URL": discovery["token_endpoint"],
            "OAUTH_USERDATA_URL": discovery["userinfo_endpoint"],
            "OAUTH_LOGOUT_URL": discovery["end_session_endpoint"],
            "OAUTH_GROUPS_CLAIM": "groups",
            "OAUTH_ADMIN_GROUPS": ADMIN_GROUP,
            "OAUTH_REFRESH_AGE": str(REFRESH_AGE_S),
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        },
        service_user="orch-oidc-svc",
    )
    try:
        yield hub
    finally:
        stop_hub(hub)


def log_in(hub: TeamHub, sub: str) -> tuple[requests.Session, requests.Response]:
    """The browser's way in: the hub sends it to the provider, the person says who they are, the
    provider sends it back with a code; returns the session and the hub's answer to the callback."""
    session = hub.browser()
    start = session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert start.status_code == 302, start.text
    authorize = start.headers["Location"]
    assert "code_challenge=" in authorize  # PKCE
    page = session.get(authorize, timeout=30)
    assert page.status_code == 200
    assert 'name="sub"' in page.text  # the provider's login page
    back = session.post(authorize, data={"sub": sub}, allow_redirects=False, timeout=30)
    assert back.status_code == 302, back.text
    callback = session.get(back.headers["Location"], allow_redirects=False, timeout=60)
    return session, callback


def me(hub: TeamHub, token: str) -> dict[str, object]:
    reply = hub.get(f"{API}/users/me", token)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def orgs(profile: dict[str, object]) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["role"], m["source"]) for m in profile["memberships"] if not m["personal"]}  # type: ignore[attr-defined,index]


def test_a_login_through_the_provider_brings_its_groups_to_the_api(oidc_hub: TeamHub, provider: Provider) -> None:
    hub, slug = oidc_hub, f"lab-{secrets.token_hex(3)}"
    name = f"erin-{secrets.token_hex(2)}"
    provider.set_claims(f"sub-{name}", preferred_username=name, groups=[f"org:{slug}:admin", "staff"])
    session, callback = log_in(hub, f"sub-{name}")
    assert callback.status_code == 302, callback.text
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).json()["name"] == name  # logged in
    token = hub.token_for(session, name)

    model = hub.hub_api("GET", "/user", token).json()
    assert model["name"] == name
    assert set(model["groups"]) == {f"org:{slug}:admin", "staff"}
    profile = me(hub, token)
    assert profile["username"] == name
    assert profile["platform_admin"] is False
    assert orgs(profile) == {slug: ("admin", "hub")}

    # the provider moves erin to another team; the hub refreshes her tokens and groups
    other = f"lab-{secrets.token_hex(3)}"
    provider.set_claims(f"sub-{name}", preferred_username=name, groups=[f"org:{other}"])
    time.sleep(REFRESH_AGE_S + 1)
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 200  # the browser comes back
    assert set(hub.hub_api("GET", "/user", token).json()["groups"]) == {f"org:{other}"}
    assert orgs(me(hub, token)) == {other: ("developer", "hub")}


def test_the_providers_admin_group_makes_platform_admins(oidc_hub: TeamHub, provider: Provider) -> None:
    hub = oidc_hub
    name = f"frank-{secrets.token_hex(2)}"
    provider.set_claims(f"sub-{name}", preferred_username=name, groups=[ADMIN_GROUP])
    session, callback = log_in(hub, f"sub-{name}")
    assert callback.status_code == 302, callback.text
    token = hub.token_for(session, name)
    assert me(hub, token)["platform_admin"] is True
    assert hub.get(f"{API}/admin/organizations", token).status_code == 200


def test_a_denied_login_makes_no_account(oidc_hub: TeamHub, provider: Provider) -> None:
    hub = oidc_hub
    admin_token = _admin_token(hub, provider)
    before = {u["name"] for u in hub.hub_api("GET", "/users", admin_token).json()}
    session = hub.browser()
    start = session.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    denied = session.post(start.headers["Location"], data={"action": "deny"}, allow_redirects=False, timeout=30)
    assert denied.status_code == 302
    assert parse_qs(urlparse(denied.headers["Location"]).query)["error"] == ["access_denied"]
    callback = session.get(denied.headers["Location"], allow_redirects=False, timeout=30)
    assert callback.status_code in (400, 403), callback.text
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 403
    assert {u["name"] for u in hub.hub_api("GET", "/users", admin_token).json()} == before


def test_logout_ends_the_session_and_visits_the_providers_end_session(oidc_hub: TeamHub, provider: Provider) -> None:
    hub = oidc_hub
    name = f"gail-{secrets.token_hex(2)}"
    provider.set_claims(f"sub-{name}", preferred_username=name, groups=[])
    session, callback = log_in(hub, f"sub-{name}")
    assert callback.status_code == 302
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 200
    out = session.get(f"{hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302
    assert out.headers["Location"].startswith(f"{provider.url}/oauth2/end_session")
    assert session.get(f"{hub.url}/hub/api/user", timeout=30).status_code == 403


def _admin_token(hub: TeamHub, provider: Provider) -> str:
    """A token of the admin ORCHESTRATOR_HUB_ADMINS names, who logs in through the provider too."""
    provider.set_claims(f"sub-{hub.admin}", preferred_username=hub.admin)
    session, callback = log_in(hub, f"sub-{hub.admin}")
    assert callback.status_code == 302, callback.text
    return hub.token_for(session, hub.admin)
