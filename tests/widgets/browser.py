"""Opening the widgets in a real browser (Playwright, Debian's Chromium): JupyterLab and Voila pages
of the test server, screenshots kept where ``ORCHESTRATOR_SCREENSHOTS`` says (for people to look at)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright

from tests.personal_server import PersonalServer

#: every request that would leave the machine (Voila's template links a font CDN) fails at once
OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])")
LOAD_TIMEOUT_MS = 90_000


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A fresh browser for one test (Playwright's loop must not outlive it: see tests/hub/test_browser.py)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        context.route(OFF_MACHINE, lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def open_in_lab(page: Page, server: PersonalServer, notebook: str) -> Locator:
    """Open a notebook in JupyterLab, run its cell, and give the widget's root."""
    page.goto(f"{server.url}/lab/tree/{notebook}?token={server.token}")
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=LOAD_TIMEOUT_MS)
    page.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")
    root = page.locator(".ow-root").first
    root.wait_for(timeout=LOAD_TIMEOUT_MS)
    return root


def open_in_voila(page: Page, server: PersonalServer, notebook: str) -> Locator:
    page.goto(f"{server.url}/voila/render/{notebook}?token={server.token}", timeout=LOAD_TIMEOUT_MS)
    root = page.locator(".ow-root").first
    root.wait_for(timeout=LOAD_TIMEOUT_MS)
    return root


def screenshot(page: Page, name: str) -> None:
    """Keep a screenshot when ORCHESTRATOR_SCREENSHOTS names a folder."""
    folder = os.environ.get("ORCHESTRATOR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
