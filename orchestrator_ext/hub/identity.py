"""The API as a JupyterHub service (the team and cluster modes).

The service is a jupyter-server with JupyterHub's server extension: its
identity provider asks the hub who holds a token or login cookie (hub OAuth)
and lets in callers with ``access:services!service=<name>``. On top of that:

- **Who is calling** (:meth:`HubAccess.identity`): a hub user is the
  orchestrator user of the same name (created on their first request). A hub
  *service*'s token (the idle culler's, a metrics scraper's) is not a user and
  is refused by every endpoint that acts for someone (the metrics still
  answer it). A member of the hub group ``blocked_group`` is refused.
- **Hub admins are platform admins** (:attr:`Identity.platform_admin`), and
  hub groups ``org:<slug>[:<role>]`` give organization memberships
  (:mod:`orchestrator_ext.services.groups`) when ``org_groups`` is on.
- **At once**: JupyterHub's client caches the hub's answer for each token for
  five minutes by default, so a user deleted in the hub would keep access that
  long. :func:`limit_hub_cache` makes it ask the hub on every request (or
  cache for the seconds configured).
- **The API only**: a jupyter-server also serves kernels, terminals and files
  to whoever it lets in; as a hub service that would hand every user a shell
  beside the database credentials. :class:`ServiceAuthorizer` allows the
  orchestrator's own resource and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.authorizer import Authorizer

from ..errors import Forbidden
from ..services.groups import parse_org_groups
from ..services.scope import Identity

log = logging.getLogger("orchestrator.hub")


def hub_model(user: Any) -> Mapping[str, Any] | None:
    """The hub's model of the caller (name, kind, groups, scopes) when the hub identified them."""
    model = getattr(user, "hub_user", None)
    return model if isinstance(model, Mapping) else None


def served_by_hub(identity_provider: Any) -> bool:
    """Whether the server's identity comes from JupyterHub (its server extension is loaded)."""
    return getattr(identity_provider, "hub_auth", None) is not None


@dataclass(frozen=True)
class HubAccess:
    """How the API treats callers that the hub identified."""

    blocked_group: str = "blocked"
    #: hub groups ``org:<slug>[:<role>]`` manage organization memberships
    org_groups: bool = True

    def identity(self, user: Any) -> Identity | None:
        """The orchestrator identity of a hub-identified caller; None if the hub did not identify them."""
        model = hub_model(user)
        if model is None:
            return None
        kind = str(model.get("kind") or "user")
        if kind != "user":
            raise Forbidden(
                f"The token of the hub {kind} '{model.get('name')}' does not act for a user; "
                "call with a user's token (e.g. $JUPYTERHUB_API_TOKEN in their server)."
            )
        groups = model.get("groups") or []
        if self.blocked_group and self.blocked_group in groups:
            raise Forbidden("Your hub account is blocked: ask a hub administrator.")
        name = str(model["name"])
        display = getattr(user, "display_name", None) or name
        return Identity(
            subject=name,
            display_name=display,
            platform_admin=model.get("admin") is True,
            org_grants=parse_org_groups(groups) if self.org_groups else None,
        )


class ServiceAuthorizer(Authorizer):
    """Allows the orchestrator's resource only: no kernels, terminals, files or other extensions' pages."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource == "orchestrator"


def lock_down(serverapp: Any, extension_settings: dict[str, Any]) -> None:
    """Replace the server's authorizer with :class:`ServiceAuthorizer`.

    Handlers read it from the web application's settings, which an extension's
    ``settings`` overwrite once it is initialised: both get it.
    """
    authorizer = ServiceAuthorizer(parent=serverapp, log=serverapp.log, identity_provider=serverapp.identity_provider)
    serverapp.authorizer = authorizer
    for settings in (serverapp.web_app.settings, extension_settings):
        settings["authorizer"] = authorizer


def limit_hub_cache(identity_provider: Any, seconds: int) -> None:
    """Cache the hub's answers about tokens for ``seconds`` (0: ask the hub on every request)."""
    hub_auth = identity_provider.hub_auth
    # JupyterHub's own cache class (not a NoCache of an earlier call)
    cache_type = next(k for k in type(hub_auth.cache).__mro__ if not getattr(k, "remembers_nothing", False))
    if seconds > 0:
        hub_auth.cache_max_age = seconds
        hub_auth.cache = cache_type(seconds)
        return

    class NoCache(cache_type):  # type: ignore[valid-type,misc]
        """Remembers nothing: each request asks the hub."""

        remembers_nothing = True

        def __setitem__(self, key: Any, value: Any) -> None:
            return None

    hub_auth.cache = NoCache()
