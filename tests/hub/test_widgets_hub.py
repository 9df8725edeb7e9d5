"""The builder and the execution view under the hub, in a real browser: a person signs in on the
hub's page, their own server (a system account of theirs) opens a notebook in JupyterLab that
creates ``Builder()``; they drag three nodes in, connect them, save and run, watch every node turn
done, then an ``ExecutionView`` of that run, there and in Voila. The widgets' Python side calls the API through
``orchestrator_ext.client`` with the server's own token (the person's identity): the workflow saved
belongs to the person's personal organization, and no token reaches the browser (not in the page's
HTML, not in anything the kernel sent the page, not in storage or the cookies scripts can read)."""

from __future__ import annotations

import re
import secrets
import shutil
from typing import Any

import pytest
import requests
from playwright.sync_api import Locator, Page, WebSocket, expect, sync_playwright

from tests.hub.conftest import needs_root
from tests.hub.kernels import Kernel, run_async
from tests.hub.team_hub import API, PASSWORD, Person, TeamHub
from tests.widgets.browser import screenshot
from tests.widgets.sample_specs import CODE

pytestmark = [needs_root, pytest.mark.timeout(600)]  # the first hub test builds the users' environment

OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])")
STEPS = ("input_1", "code_1", "output_1")
LOAD_TIMEOUT_MS = 120_000


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


def write_notebook(server_url: str, person: Person, path: str, cells: list[str]) -> None:
    """The notebook in the person's home, through their server's contents API (as their account)."""
    content: dict[str, Any] = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": s}
            for i, s in enumerate(cells)
        ],
    }
    saved = requests.put(
        f"{server_url}/api/contents/{path}",
        json={"type": "notebook", "format": "json", "content": content},
        headers=person.headers,
        timeout=30,
    )
    assert saved.status_code in (200, 201), saved.text


def sign_in(page: Page, hub: TeamHub, person: Person) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", person.name)
    page.fill("#password_input", PASSWORD)
    page.locator("#login_submit").click()
    page.wait_for_url(re.compile(r"/(hub|user)/"))


