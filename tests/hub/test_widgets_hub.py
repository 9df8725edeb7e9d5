"""The builder and the execution view under the hub, in a real browser: a person signs in on the
hub's page, their own server (a system account of theirs) opens a notebook in JupyterLab that
creates ``Builder()``; they drag three nodes in, connect them, save and run, watch every node turn
done, then an ``ExecutionView`` of that run, there and in Voila. The widgets' Python side calls the API through
``orchestrator_ext.client`` with the server's own token (the person's identity): the workflow saved
belongs to the person's personal organization, and no token reaches the browser (not in the page's
HTML, not in anything the kernel sent the page, not in storage or the cookies scripts can read)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.hub.conftest import needs_root
from tests.hub.hub_pages import (
    code_notebook,
    put_notebook,
    record_frames,
    run_cell,
    server_token,
    sign_in,
    what_the_browser_holds,
)
from tests.hub.team_hub import API, Person, TeamHub
from tests.widgets.browser import STEPS, build_and_save, chromium_page, run_until_done, screenshot

pytestmark = [needs_root, pytest.mark.timeout(600)]  # the first hub test builds the users' environment

LOAD_TIMEOUT_MS = 120_000


def in_lab(page: Page, server_url: str) -> tuple[str, str]:
    """Build, save and run in the notebook's Builder, then its ExecutionView; what the browser holds, the run's id."""
    page.goto(f"{server_url}/lab/tree/widgets.ipynb", timeout=LOAD_TIMEOUT_MS)
    page.locator("#jp-main-statusbar").get_by_text("Idle").wait_for(timeout=LOAD_TIMEOUT_MS)
    run_cell(page, 0)
    builder = page.locator(".ow-root").first
    builder.wait_for(timeout=LOAD_TIMEOUT_MS)
    # the widget's client found the service from the hub's description, with the server's token: nothing set by hand
    expect(page.locator(".jp-OutputArea-output").first).to_have_text("API found through the hub")
    build_and_save(builder, timeout_ms=30_000)
    run_until_done(builder, timeout_ms=180_000)
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
    put_notebook(server_url, person, "widgets.ipynb", code_notebook(cells))

    frames: list[str] = []
    with chromium_page(height=1100, timeout_ms=60_000) as page:
        record_frames(page, frames)
        sign_in(page, hub, person)
        held, execution_id = in_lab(page, server_url)
        view = f"from orchestrator_widgets import ExecutionView\nExecutionView({execution_id!r})"
        put_notebook(server_url, person, "view.ipynb", code_notebook([view]))
        held += in_voila(page, server_url)

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
