"""hub_config/shared.py read as JupyterHub reads it, with and without an OpenID Connect provider:
the authenticator each mode gets and its settings, and the roles (the integration tests run the
NativeAuthenticator side for real; no provider is reachable here, so the OAuth side is checked
by building GenericOAuthenticator from the configuration)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oauthenticator.generic import GenericOAuthenticator
from traitlets.config import Config

from orchestrator_ext.hub.native import TeamAuthenticator
from orchestrator_ext.hub.spawner import ensure_system_account, home_elsewhere

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED = REPOSITORY / "hub_config" / "shared.py"
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
    names = ["ORCHESTRATOR_HUB_ADMINS", "ORCHESTRATOR_HUB_APPROVAL", "ORCHESTRATOR_HUB_LOGIN_ATTEMPTS"]
    names += ["ORCHESTRATOR_HUB_ADMIN_PASSWORD", "ORCHESTRATOR_HUB_ADMIN_PASSWORD_FILE"]
    for name in [*OAUTH, *names]:
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


@pytest.fixture
def hub_db() -> Iterator[Any]:
    """The hub's database as NativeAuthenticator sees it (an in-memory SQLite session)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine("sqlite://")
    session = sessionmaker(bind=engine)()
    yield session
    session.close()
    engine.dispose()


def team_authenticator(monkeypatch: pytest.MonkeyPatch, db: Any, **env: str) -> TeamAuthenticator:
    config = load_shared(monkeypatch, **env)
    return TeamAuthenticator(config=config, _deprecated_db_session=db)


def test_the_first_admin_is_made_at_start_and_admin_names_are_never_authorized_at_sign_up(
    monkeypatch: pytest.MonkeyPatch, hub_db: Any
) -> None:
    settings = {"ORCHESTRATOR_HUB_ADMINS": "ada, grace", "ORCHESTRATOR_HUB_ADMIN_PASSWORD": "operators-secret-42"}
    authenticator = team_authenticator(monkeypatch, hub_db, **settings)
    ada = authenticator.get_user("ada")
    assert ada.is_authorized
    assert ada.is_valid_password("operators-secret-42")
    # signing up as the first admin is refused; as another admin, it waits for an admin's approval
    assert authenticator.create_user("ada", "squatters-password-1") is None
    grace = authenticator.create_user("grace", "squatters-password-1")
    assert grace is not None
    assert not grace.is_authorized
    hub_db.delete(grace)
    hub_db.commit()
    open_signup = team_authenticator(monkeypatch, hub_db, **settings, ORCHESTRATOR_HUB_APPROVAL="false")
    assert open_signup.open_signup is True
    assert open_signup.create_user("carol", "carols-password-1").is_authorized  # anyone else: at once
    assert not open_signup.create_user("grace", "x-password-22").is_authorized  # an admin name: never
    # a later start keeps the admin's own password (changed since), whatever the setting says now
    authenticator.change_password("ada", "adas-own-password-9")
    again = team_authenticator(monkeypatch, hub_db, **{**settings, "ORCHESTRATOR_HUB_ADMIN_PASSWORD": "other-0000"})
    assert again.get_user("ada").is_valid_password("adas-own-password-9")


def test_without_a_password_the_first_admins_is_generated_into_a_root_only_file(
    monkeypatch: pytest.MonkeyPatch, hub_db: Any, tmp_path: Path
) -> None:
    kept = tmp_path / "hub" / "first-admin-password"
    env = {"ORCHESTRATOR_HUB_ADMINS": "ada", "ORCHESTRATOR_HUB_ADMIN_PASSWORD_FILE": str(kept)}
    authenticator = team_authenticator(monkeypatch, hub_db, **env)
    assert kept.stat().st_mode & 0o777 == 0o600
    assert authenticator.get_user("ada").is_valid_password(kept.read_text().strip())
    with pytest.raises(ValueError, match="too weak"):
        team_authenticator(monkeypatch, hub_db, ORCHESTRATOR_HUB_ADMINS="bob", ORCHESTRATOR_HUB_ADMIN_PASSWORD="short")


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a system account")
def test_a_service_account_of_another_team_directory_is_not_taken_over(tmp_path: Path) -> None:
    """A second team directory on the machine must not move the first one's service account."""
    name = f"orch-t-{secrets.token_hex(3)}"
    first, second = tmp_path / "first" / "service", tmp_path / "second" / "service"
    assert home_elsewhere(name, second) is None  # no such account: free
    ensure_system_account(name, first, login_shell="/usr/sbin/nologin", comment="Orchestrator API")
    try:
        assert home_elsewhere(name, first) is None  # its own directory
        assert home_elsewhere(name, second) == first
        shutil.rmtree(tmp_path / "first")  # that installation is gone: the account may move
        assert home_elsewhere(name, second) is None
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def extra_requirements(extras: set[str]) -> set[str]:
    """The distributions ``orchestrator[extras]`` installs, extras of extras included (from pyproject.toml)."""
    import tomllib

    optional = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    found: set[str] = set()
    todo = list(extras)
    while todo:
        for requirement in optional[todo.pop()]:
            name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]
            if name == "orchestrator":
                todo += re.findall(r"[\w-]+", requirement.split("[", 1)[1].split("]", 1)[0])
            else:
                found.add(name)
    return found


@pytest.mark.parametrize("document", ["README.md", "docs/deploy/team.md"])
def test_the_team_install_brings_the_frameworks_its_worker_runs(document: str) -> None:
    """The team mode runs LangGraph, CrewAI and Agno workflows: the documented install has them."""
    text = (REPOSITORY / document).read_text()
    [extras] = re.findall(r"bin/pip install \"[^\"\[]*\[([\w,-]+)\]\"", text)
    installed = extra_requirements(set(extras.split(",")))
    assert {"jupyterhub", "configurable-http-proxy", "langgraph", "crewai", "agno"} <= installed
