"""hub_config/shared.py read as JupyterHub reads it, with and without an OpenID Connect provider:
the authenticator each mode gets and its settings, and the roles (the integration tests run the
NativeAuthenticator side for real; no provider is reachable here, so the OAuth side is checked
by building GenericOAuthenticator from the configuration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from oauthenticator.generic import GenericOAuthenticator
from traitlets.config import Config

from orchestrator_ext.hub.native import TeamAuthenticator

SHARED = Path(__file__).resolve().parents[2] / "hub_config" / "shared.py"
OAUTH = {
    "OAUTH_CLIENT_ID": "orchestrator",
    "OAUTH_CLIENT_SECRET": "s3cret",
    "OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
    "OAUTH_AUTHORIZE_URL": "https://id.example.org/auth",
    "OAUTH_TOKEN_URL": "https://id.example.org/token",
    "OAUTH_USERDATA_URL": "https://id.example.org/userinfo",
    "OAUTH_GROUPS_CLAIM": "groups",
    "OAUTH_ALLOWED_GROUPS": "lab, lab-admins",
    "OAUTH_ADMIN_GROUPS": "lab-admins",
    "OAUTH_REFRESH_AGE": "120",
    "JUPYTERHUB_CRYPT_KEY": "ab" * 32,
}


def load_shared(monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    for name in [*OAUTH, "ORCHESTRATOR_HUB_ADMINS", "ORCHESTRATOR_HUB_APPROVAL", "ORCHESTRATOR_HUB_LOGIN_ATTEMPTS"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    namespace: dict[str, Any] = {"c": config, "__file__": str(SHARED)}
    exec(compile(SHARED.read_text(), str(SHARED), "exec"), namespace)
    return config


def test_without_a_provider_people_sign_up_with_hub_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_shared(monkeypatch, ORCHESTRATOR_HUB_ADMINS="ada, grace", ORCHESTRATOR_HUB_LOGIN_ATTEMPTS="4")
    assert config.JupyterHub.authenticator_class is TeamAuthenticator
    native = config.NativeAuthenticator
    assert native.enable_signup is True
    assert native.open_signup is False  # an admin approves new accounts by default
    assert (native.allowed_failed_logins, native.seconds_before_next_try) == (4, 600)
    assert native.minimum_password_length == 10
    assert native.check_common_password is True
    assert config.Authenticator.admin_users == {"ada", "grace"}
    ours, natives = config.JupyterHub.template_paths
    assert Path(ours, "authorization-area.html").exists()  # approvals by POST, before NativeAuthenticator's
    assert Path(natives, "signup.html").exists()
    assert load_shared(monkeypatch, ORCHESTRATOR_HUB_APPROVAL="false").NativeAuthenticator.open_signup is True


def test_with_a_provider_people_log_in_there_and_tokens_are_refreshed(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_shared(monkeypatch, **OAUTH)
    assert config.JupyterHub.authenticator_class is GenericOAuthenticator
    authenticator = GenericOAuthenticator(config=config)  # every setting is one it has
    assert authenticator.client_id == "orchestrator"
    assert authenticator.authorize_url == "https://id.example.org/auth"
    assert authenticator.scope == ["openid", "profile", "email"]
    assert authenticator.username_claim == "preferred_username"
    assert authenticator.enable_pkce is True
    assert authenticator.manage_groups is True
    assert authenticator.auth_state_groups_key == "oauth_user.groups"
    assert authenticator.allowed_groups == {"lab", "lab-admins"}
    assert authenticator.admin_groups == {"lab-admins"}
    assert authenticator.allow_all is False
    assert authenticator.enable_auth_state is True
    assert (authenticator.refresh_pre_spawn, authenticator.auth_refresh_age) == (True, 120)


def test_users_and_their_servers_reach_the_orchestrator_and_the_culler_stops_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_shared(monkeypatch)
    roles = {role["name"]: role for role in config.JupyterHub.load_roles}
    for name in ("user", "server"):
        assert "access:services!service=orchestrator" in roles[name]["scopes"]
        assert "read:services!service=orchestrator" in roles[name]["scopes"]  # the client finds the service
    assert "access:services!service=dashboard" in roles["user"]["scopes"]
    assert roles["idle-culler"]["services"] == ["idle-culler"]
    assert "delete:servers" in roles["idle-culler"]["scopes"]
    culler = next(s for s in config.JupyterHub.services if s["name"] == "idle-culler")
    assert culler["command"][1:3] == ["-m", "jupyterhub_idle_culler"]
    assert "--timeout=3600" in culler["command"]
