"""Where a newcomer starts: ``/orchestrator/`` for people, ``/orchestrator/api/v1/`` for code, ``/models``.

Both entry points need the same token or login as the rest of the API, and
every link they give answers.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.handlers.index import default_dashboard_url
from tests.conftest import Api

TOKEN = {"Authorization": "token user:alice"}


class Page(HTMLParser):
    """The links of a page (href and text) and whether it declares its language."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.lang = ""
        self.headings: list[str] = []
        self._href: str | None = None
        self._text: list[str] = []
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang") or ""
        if tag == "a":
            self._href, self._text = found.get("href") or "", []
        self._heading = tag in ("h1", "h2")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)
        if self._heading:
            self.headings.append(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None
        self._heading = False


async def _fetch(jp_fetch: Any, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    return await jp_fetch(*path.strip("/").split("/"), headers=headers or {}, raise_error=False, **kw)


async def test_the_api_root_lists_its_collections_with_links_that_answer(
    api: Api, jp_fetch: Any, jp_base_url: str
) -> None:
    root = await api("GET", "")
    assert root.status == 200, root.text
    assert root.headers["Content-Type"].startswith("application/json")
    by_route = {item["route"]: item for item in root.json["collections"]}
    for route in ("/agents", "/organizations", "/executions", "/integrations", "/runtimes", "/models", "/users/me"):
        assert route in by_route, route
    assert by_route["/agents"]["methods"] == ["GET", "POST"]
    assert by_route["/agents"]["href"] == f"{jp_base_url}orchestrator/api/v1/agents"
    assert root.json["links"]["docs"] == f"{jp_base_url}orchestrator/docs"
    # every collection that answers GET answers it with the same token (platform admins' aside: alice is
    # not one, see test_admin.py), and so does every document
    gettable = [
        item["href"]
        for item in root.json["collections"]
        if "GET" in item["methods"] and not item["route"].startswith("/admin/")
    ]
    assert len(gettable) >= 8
    for href in [*gettable, *root.json["links"].values()]:
        reply = await _fetch(jp_fetch, href.removeprefix(jp_base_url), TOKEN)
        assert reply.code == 200, href
    # without the trailing slash too
    assert (await _fetch(jp_fetch, "orchestrator/api/v1", TOKEN)).code == 200


async def test_the_entry_points_need_a_token_or_login(api: Api, jp_fetch: Any, jp_base_url: str) -> None:
    assert (await api("GET", "", user=None)).status == 403
    assert (await api("GET", "models", user=None)).status == 403
    # a browser with no login is sent to log in, not shown a bare error
    page = await _fetch(jp_fetch, "orchestrator/", {"Authorization": "none"}, follow_redirects=False)
    assert page.code == 302
    assert "/login" in page.headers["Location"]


async def test_the_start_page_links_the_docs_api_dashboard_and_metrics(
    jp_fetch: Any, jp_base_url: str, jp_root_dir: Path
) -> None:
    reply = await _fetch(jp_fetch, "orchestrator/", TOKEN)
    assert reply.code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "script-src" not in reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    page = Page()
    page.feed(reply.body.decode())
    assert page.lang == "en"
    assert page.headings[0] == "Orchestrator"
    texts = {text: href for href, text in page.links}
    assert texts["API documentation"] == f"{jp_base_url}orchestrator/docs"
    assert texts["REST API root"] == f"{jp_base_url}orchestrator/api/v1/"
    assert texts["Prometheus metrics"] == f"{jp_base_url}orchestrator/metrics"
    assert all(text for _, text in page.links), "every link says where it goes"
    assert "the same token" in reply.body.decode()  # where the metrics need one
    for href in texts.values():
        assert (await _fetch(jp_fetch, href.removeprefix(jp_base_url), TOKEN)).code == 200, href
    # no dashboard notebook under this server's root: the page says where to find it
    assert "Dashboard" not in texts
    assert "notebooks/dashboard.ipynb" in reply.body.decode()
    assert (await _fetch(jp_fetch, "orchestrator", TOKEN)).code == 200


@pytest.mark.parametrize(
    ("environ", "has_notebook", "expected"),
    [
        (
            {"JUPYTERHUB_SERVICE_NAME": "orchestrator", "JUPYTERHUB_BASE_URL": "/hub-base/"},
            False,
            "/hub-base/services/dashboard/",
        ),
        ({}, True, "/base/voila/render/notebooks/dashboard.ipynb"),
        ({}, False, ""),
    ],
)
def test_where_the_dashboard_link_points(
    environ: dict[str, str], has_notebook: bool, expected: str, tmp_path: Path
) -> None:
    if has_notebook:
        (tmp_path / "notebooks").mkdir()
        (tmp_path / "notebooks" / "dashboard.ipynb").write_text("{}")
    assert default_dashboard_url("/base/", tmp_path, environ) == expected


@pytest.mark.parametrize("orchestrator_config", [{"dashboard_url": "/voila/render/mine.ipynb"}])
async def test_a_configured_dashboard_is_linked(jp_fetch: Any, orchestrator_config: dict[str, Any]) -> None:
    reply = await _fetch(jp_fetch, "orchestrator/", TOKEN)
    page = Page()
    page.feed(reply.body.decode())
    assert ("/voila/render/mine.ipynb", "Dashboard") in page.links


async def test_models_lists_what_the_server_runs_itself(api: Api, jp_serverapp: Any) -> None:
    empty = await api("GET", "models")
    assert empty.status == 200
    assert empty.json == {"items": []}
    services = jp_serverapp.web_app.settings["orchestrator_services"]
    services.server_models["local-model"] = {
        "kind": "openai-compatible",
        "config": {"base_url": "http://127.0.0.1:40123/v1", "model": "SmolLM2-135M-Instruct"},
        "secret": None,
    }
    listed = await api("GET", "models", user="bob")
    assert listed.json["items"] == [
        {
            "name": "local-model",
            "kind": "openai-compatible",
            "model": "SmolLM2-135M-Instruct",
            "base_url": "http://127.0.0.1:40123/v1",
        }
    ]
    assert not re.search("secret", listed.text)


async def test_the_start_page_in_a_browser_has_no_accessibility_violations(
    jp_fetch: Any, jp_base_url: str, jp_http_port: int
) -> None:
    """Chromium with axe-core: no violation at all, and the keyboard reaches every link in order.

    (``jp_fetch`` makes the test server listen on ``jp_http_port``.)
    """
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:  # opened and closed here: its loop must not outlive the test
        browser = await playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        try:
            context = await browser.new_context(extra_http_headers=TOKEN)
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            await page.goto(f"http://127.0.0.1:{jp_http_port}{jp_base_url}orchestrator/")
            results = await Axe().run(page)
            assert [v["id"] for v in results.response["violations"]] == []
            assert errors == []  # e.g. a style the page's own CSP refused
            focused = []
            for _ in range(4):
                await page.keyboard.press("Tab")
                focused.append(await page.evaluate("document.activeElement.textContent"))
            assert focused == ["API documentation", "REST API root", "Prometheus metrics", "Health"]
        finally:
            await browser.close()
