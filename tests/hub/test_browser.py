"""A person in a browser (Playwright, Debian's Chromium, headless): signs up and logs in on the hub's
pages, starts a server from the spawn page (only the profiles their tier allows are offered), and
opens the Services menu's entries: the Orchestrator's API documentation and the dashboard, which
Voila renders in their own server from their own executions. Logging out ends it all."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.hub.conftest import needs_root
from tests.hub.team_hub import PASSWORD, TeamHub

pytestmark = [needs_root, pytest.mark.timeout(600)]  # the first test builds the users' environment

#: every request that would leave the machine (Voila's template links a font CDN) fails at once
OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])")


@pytest.fixture
def page() -> Iterator[Page]:
    """Debian's Chromium through Playwright, for this test only: Playwright's sync API runs an event
    loop while it is open, and it must be closed before the next module's tests start theirs (the
    session-wide fixture of pytest-playwright kept it open to the end and broke every later asyncio test)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        context = browser.new_context()
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def open_service(page: Page, name: str) -> None:
    page.get_by_role("button", name="Services").or_(page.get_by_role("link", name="Services")).first.click()
    page.locator(".dropdown-menu").get_by_role("link", name=name, exact=True).click()


def test_sign_up_log_in_start_and_open_the_services(team_hub: TeamHub, page: Page) -> None:
    hub = team_hub
    page.context.route(OFF_MACHINE, lambda route: route.abort())
    page.set_default_timeout(60_000)
    name = f"hana-{secrets.token_hex(2)}"
    hub.accounts.add(f"jupyter-{name}")

    page.goto(f"{hub.url}/hub/signup")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.fill("#password_confirmation_input", PASSWORD)
    page.get_by_role("button", name="Create User").click()
    expect(page.locator(".alert")).to_contain_text("sent to the admin")
    # not yet: an admin approves new accounts
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.locator("#login_submit").click()
    expect(page.locator("#login_submit")).to_be_visible()

    # the admin approves on the authorization page, with its button (a POST)
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    approver = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        admin_page = approver.new_page()
        admin_page.goto(f"{hub.url}/hub/login")
        admin_page.fill("#username_input", admin.name)
        admin_page.fill("#password_input", PASSWORD)
        admin_page.locator("#login_submit").click()
        admin_page.wait_for_url(re.compile(r"/hub/"))
        admin_page.goto(f"{hub.url}/hub/authorize")
        row = admin_page.locator(f"tr#{name}")
        expect(row).to_contain_text("No")
        row.get_by_role("button", name="Authorize").click()
        expect(admin_page.locator(f"tr#{name}")).to_contain_text("Yes")
    finally:
        approver.close()

    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.locator("#login_submit").click()

    # the spawn page offers what the tier allows: a new user's personal organization is on 'free'
    page.goto(f"{hub.url}/hub/spawn")
    profiles = page.locator("#orchestrator-profiles")
    expect(profiles).to_contain_text("CPU small")
    expect(profiles).not_to_contain_text("GPU")
    page.get_by_role("button", name=re.compile("start", re.IGNORECASE)).click()
    page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=120_000)

    # the orchestrator's entry: hub OAuth, then the API's interactive documentation, which loads the
    # OpenAPI document from the service
    page.goto(f"{hub.url}/hub/home")
    with page.expect_response(lambda response: response.url.endswith("/api/v1/openapi.json")) as loaded:
        open_service(page, "orchestrator")
    page.wait_for_url(re.compile(r"/services/orchestrator/orchestrator/docs"))
    expect(page.locator("#swagger-ui")).to_be_attached()
    assert loaded.value.ok
    assert loaded.value.json()["info"]["title"] == "Orchestrator API"
    # Swagger UI 5 renders the OpenAPI 3.1 document: its title and the operations, tag by tag
    expect(page.locator(".info .title")).to_contain_text("Orchestrator API")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    expect(page.locator("#operations-tag-admin")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Unable to render this definition")

    page.goto(f"{hub.url}/hub/home")
    open_service(page, "dashboard")
    page.wait_for_url(re.compile(rf"/user/{name}/voila/render/orchestrator/dashboard.ipynb"))
    expect(page.locator(".dashboard-user")).to_have_text(name, timeout=90_000)
    expect(page.locator(".count-succeeded")).to_have_text("0")
    expect(page.locator("body")).to_contain_text("No executions yet")

    # logging out ends the hub's session and the services' sessions made from it, at once
    page.goto(f"{hub.url}/hub/logout")
    page.goto(f"{hub.url}/services/dashboard/")
    page.wait_for_url(re.compile(r"/hub/login"))
    expect(page.locator("#login_submit")).to_be_visible()
    # the dashboard asked the hub for a new login (its own was revoked), not for the user's server
    assert "client_id=service-dashboard" in unquote(unquote(page.url))
