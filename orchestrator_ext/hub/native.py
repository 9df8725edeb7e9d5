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

And it decides who is admin. NativeAuthenticator authorizes any sign-up under a name of
``admin_users``: whoever signs up first as the admin *is* the admin. Here no admin name is ever
authorized by signing up: the first admin (``first_admin``) is made when the hub starts, with the
password the operator gives (``first_admin_password``, or the file ``first_admin_password_file``,
generated there if missing), before the hub opens its port; signing up under that name is refused,
and other admin names wait for an admin's approval like everyone else.
Everything else (sign-up, lockout, password change) is NativeAuthenticator's own.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import bcrypt
from jupyterhub.handlers.base import BaseHandler  # type: ignore[import-untyped]
from nativeauthenticator import NativeAuthenticator  # type: ignore[import-untyped]
from nativeauthenticator import handlers as native
from nativeauthenticator.orm import UserInfo  # type: ignore[import-untyped]
from tornado.escape import url_escape
from tornado.httputil import url_concat
from traitlets import Unicode


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


class SignUpHandler(native.SignUpHandler):  # type: ignore[misc]
    """NativeAuthenticator's sign-up, without telling an admin name's sign-up that it may log in now."""

    def get_result_message(self, user: Any, human: bool, taken: bool, matches: bool, admin: bool) -> Any:
        return super().get_result_message(user, human, taken, matches, False)


#: our templates (the authorization page with POST buttons): put before NativeAuthenticator's
TEMPLATES = str(Path(__file__).with_name("templates"))
_OURS = {native.LoginHandler: LoginHandler, native.ToggleAuthorizationHandler: ApproveHandler}
_OURS[native.DiscardHandler] = DiscardHandler
_OURS[native.SignUpHandler] = SignUpHandler


class TeamAuthenticator(NativeAuthenticator):  # type: ignore[misc]
    """NativeAuthenticator, with a login page that works on JupyterHub 6, approvals that take a POST,
    and admins nobody can claim by signing up first."""

    first_admin = Unicode(
        "",
        help="""The admin made when the hub starts, if missing (one of admin_users; env: the first name
        of ORCHESTRATOR_HUB_ADMINS). Signing up under this name is refused.""",
    ).tag(config=True)
    first_admin_password = Unicode(
        "",
        help="""The first admin's password, given by the operator (env: ORCHESTRATOR_HUB_ADMIN_PASSWORD).
        Used once, to make the account; change it afterwards at /hub/change-password.""",
    ).tag(config=True)
    first_admin_password_file = Unicode(
        "",
        help="""A file holding the first admin's password (env: ORCHESTRATOR_HUB_ADMIN_PASSWORD_FILE), read
        when first_admin_password is empty. Missing: a password is generated into it (mode 0600).""",
    ).tag(config=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.make_first_admin()

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [(path, _OURS.get(handler, handler)) for path, handler in super().get_handlers(app)]

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        """A sign-up: refused for the first admin's name; for another admin's name, made but not
        authorized (NativeAuthenticator would authorize it, making its first claimant an admin)."""
        name = self.normalize_username(username)
        if self.first_admin and name == self.normalize_username(self.first_admin):
            self.log.warning("refused a sign-up under the first admin's name %r", name)
            return None
        info = super().create_user(username, password, **kwargs)
        if info is not None and name in self.admin_users and info.is_authorized:
            info.is_authorized = False  # an admin approves it, even with open sign-up
            self.db.commit()
        return info

    def make_first_admin(self) -> None:
        """Make the first admin's account from the operator's secret, unless an approved one exists.

        A pending sign-up under that name (left by a version that allowed it) is replaced.
        """
        if not self.first_admin:
            return
        name = self.normalize_username(self.first_admin)
        info = UserInfo.find(self.db, name)
        if info is not None and info.is_authorized:
            return  # made before: the password is the admin's own by now
        password = self._first_admin_secret()
        if not password:
            self.log.warning("no first admin: set ORCHESTRATOR_HUB_ADMIN_PASSWORD (or _FILE) to make %r", name)
            return
        if not self.is_password_strong(password):
            raise ValueError(
                f"The first admin's password is too weak: at least {self.minimum_password_length} characters,"
                " not a common password (ORCHESTRATOR_HUB_ADMIN_PASSWORD or its file)."
            )
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        if info is None:
            self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
        else:
            self.log.warning("a sign-up under the first admin's name %r was waiting: replaced", name)
            info.password, info.is_authorized = hashed, True
        self.db.commit()
        self.log.info("first admin %r made from the operator's password", name)

    def _first_admin_secret(self) -> str:
        if self.first_admin_password:
            return str(self.first_admin_password)
        if not self.first_admin_password_file:
            return ""
        path = Path(self.first_admin_password_file)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(18) + "\n")
            self.log.warning("the first admin's password was generated into %s (read it as root, then change it)", path)
        return path.read_text().strip()
