"""Make a fresh n8n usable without a person: its owner, an API key, the model credential.

n8n's first start waits for someone to create its owner in the browser. Here
the owner is created through the same REST call the set-up page makes, with a
generated password kept in ``<data dir>/owner.json`` (mode 0600, beside n8n's
own config and encryption key, which are as sensitive); each start then logs
in, replaces the platform's API key (n8n shows a key once, so an old one
cannot be read back) and hands the new one to :mod:`.integration`, which keeps
it encrypted in the database, never on disk.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator_runtimes.n8n.api import N8nApiError, error_text

from ..engine.accounts import RunAccount
from .process import open_in

OWNER_FILE = "owner.json"
#: n8n binds a login cookie to the browser id it was made with: the platform's sessions use this one
BROWSER_ID = "orchestrator"
KEY_LABEL = "orchestrator"
#: what runs do with the key: put workflows on the instance, run them, read and stop their executions
SCOPES = frozenset(
    {
        "workflow:create",
        "workflow:read",
        "workflow:update",
        "workflow:list",
        "workflow:activate",
        "workflow:deactivate",
        "execution:read",
        "execution:list",
        "execution:stop",
        "credential:create",
        "credential:list",
        "credential:read",
        "credential:update",
    }
)


@dataclass(frozen=True)
class Owner:
    email: str
    password: str

    @property
    def login(self) -> tuple[str, str]:
        return self.email, self.password


def load_owner(data_dir: Path) -> Owner:
    """The instance's owner, generated on the first call (mode 0600)."""
    # n8n's account owns the folder (team mode): a link put there must not make root read (and send to n8n's
    # login) another file, so the file is opened without following one, and must be this process's own
    folder = os.stat(data_dir, follow_symlinks=False)
    keeper = RunAccount(folder.st_uid, folder.st_gid)  # the folder's account (n8n's, in the team mode) or ours
    try:
        with os.fdopen(open_in(data_dir, OWNER_FILE, os.O_RDONLY, keeper)) as handle:
            data = json.load(handle)
        return Owner(str(data["email"]), str(data["password"]))
    except FileNotFoundError:
        pass
    # n8n wants 8+ characters with a digit and an upper-case letter
    owner = Owner("owner@orchestrator.localhost", f"Aa1-{secrets.token_urlsafe(24)}")
    fd = open_in(data_dir, OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "w") as handle:
        json.dump({"email": owner.email, "password": owner.password}, handle)
    return owner


class Session:
    """n8n's internal REST API (``/rest``) with a login cookie: what the editor uses."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}/rest/{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        request.add_header("browser-id", BROWSER_ID)  # n8n binds its login cookie to a browser id
        try:
            with self.opener.open(request, timeout=self.timeout) as reply:  # nosec B310 - our loopback n8n
                raw = reply.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                detail = error_text(json.loads(text))
            except ValueError:
                detail = text[:300]
            raise N8nApiError(exc.code, f"n8n {method} /rest/{path}: {exc.code} {detail}") from exc
        parsed = json.loads(raw) if raw else {}
        return parsed.get("data", parsed) if isinstance(parsed, dict) else parsed

    def auth_cookie(self) -> str:
        """The ``n8n-auth`` cookie's value (the editor behind our proxy uses it), or ``""``."""
        return next((cookie.value or "" for cookie in self.cookies if cookie.name == "n8n-auth"), "")


def login(base_url: str, owner: Owner) -> Session:
    """A logged-in session as the owner, creating the owner first on a fresh instance."""
    session = Session(base_url)
    settings = session.call("GET", "settings")
    user_management = settings.get("userManagement", {}) if isinstance(settings, dict) else {}
    if user_management.get("showSetupOnFirstLoad"):
        session.call(
            "POST",
            "owner/setup",
            {"email": owner.email, "firstName": "Orchestrator", "lastName": "Platform", "password": owner.password},
        )
    session.call("POST", "login", {"emailOrLdapLoginId": owner.email, "password": owner.password})
    return session


def new_api_key(session: Session) -> str:
    """A new API key with the scopes runs need (of those the instance offers), replacing the platform's earlier one."""
    listed = session.call("GET", "api-keys") or []
    for key in listed.get("items", []) if isinstance(listed, dict) else listed:
        if isinstance(key, dict) and key.get("label") == KEY_LABEL:
            session.call("DELETE", f"api-keys/{key['id']}")
    offered = session.call("GET", "api-keys/scopes")
    scopes = [scope for scope in offered if scope in SCOPES]
    created = session.call("POST", "api-keys", {"label": KEY_LABEL, "scopes": scopes, "expiresAt": None})
    return str(created["rawApiKey"])


def provision(base_url: str, data_dir: Path) -> str:
    """Owner (once) and a fresh API key: the key."""
    return new_api_key(login(base_url, load_owner(data_dir)))
