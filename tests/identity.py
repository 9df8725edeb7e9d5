"""A test identity provider: the same extension point the hub's identity plugs into.

``Authorization: token user:<name>`` authenticates as ``<name>``; anything
else is anonymous (refused by authenticated handlers).
"""

from __future__ import annotations

from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

PREFIX = "token user:"


class HeaderIdentityProvider(IdentityProvider):
    def get_user(self, handler: web.RequestHandler) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        if not header.startswith(PREFIX):
            return None
        name = header[len(PREFIX) :].strip()
        if not name:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return User(username=name, name=name, display_name=name.title())