def run_cell(page: Page, index: int) -> None:
    """Run the notebook's cell ``index`` (its prompt first: a widget's click makes its own cell active)."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .jp-InputPrompt").nth(index).click()
    page.keyboard.press("Shift+Enter")


def build_save_and_run(root: Locator) -> None:
    from tests.widgets.test_browser import connect, drop, node

    drop(root, "input", 200, 70)
    drop(root, "code", 200, 200)
    drop(root, "output", 200, 330)
    expect(root.locator(".ow-node")).to_have_count(3)
    connect(root, "input_1", "code_1")
    connect(root, "code_1", "output_1")
    expect(root.locator(".react-flow__edge")).to_have_count(2)
    node(root, "code_1").click()
    root.get_by_label("Source", exact=True).fill(CODE)
    expect(root.locator(".ow-valid")).to_have_text("✓ The workflow is valid.", timeout=30_000)
    root.get_by_role("button", name="Save", exact=True).click()
    expect(root.locator(".ow-status")).to_contain_text("Saved as version 1", timeout=30_000)
    root.get_by_role("button", name="Run…").click()
    root.get_by_role("button", name="Start the run").click()
    for step in STEPS:
        expect(root.locator(f'[data-node-id="{step}"][data-state="done"]')).to_be_visible(timeout=180_000)


def record_frames(page: Page, frames: list[str]) -> None:
    """Keep every websocket frame the page receives or sends (the kernel's messages: the widgets' state)
    and every request it makes."""

    def keep(payload: str | bytes) -> None:
        frames.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

    def watch(socket: WebSocket) -> None:
        socket.on("framereceived", keep)
        socket.on("framesent", keep)

    page.on("websocket", watch)
    # and every request it makes: URL and headers (no token in a query string or an Authorization header)
    page.on("request", lambda request: frames.append(f"{request.url} {request.all_headers()}"))


def what_the_browser_holds(page: Page) -> str:
    """The page's HTML (JupyterLab's page config included) and what its scripts can read in storage."""
    stored = page.evaluate(
        "() => JSON.stringify([document.cookie, Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    return f"{page.content()}\n{stored}"


def in_lab(page: Page, server_url: str) -> tuple[str, str]:
    """Build, save and run in the notebook's Builder, then its ExecutionView; what the browser holds, the run's id."""
    page.goto(f"{server_url}/lab/tree/widgets.ipynb", timeout=LOAD_TIMEOUT_MS)
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=LOAD_TIMEOUT_MS)
    run_cell(page, 0)
    builder = page.locator(".ow-root").first
    builder.wait_for(timeout=LOAD_TIMEOUT_MS)
    # the widget's client found the service from the hub's description, with the server's token: nothing set by hand
    expect(page.locator(".jp-OutputArea-output").first).to_have_text("API found through the hub")
    build_save_and_run(builder)
    screenshot(page, "hub-builder-run-done")
    run_cell(page, 1)
    view = page.locator(".ow-root").nth(1)
    for step in STEPS:
        expect(view.locator(f'[data-node-id="{step}"][data-state="done"]')).to_be_visible(timeout=60_000)
    expect(view.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")
    view.scroll_into_view_if_needed()
    screenshot(page, "hub-execution-view")
    execution_id = (view.locator(".ow-exec-id").text_content() or "").removeprefix("Execution ").strip()
    return what_the_browser_holds(page), execution_id


def in_voila(page: Page, server_url: str) -> str:
    """The run's ExecutionView in Voila, in the person's server; what the browser holds."""
    page.goto(f"{server_url}/voila/render/view.ipynb", timeout=LOAD_TIMEOUT_MS)
    root = page.locator(".ow-root").first
    root.wait_for(timeout=LOAD_TIMEOUT_MS)
    for step in STEPS:
        expect(root.locator(f'[data-node-id="{step}"][data-state="done"]')).to_be_visible(timeout=60_000)
    expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")
    screenshot(page, "hub-execution-view-voila")
    return what_the_browser_holds(page)


def test_the_widgets_act_as_the_signed_in_user_and_no_token_reaches_the_browser(team_hub: TeamHub) -> None:
    hub = team_hub
    person = hub.person(f"wid-{secrets.token_hex(2)}")
    started = hub.start_server(person, profile="cpu-small")
    assert started.status_code in (201, 202), started.text
    server_url = hub.wait_ready(person)
    token = server_token(server_url, person)
    assert len(token) >= 16
    name = f"Hub builder {secrets.token_hex(3)}"
    cells = [
        "from orchestrator_widgets import Builder, ExecutionView\n"
        f"builder = Builder(name={name!r})\n"
        "print('API found through the', builder.client.connection.source)\n"
        "builder",
        "ExecutionView(builder.follower.execution_id)",
    ]
    write_notebook(server_url, person, "widgets.ipynb", cells)

    frames: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        context.route(OFF_MACHINE, lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(60_000)
        record_frames(page, frames)
        try:
            sign_in(page, hub, person)
            held, execution_id = in_lab(page, server_url)
            view = f"from orchestrator_widgets import ExecutionView\nExecutionView({execution_id!r})"
            write_notebook(server_url, person, "view.ipynb", [view])
            held += in_voila(page, server_url)
        finally:
            context.close()
            browser.close()

    workflow = saved_workflow(hub, person, name)
    # what the kernel sent the page is recorded (the saved workflow's id is in it), and holds no token
    sent = "\n".join(frames)
    assert workflow["id"] in sent
    for secret in (token, person.token):
        assert secret not in sent
        assert secret not in held


def saved_workflow(hub: TeamHub, person: Person, name: str) -> dict[str, Any]:
    """The workflow the widget saved, as the person sees it through the API: in their personal organization."""
    me = hub.get(f"{API}/users/me", person.token).json()
    assert me["username"] == person.name
    [personal] = [m["org_id"] for m in me["memberships"] if m["personal"]]
    agents = hub.get(f"{API}/agents", person.token, params={"q": name}).json()["items"]
    [agent] = [a for a in agents if a["name"] == name]
    assert agent["org_id"] == personal
    assert agent["created_by"] == me["id"]
    [workflow] = hub.get(f"{API}/agents/{agent['id']}/workflows", person.token).json()["items"]
    assert (workflow["name"], workflow["version"], workflow["org_id"]) == (name, 1, personal)
    first = hub.get(f"{API}/workflows/{workflow['id']}/versions/1", person.token).json()
    assert first["created_by"] == me["id"]
    [run] = hub.get(f"{API}/executions", person.token, params={"workflow_id": workflow["id"]}).json()["items"]
    assert run["status"] == "succeeded"
    # the hub's admin, a user of another organization, does not see it
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    assert hub.get(f"{API}/workflows/{workflow['id']}", admin.token).status_code == 404
    return dict(workflow)
