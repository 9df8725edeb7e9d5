"""NativeAuthenticator (sign-up, hub-stored bcrypt passwords) as it works with JupyterHub 5 and 6.

NativeAuthenticator 1.3 (its latest release) times logins with JupyterHub's
``statsd`` client, which JupyterHub 6 removed, and renders its login form in a
way JupyterHub 6's error pages no longer call: every login then fails with a
500. :class:`TeamAuthenticator` is NativeAuthenticator with a login page that
does neither.

It also changes how admins approve sign-ups. NativeAuthenticator approves,
un-approves (``/hub/authorize/<name>``) and discards (``/hub/discard/<name>``)
an account on a plain GET, from links on its authorization page: any web page
an admin visits can send their browser there (a top-level navigation carries
the hub's cookies) and approve the attacker's pending account. Here those
changes take a POST, which JupyterHub checks for its XSRF token, from the
buttons of ``templates/authorization-area.html``; a GET changes nothing.
Everything else (sign-up, lockout, password change) is NativeAuthenticator's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyterhub.handlers.base import BaseHandler  # type: ignore[import-untyped]
from nativeauthenticator import NativeAuthenticator  # type: ignore[import-untyped]
from nativeauthenticator import handlers as native
from tornado.escape import url_escape
from tornado.httputil import url_concat


class _NoTimer:
    def start(self) -> _NoTimer:
        return self

    def stop(self, send: bool = True) -> None:
        return None


class _NoStatsd:
    """What NativeAuthenticator asks of JupyterHub's former statsd client: a timer that measures nothing."""

    def timer(self, name: str) -> _NoTimer:
        return _NoTimer()


class LoginHandler(native.LoginHandler):  # type: ignore[misc]
    statsd = _NoStatsd()

    def _render(self, login_error: str | None = None, username: str | None = None, **ns: Any) -> Any:
        """The login form, with an error; synchronously when JupyterHub renders an error page with it."""
        if not ns.get("sync"):
            return super()._render(login_error=login_error, username=username)
        authenticator = self.authenticator
        return BaseHandler.render_template(
            self,
            "native-login.html",
            sync=True,
            next=url_escape(self.get_argument("next", default="")),
            username=username,
            login_error=login_error,
            custom_html=authenticator.custom_html,
            login_url=self.settings["login_url"],
            enable_signup=authenticator.enable_signup,
            two_factor_auth=authenticator.allow_2fa,
            authenticator_login_url=url_concat(
                authenticator.login_url(self.hub.base_url), {"next": self.get_argument("next", "")}
            ),
        )


class ApproveHandler(native.ToggleAuthorizationHandler):  # type: ignore[misc]
    """``/hub/authorize/<name>``: POST (XSRF-checked) approves or un-approves; GET shows the list."""

    @native.admin_users_scope  # type: ignore[untyped-decorator]
    async def get(self, name: str) -> None:
        self.redirect(self.hub.base_url + "authorize#" + name)

    async def post(self, name: str) -> None:
        await native.ToggleAuthorizationHandler.get(self, name)


class DiscardHandler(native.DiscardHandler):  # type: ignore[misc]
    """``/hub/discard/<name>``: POST (XSRF-checked) discards a pending sign-up; GET shows the list."""

    @native.admin_users_scope  # type: ignore[untyped-decorator]
    async def get(self, name: str) -> None:
        self.redirect(self.hub.base_url + "authorize")

    async def post(self, name: str) -> None:
        await native.DiscardHandler.get(self, name)


#: our templates (the authorization page with POST buttons): put before NativeAuthenticator's
TEMPLATES = str(Path(__file__).with_name("templates"))
_OURS = {native.LoginHandler: LoginHandler, native.ToggleAuthorizationHandler: ApproveHandler}
_OURS[native.DiscardHandler] = DiscardHandler


class TeamAuthenticator(NativeAuthenticator):  # type: ignore[misc]
    """NativeAuthenticator, with a login page that works on JupyterHub 6 and approvals that take a POST."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [(path, _OURS.get(handler, handler)) for path, handler in super().get_handlers(app)]
