"""The prebuilt JupyterLab extension in a real JupyterLab (Playwright, Debian's Chromium), against a
real server: the launcher's Orchestrator cards, the Agent builder card opening a notebook that shows
the builder, in which a workflow drawn is checked by its kernel and saved as version 1 (checked
through the API), and "Deploy as workflow…" from the file browser's context menu making a version
with a schedule (checked through the API), the dialog coming back with the reason when the cron is
refused, the notebook toolbar's Schedule… opening it too, and no serious or critical accessibility
violation in the dialog."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.browser import (
    LOAD_TIMEOUT_MS,
    build_and_save,
    chromium_page,
    confirm_deploy,
    fill_deploy_dialog,
    fill_report_inputs,
    launcher_section,
    open_lab_launcher,
    parameters_notebook,
    screenshot,
)

pytestmark = pytest.mark.timeout(300)


def open_lab(page: Page, server: PersonalServer) -> None:
    """A fresh JupyterLab workspace: the launcher is open, the file browser shows the root."""
    open_lab_launcher(page, server.url, f"&token={server.token}")


def test_the_extension_is_installed_prebuilt_and_enabled() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=60
    )
    line = next((ln for ln in (listed.stdout + listed.stderr).splitlines() if "orchestrator-jupyterlab" in ln), "")
    assert "enabled" in line, listed.stdout + listed.stderr
    assert "OK" in line


def test_launcher_cards_open_the_builder(server: PersonalServer, server_root: Path, client: Client) -> None:
    name = f"Lab card {uuid.uuid4().hex[:6]}"
    with chromium_page() as page:
        open_lab(page, server)
        section = launcher_section(page)
        expect(section.locator(".jp-LauncherCard-label")).to_have_text(["Agent builder", "Dashboard", "Admin"])
        screenshot(page, "lab-launcher")
        section.locator(".jp-LauncherCard", has_text="Agent builder").click()
        root = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .ow-root").first
        root.wait_for(timeout=LOAD_TIMEOUT_MS)
        expect(root.locator('.ow-palette-item[data-node-type="input"]')).to_be_visible()
        expect(page.locator(".lm-TabBar-tab.jp-mod-current")).to_contain_text("Agent builder.ipynb")
        screenshot(page, "lab-builder-from-launcher")
        # the builder the card opened talks to its kernel: the nodes drawn are checked there and saved
        root.get_by_label("Workflow name").fill(name)
        build_and_save(root)
    [agent] = [a for a in client.agents(q=name) if a["name"] == name]
    assert [w["version"] for w in client.workflows(agent["id"])] == [1]
    cells = json.loads((server_root / "Agent builder.ipynb").read_text())["cells"]
    assert "Builder()" in "".join(cells[-1]["source"])


def serious_violations(page: Page, selector: str) -> list[str]:
    results = Axe().run(page, context=selector)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def lab_notebook(root: Path, name: str) -> str:
    """A notebook as JupyterLab writes it, with a cell tagged parameters."""
    (root / name).write_text(json.dumps(parameters_notebook(), indent=1))
    return name


def test_deploy_as_workflow_from_the_file_browser(server: PersonalServer, server_root: Path, client: Client) -> None:
    name = lab_notebook(server_root, f"lab-deploy-{uuid.uuid4().hex[:6]}.ipynb")
    agent = f"Lab deploy {uuid.uuid4().hex[:6]}"
    with chromium_page() as page:
        open_lab(page, server)
        dialog = fill_deploy_dialog(page, name, agent, "30 6 * * 1", "Europe/Paris")
        fill_report_inputs(dialog)
        expect(dialog.locator(".jp-orchestrator-cron-preview")).to_contain_text("06:30")
        expect(dialog.locator(".jp-orchestrator-cron-preview")).to_contain_text("Monday")
        screenshot(page, "lab-deploy-dialog")
        assert serious_violations(page, ".jp-Dialog-content") == []

        # a cron the server refuses: the dialog comes back with the error on its field, nothing deployed
        dialog.get_by_label("Cron expression").fill("61 6 * * 1")
        page.get_by_role("button", name=f"Deploy {name}").click()
        expect(page.locator(".jp-Dialog-content [role=alert]")).to_contain_text("not a valid cron expression")
        expect(page.get_by_label("Cron expression")).to_have_attribute("aria-invalid", "true")
        assert not [a for a in client.agents(q=agent) if a["name"] == agent]
        page.get_by_label("Cron expression").fill("30 6 * * 1")
        confirm_deploy(page, name)
        screenshot(page, "lab-deploy-done")

        # the open notebook's toolbar: Schedule… opens the same dialog, scheduled, offering the agent made
        page.locator(".jp-DirListing-item", has_text=name).dblclick()
        toolbar = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar")
        names = toolbar.locator("[data-jp-item-name]")
        expect(names.nth(0)).to_be_visible()
        order = [names.nth(i).get_attribute("data-jp-item-name") for i in range(names.count())]
        assert order.index("cellType") < order.index("orchestrator-deploy") < order.index("orchestrator-schedule")
        toolbar.locator('[data-jp-item-name="orchestrator-schedule"]').get_by_role("button").click()
        expect(page.locator(".jp-Dialog-content")).to_contain_text(f"Schedule {name}")
        screenshot(page, "lab-schedule-from-toolbar")
        expect(page.get_by_label("Run it on a schedule")).to_be_checked()
        expect(page.locator(f'.jp-Dialog-content datalist option[value="{agent}"]')).to_have_count(1)
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator(".jp-Dialog")).to_have_count(0)

    [found] = [a for a in client.agents(q=agent) if a["name"] == agent]
    [workflow] = client.workflows(found["id"])
    assert workflow["version"] == 1
    [schedule] = list(client.pages(f"workflows/{workflow['id']}/schedules"))
    assert (schedule["cron"], schedule["timezone"]) == ("30 6 * * 1", "Europe/Paris")
    assert schedule["inputs"] == {"region": "emea", "limit": 7}
