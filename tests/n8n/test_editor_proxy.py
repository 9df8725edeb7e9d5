"""The n8n editor proxy's guards, against a fake n8n (fast): its writes' origin check, and a new login on 401.

The real n8n behind the proxy is exercised by tests/n8n/test_personal_mode.py;
here n8n is a small tornado app that says which login it takes, so the cases a
real instance gives only after hours (its login expired) are quick to make.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.httpserver
import tornado.testing
import tornado.web
from jupyter_server.auth import User

from orchestrator_ext.n8n import provision
from orchestrator_ext.n8n.manager import N8nManager
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS
from tests.identity import HeaderIdentityProvider


class FakeN8n:
    """What the proxy sees of n8n: it takes one login cookie at a time (an expiry is a new one)."""

    def __init__(self) -> None:
        self.valid = "login-1"
        self.logins = 0
        self.seen: list[tuple[str, str]] = []  # (method, path) that reached it
        self.refuse = False  # every login refused (a password changed on the instance)

    def login(self, base_url: str, owner: provision.Owner) -> Any:
        self.logins += 1
        self.valid = f"login-{self.logins}"
        cookie = self.valid

        class Session:
            def auth_cookie(self) -> str:
                return cookie

        return Session()


class Endpoint(tornado.web.RequestHandler):
    def initialize(self, fake: FakeN8n) -> None:
        self.fake = fake

    def check_xsrf_cookie(self) -> None:
        return None

    def _answer(self, path: str) -> None:
        self.fake.seen.append((self.request.method or "", path))
        if self.fake.refuse or self.get_cookie("n8n-auth") != self.fake.valid:
            self.set_status(401)
            self.finish({"status": "error", "message": "Unauthorized"})
            return
        self.finish({"data": {"path": path, "body": self.request.body.decode()}})

    def get(self, path: str) -> None:
        self._answer(path)

    def post(self, path: str) -> None:
        self._answer(path)


@pytest.fixture(autouse=True)
def no_real_n8n(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_N8N", "off")


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    """Any origin allowed (CORS): where a browser-id header alone would let another site write to n8n."""
    config = copy.deepcopy(jp_server_config)
    config["ServerApp"]["allow_origin"] = "*"
    return config


@pytest.fixture
def browser_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests authenticated as a browser's are (jupyter's login cookie): not by a token, so XSRF applies."""
    monkeypatch.setattr(HeaderIdentityProvider, "get_user", lambda self, handler: User(username="alice"))


@pytest.fixture
def fake_n8n(jp_serverapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeN8n]:
    fake = FakeN8n()
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(
        tornado.web.Application([(r"/orchestrator/n8n/(.*)", Endpoint, {"fake": fake})])
    )
    server.add_sockets([sock])
    manager = N8nManager(tmp_path, "postgresql://unused/none", KeyRing.parse(TEST_KEYS), "alice")

    async def ensure() -> str:
        return f"http://127.0.0.1:{port}/orchestrator/n8n"

    monkeypatch.setattr(manager, "ensure", ensure)
    monkeypatch.setattr(provision, "login", fake.login)
    monkeypatch.setattr(provision, "load_owner", lambda data_dir: provision.Owner("o@x", "P4ssword"))
    app = jp_serverapp.extension_manager.extension_apps["orchestrator_ext"]
    extension = next(iter(app)) if isinstance(app, set) else app
    monkeypatch.setattr(extension, "_n8n", manager)
    yield fake
    server.stop()


async def editor(jp_fetch: Any, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    body = json.dumps({"name": "x"}) if method == "POST" else None
    reply = await jp_fetch("orchestrator", "n8n", path, method=method, body=body, headers=headers, raise_error=False)
    return reply.code, json.loads(reply.body) if reply.body and reply.code < 300 else None


async def test_a_write_with_n8ns_header_from_another_site_is_refused(
    browser_user: None, fake_n8n: FakeN8n, jp_fetch: Any, jp_http_port: int
) -> None:
    ours = f"http://127.0.0.1:{jp_http_port}"
    for foreign in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/page"}, {}):
        status, _ = await editor(jp_fetch, "POST", "rest/workflows", {"browser-id": "b", **foreign})
        assert status == 403, foreign
    assert fake_n8n.seen == []  # nothing reached n8n
    status, answer = await editor(jp_fetch, "POST", "rest/workflows", {"browser-id": "b", "Origin": ours})
    assert status == 200
    assert answer["data"]["path"] == "rest/workflows"
    status, _ = await editor(jp_fetch, "POST", "rest/workflows", {"browser-id": "b", "Referer": f"{ours}/x"})
    assert status == 200
    status, _ = await editor(jp_fetch, "POST", "rest/workflows", {"Origin": ours})  # no n8n header: XSRF applies
    assert status == 403


async def test_an_expired_n8n_login_is_renewed_once(fake_n8n: FakeN8n, jp_fetch: Any) -> None:
    auth = {"Authorization": "token user:alice"}
    status, answer = await editor(jp_fetch, "GET", "rest/login", auth)
    assert status == 200
    assert answer["data"]["path"] == "rest/login"
    assert fake_n8n.logins == 1
    fake_n8n.valid = "expired"  # n8n no longer takes the cached cookie
    status, answer = await editor(jp_fetch, "POST", "rest/workflows", auth)
    assert status == 200, status
    assert answer["data"]["body"] == json.dumps({"name": "x"})  # the write sent again, as it was
    assert fake_n8n.logins == 2
    status, _ = await editor(jp_fetch, "GET", "rest/login", auth)  # the new login is kept
    assert status == 200
    assert fake_n8n.logins == 2
    fake_n8n.refuse = True  # n8n refuses every login now: its 401 is the answer, after one new login
    status, _ = await editor(jp_fetch, "GET", "rest/login", auth)
    assert status == 401
    assert fake_n8n.logins == 3
    assert [p for _, p in fake_n8n.seen].count("rest/login") == 4
