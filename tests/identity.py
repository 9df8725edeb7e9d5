"""A test identity provider: the same extension point the hub's identity plugs into.

``Authorization: token user:<name>`` authenticates as ``<name>``; anything
else is anonymous (refused by authenticated handlers).

``Authorization: token hub:<name>`` stands for a caller the hub identified: the
user is a :class:`~jupyterhub.singleuser.extension.JupyterHubUser` whose hub
model has the groups in ``X-Test-Hub-Groups`` (comma-separated) and ``admin``
true when ``X-Test-Hub-Admin: true``, as JupyterHub's server extension would
give it. The server reads it with its hub rules only where a test installs
them (``settings["orchestrator_hub"]``).
"""

from __future__ import annotations

from jupyter_server.auth.identity import IdentityProvider, User
from jupyterhub.singleuser.extension import JupyterHubUser
from tornado import web

PREFIX = "token user:"
HUB_PREFIX = "token hub:"


class HeaderIdentityProvider(IdentityProvider):
    def get_user(self, handler: web.RequestHandler) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        if header.startswith(HUB_PREFIX):
            return _hub_user(header[len(HUB_PREFIX) :].strip(), handler)
        if not header.startswith(PREFIX):
            return None
        name = header[len(PREFIX) :].strip()
        if not name:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return User(username=name, name=name, display_name=name.title())


def _hub_user(name: str, handler: web.RequestHandler) -> User | None:
    if not name:
        return None
    groups = [g.strip() for g in handler.request.headers.get("X-Test-Hub-Groups", "").split(",") if g.strip()]
    admin = handler.request.headers.get("X-Test-Hub-Admin", "").lower() == "true"
    handler._token_authenticated = True  # type: ignore[attr-defined]
    return JupyterHubUser({"name": name, "kind": "user", "groups": groups, "admin": admin, "scopes": []})
