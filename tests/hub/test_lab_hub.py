"""The JupyterLab extension under the hub, in a real browser: a person signs in on the hub's page,
their own server (a system account of theirs) opens JupyterLab with the launcher's Orchestrator
cards; the Agent builder card opens the builder there; "Deploy as workflow…" on a notebook of theirs
in the file browser, with a schedule, makes the workflow's first version and its schedule through
the hub's Orchestrator service, as that person, with no URL or token typed (checked through the
API with the person's own token), and no token reaches the browser."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.hub.conftest import needs_root
from tests.hub.hub_pages import put_notebook, record_frames, server_token, sign_in, what_the_browser_holds
from tests.hub.team_hub import API, Person, TeamHub
from tests.widgets.browser import (
    chromium_page,
    confirm_deploy,
    fill_deploy_dialog,
    fill_report_inputs,
    launcher_section,
    open_lab_launcher,
    parameters_notebook,
    screenshot,
)

pytestmark = [needs_root, pytest.mark.timeout(600)]  # the first hub test builds the users' environment

LOAD_TIMEOUT_MS = 120_000
NOTEBOOK = "weekly-report.ipynb"


def test_launcher_cards_and_deploy_as_workflow_in_a_users_lab(team_hub: TeamHub) -> None:
    hub = team_hub
    person = hub.person(f"lab-{secrets.token_hex(2)}")
    started = hub.start_server(person, profile="cpu-small")
    assert started.status_code in (201, 202), started.text
    server_url = hub.wait_ready(person)
    put_notebook(server_url, person, NOTEBOOK, parameters_notebook())
    agent = f"Hub report {secrets.token_hex(3)}"

    frames: list[str] = []
    with chromium_page(height=1100, timeout_ms=60_000) as page:
        record_frames(page, frames)
        sign_in(page, hub, person)
        open_lab_launcher(page, server_url, timeout_ms=LOAD_TIMEOUT_MS)
        assert page.url.startswith(f"{server_url}/lab/")  # the person's own server, behind the hub's proxy
        section = launcher_section(page)
        expect(section.locator(".jp-LauncherCard-label")).to_have_text(["Agent builder", "Dashboard", "Admin"])
        screenshot(page, "hub-lab-launcher")

        fill_report_inputs(fill_deploy_dialog(page, NOTEBOOK, agent, "0 7 * * 1-5", "Europe/Berlin"))
        screenshot(page, "hub-lab-deploy-dialog")
        confirm_deploy(page, NOTEBOOK, timeout_ms=60_000)

        section.locator(".jp-LauncherCard", has_text="Agent builder").click()
        root = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .ow-root").first
        root.wait_for(timeout=LOAD_TIMEOUT_MS)
        expect(root.locator('.ow-palette-item[data-node-type="input"]')).to_be_visible()
        held = what_the_browser_holds(page)

    deployed_as_the_person(hub, person, agent)
    token = server_token(server_url, person)
    seen = "\n".join(frames) + held
    assert "orchestrator-lab/deploy" in seen  # the dialog's request is among those recorded
    for secret in (token, person.token):
        assert secret not in seen


def deployed_as_the_person(hub: TeamHub, person: Person, name: str) -> dict[str, Any]:
    """The notebook agent, its workflow's version 1 and its schedule, as the person sees them through the
    API: in their personal organization, made by them; the hub's admin (another organization) sees none."""
    me = hub.get(f"{API}/users/me", person.token).json()
    [personal] = [m["org_id"] for m in me["memberships"] if m["personal"]]
    agents = hub.get(f"{API}/agents", person.token, params={"q": name}).json()["items"]
    [agent] = [a for a in agents if a["name"] == name]
    assert (agent["org_id"], agent["framework"], agent["created_by"]) == (personal, "notebook", me["id"])
    [workflow] = hub.get(f"{API}/agents/{agent['id']}/workflows", person.token).json()["items"]
    assert workflow["version"] == 1
    assert workflow["parameters"] == [
        {"name": "region", "default": "emea", "type": "str"},
        {"name": "limit", "default": 5, "type": "int"},
    ]
    first = hub.get(f"{API}/workflows/{workflow['id']}/versions/1", person.token).json()
    assert first["created_by"] == me["id"]
    [schedule] = hub.get(f"{API}/workflows/{workflow['id']}/schedules", person.token).json()["items"]
    assert (schedule["cron"], schedule["timezone"], schedule["enabled"]) == ("0 7 * * 1-5", "Europe/Berlin", True)
    assert schedule["inputs"] == {"region": "emea", "limit": 7}
    assert schedule["next_run_at"]
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    assert hub.get(f"{API}/workflows/{workflow['id']}", admin.token).status_code == 404
    return dict(workflow)
