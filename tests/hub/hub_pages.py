"""A signed-in person's pages under the hub, for the browser tests of team mode (the widgets, the
JupyterLab extension): signing in on the hub's login page, writing a notebook into their home through
their server's contents API, running a cell in JupyterLab, and what the browser ends up holding (to
check that no token reaches it)."""

from __future__ import annotations

import re
from typing import Any

import requests
from playwright.sync_api import Page, WebSocket

from tests.hub.kernels import Kernel, run_async
from tests.hub.team_hub import PASSWORD, Person, TeamHub


def server_token(server_url: str, person: Person) -> str:
    """The token the person's server (and so its kernels, and the widgets' client) holds."""

    async def go() -> str:
        kernel = await Kernel(server_url, person.token).start()
        try:
            result = await kernel.run("import os\nprint(os.environ['JUPYTERHUB_API_TOKEN'])")
        finally:
            await kernel.close()
        assert result.ok, result.error
        return result.stdout.strip()

    return run_async(go)


def put_notebook(server_url: str, person: Person, path: str, content: dict[str, Any]) -> None:
    """A notebook (nbformat JSON) in the person's home, through their server's contents API (as their account)."""
    saved = requests.put(
        f"{server_url}/api/contents/{path}",
        json={"type": "notebook", "format": "json", "content": content},
        headers=person.headers,
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text


def code_notebook(cells: list[str]) -> dict[str, Any]:
    """A python3 notebook of code cells, as JupyterLab saves it (each ``source`` a list of lines)."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": s.splitlines(keepends=True),
            }
            for i, s in enumerate(cells)
        ],
    }


def sign_in(page: Page, hub: TeamHub, person: Person) -> None:
    """Log in on the hub's own login page, as a person does."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", person.name)
    page.fill("#password_input", PASSWORD)
    page.locator("#login_submit").click()
    page.wait_for_url(re.compile(r"/(hub|user)/"))


def run_cell(page: Page, index: int) -> None:
    """Run the notebook's cell ``index`` (its prompt first: a widget's click makes its own cell active)."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputPrompt").nth(index).click()
    page.keyboard.press("Shift+Enter")


def record_frames(page: Page, frames: list[str]) -> None:
    """Keep every websocket frame the page receives or sends (the kernel's messages: the widgets' state)
    and every request it makes: URL and headers (no token in a query string or an Authorization header)."""

    def keep(payload: str | bytes) -> None:
        frames.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", keep)
        socket.on("framesent", keep)

    page.on("websocket", watch)
    page.on("request", lambda request: frames.append(f"{request.url} {request.all_headers()}"))


def what_the_browser_holds(page: Page) -> str:
    """The page's HTML (JupyterLab's page config included) and what its scripts can read in storage."""
    stored = page.evaluate(
        "() => JSON.stringify([document.cookie, Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    return f"{page.content()}\n{stored}"
