"""The API as a hub service, unit by unit: who a hub-identified caller is, what the service's
server lets through, and the hub client's cache (the team-mode tests show the same end to end)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider
from jupyter_server.serverapp import ServerApp
from jupyterhub.services.auth import HubOAuth
from jupyterhub.singleuser.extension import JupyterHubUser

from orchestrator_ext.errors import Forbidden
from orchestrator_ext.hub.identity import HubAccess, ServiceAuthorizer, limit_hub_cache, lock_down, served_by_hub
from orchestrator_ext.security.permissions import Role
from orchestrator_ext.services.groups import parse_org_groups
from orchestrator_ext.services.scope import Identity


def hub_user(name: str = "ada", kind: str = "user", groups: tuple[str, ...] = (), **info: Any) -> JupyterHubUser:
    return JupyterHubUser({"name": name, "kind": kind, "groups": list(groups), "scopes": [], "user_info": info})


def test_a_hub_user_is_the_orchestrator_user_of_the_same_name() -> None:
    access = HubAccess()
    assert access.identity(hub_user("ada")) == Identity(subject="ada", display_name="ada", org_grants=())
    named = hub_user("bob", user_info=None, display_name="Bob B.")
    assert access.identity(named) == Identity(subject="bob", display_name="Bob B.", org_grants=())


def test_a_caller_the_hub_did_not_identify_is_left_to_the_rest() -> None:
    assert HubAccess().identity(SimpleNamespace(username="x")) is None


def test_a_hub_services_token_acts_for_no_user() -> None:
    with pytest.raises(Forbidden, match="hub service 'idle-culler' does not act for a user"):
        HubAccess().identity(hub_user("idle-culler", kind="service"))


def test_members_of_the_blocked_group_are_refused() -> None:
    with pytest.raises(Forbidden, match="blocked"):
        HubAccess().identity(hub_user("ada", groups=("org:lab", "blocked")))
    assert HubAccess(blocked_group="suspended").identity(hub_user("ada", groups=("blocked",))) is not None
    assert HubAccess(blocked_group="").identity(hub_user("ada", groups=("blocked",))) is not None


def test_the_service_allows_the_orchestrator_and_nothing_else() -> None:
    authorizer = ServiceAuthorizer()
    user = hub_user()
    assert authorizer.is_authorized(None, user, "write", "orchestrator")
    for resource in ("kernels", "contents", "terminals", "sessions", "kernelspecs", "files", "lab", "api"):
        assert not authorizer.is_authorized(None, user, "read", resource), resource


def test_locking_down_replaces_the_authorizer_where_handlers_read_it() -> None:
    web_settings: dict[str, Any] = {"authorizer": object()}
    extension_settings: dict[str, Any] = {"authorizer": web_settings["authorizer"]}
    serverapp = ServerApp()
    serverapp.identity_provider = IdentityProvider(parent=serverapp)
    serverapp.web_app = SimpleNamespace(settings=web_settings)
    lock_down(serverapp, extension_settings)
    assert isinstance(serverapp.authorizer, ServiceAuthorizer)
    assert web_settings["authorizer"] is extension_settings["authorizer"] is serverapp.authorizer


def test_the_hubs_answers_are_not_remembered_unless_asked() -> None:
    provider = SimpleNamespace(hub_auth=HubOAuth(api_token="t", api_url="http://127.0.0.1:1/hub/api"))
    assert served_by_hub(provider)
    assert not served_by_hub(SimpleNamespace())
    limit_hub_cache(provider, 0)
    provider.hub_auth.cache["token:a"] = {"name": "ada"}
    assert "token:a" not in provider.hub_auth.cache  # every request asks the hub
    limit_hub_cache(provider, 30)
    provider.hub_auth.cache["token:a"] = {"name": "ada"}
    assert provider.hub_auth.cache["token:a"] == {"name": "ada"}
    assert provider.hub_auth.cache.max_age == provider.hub_auth.cache_max_age == 30


def test_hub_admins_are_platform_admins() -> None:
    access = HubAccess()
    assert access.identity(JupyterHubUser({"name": "root", "kind": "user", "admin": True})).platform_admin
    assert not access.identity(JupyterHubUser({"name": "ada", "kind": "user", "admin": False})).platform_admin
    assert not access.identity(hub_user("bob")).platform_admin  # a model without the flag: not an admin


def test_org_groups_become_grants_with_the_highest_role() -> None:
    groups = ("org:acme", "org:acme:admin", "org:beta:viewer", "staff", "org:", "org:Bad Slug", "org:gamma:king")
    assert HubAccess().identity(hub_user("ada", groups=groups)).org_grants == (
        ("acme", Role.ADMIN),
        ("beta", Role.VIEWER),
    )
    assert parse_org_groups(["org:acme:owner", "org:acme"]) == (("acme", Role.OWNER),)
    assert parse_org_groups([]) == ()
    # switched off (OrchestratorApp.hub_org_groups = False): the groups manage nothing
    assert HubAccess(org_groups=False).identity(hub_user("ada", groups=groups)).org_grants is None
