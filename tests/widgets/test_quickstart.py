"""docs/quickstart.md, followed step by step in a real browser against a real personal server with the
local model (SmolLM2 on llama-cpp-python), as a new user does after the README's two commands:

1. JupyterLab's launcher shows the Orchestrator cards; Agent builder opens the builder;
2. they draw input -> model -> output, save it and run it: the model node answers from the local model;
3. they open ``notebooks/langgraph_starter.ipynb`` (on its Orchestrator · LangGraph kernel) and run
   all its cells: ``%orchestrator deploy`` makes a scheduled workflow, ``%orchestrator run`` runs it on
   the platform (the local model again);
4. "Deploy as workflow…" on that notebook from the file browser gives it a schedule;
5. the dashboard (``notebooks/dashboard.ipynb`` in Voila) shows the agent and its run.

Each step is checked through the API too. With ``ORCHESTRATOR_SCREENSHOTS=docs/img`` the pictures of
docs/quickstart.md are written (cropped to the panel each step is about).
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer, start_personal_server, wait_postgres_stopped
from tests.widgets.browser import (
    LOAD_TIMEOUT_MS,
    build_and_save,
    chromium_page,
    confirm_deploy,
    fill_deploy_dialog,
    launcher_section,
    node,
    open_in_voila,
    open_lab_launcher,
    save_first_version,
    screenshot,
)
from tests.widgets.conftest import NOTIFICATIONS

pytestmark = pytest.mark.timeout(300)
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
MODEL_STEPS = ("input_1", "model_1", "output_1")
STARTER = "notebooks/langgraph_starter.ipynb"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    """``jupyter orchestrator`` in a folder holding the clone's notebooks/, with the local model, as the
    quickstart's step 1 starts it (the framework kernels are those the install wrote)."""
    root = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    settings = root / "jupyter-config" / NOTIFICATIONS
    settings.parent.mkdir(parents=True)
    settings.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    quiet = {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false", "AGNO_TELEMETRY": "false"}
    running = start_personal_server(root, root / "data", local_model=True, extra_env=quiet)
    try:
        yield running
    finally:
        running.stop(signal.SIGTERM)
        wait_postgres_stopped(running.pgdata)


def build_a_model_agent(page: Page, server: PersonalServer) -> Locator:
    """The launcher's Agent builder card opens a builder; in notebooks/builder.ipynb (named *My first
    agent*) input -> model -> output drawn, the prompt written, saved."""
    section = launcher_section(page)
    expect(section.locator(".jp-LauncherCard-label")).to_have_text(["Agent builder", "Dashboard", "Admin"])
    screenshot(page, "quickstart-launcher", clip=section)
    section.locator(".jp-LauncherCard", has_text="Agent builder").click()
    card = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .ow-root").first
    expect(card.locator('.ow-palette-item[data-node-type="model"]')).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    page.goto(f"{server.url}/lab/tree/notebooks/builder.ipynb", timeout=LOAD_TIMEOUT_MS)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("| Idle", timeout=LOAD_TIMEOUT_MS)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt").first.click()
    page.keyboard.press("Shift+Enter")
    root = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .ow-root").first
    root.wait_for(timeout=LOAD_TIMEOUT_MS)
    expect(root.get_by_label("Workflow name")).to_have_value("My first agent")
    build_and_save(root, middle="model", timeout_ms=30_000)
    node(root, "model_1").click()
    root.get_by_label("Prompt").fill("Write one short sentence about {topic}.")
    root.get_by_label("Max Tokens", exact=True).fill("24")
    save_first_version(root, timeout_ms=30_000)
    return root


def run_on_the_local_model(root: Locator) -> None:
    """Run… with the inputs as JSON; every node done, the model node's answer shown."""
    root.get_by_role("button", name="Run…").click()
    dialog = root.get_by_role("dialog")
    dialog.get_by_label("Inputs (JSON)").fill('{"topic": "green tea"}')
    dialog.get_by_role("button", name="Start the run").click()
    for step in MODEL_STEPS:
        expect(root.locator(f'[data-node-id="{step}"][data-state="done"]')).to_be_visible(timeout=120_000)
    expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")
    node(root, "model_1").click()
    expect(root.get_by_label("Output of model_1")).not_to_be_empty()


def run_all_cells(page: Page, notebook: str) -> Locator:
    """Open ``notebook`` in JupyterLab on its own kernel and Run All Cells (again while its first code
    cell's prompt stays ``[ ]``: a run asked for before the kernel is attached does nothing); its panel."""
    page.goto(f"{page.url.split('/lab')[0]}/lab/tree/{notebook}", timeout=LOAD_TIMEOUT_MS)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator('[data-jp-item-name="kernelName"]')).to_contain_text("Orchestrator", timeout=LOAD_TIMEOUT_MS)
    prompt = panel.locator(".jp-CodeCell .jp-InputPrompt").first
    for _ in range(12):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            expect(prompt).not_to_have_text(re.compile(r"^\[\s*\]:$"), timeout=5_000)
            return panel
        except AssertionError:
            continue
    raise AssertionError(f"{notebook}: Run All Cells ran nothing")


def test_the_quickstart_in_a_browser(quickstart: PersonalServer) -> None:
    server, client = quickstart, Client(quickstart.url, quickstart.token)
    with chromium_page(height=1000) as page:
        open_lab_launcher(page, server.url, f"&token={server.token}")
        root = build_a_model_agent(page, server)
        run_on_the_local_model(root)
        screenshot(page, "quickstart-builder-run", clip=root)
        [built] = client.executions(workflow_id=one_workflow(client, "My first agent")["id"])
        assert built["status"] == "succeeded"
        assert str(built["outputs"]).strip()

        panel = run_all_cells(page, STARTER)
        expect(panel.locator(".jp-OutputArea-output", has_text="succeeded").first).to_be_visible(timeout=180_000)
        panel.locator(".jp-Cell").last.scroll_into_view_if_needed()
        screenshot(page, "quickstart-starter-deployed", clip=panel)
        starter = one_workflow(client, "LangGraph starter")
        [ran] = client.executions(workflow_id=starter["id"])
        assert (ran["status"], ran["inputs"]) == ("succeeded", {"topic": "jasmine tea"})
        assert str(ran["outputs"]["answer"]).strip()

        dialog = fill_deploy_dialog(page, STARTER, "LangGraph starter", "0 8 * * 1-5", "Europe/Paris")
        expect(dialog.get_by_label("topic")).to_have_value("green tea")
        screenshot(page, "quickstart-deploy-dialog", clip=dialog)
        confirm_deploy(page, STARTER, version=2)

        dashboard = open_in_voila(page, server, "notebooks/dashboard.ipynb")
        expect(dashboard.locator(".ow-agents")).to_contain_text("LangGraph starter", timeout=30_000)
        expect(dashboard.locator(".ow-agents")).to_contain_text("My first agent")
        row = dashboard.locator(f'.latest-runs tr[data-execution-id="{ran["id"]}"]')
        expect(row).to_have_attribute("data-status", "succeeded", timeout=30_000)
        screenshot(page, "quickstart-dashboard", clip=dashboard)

    assert client.workflow(starter["id"])["version"] == 2
    [schedule] = list(client.pages(f"workflows/{starter['id']}/schedules"))
    assert (schedule["cron"], schedule["timezone"]) == ("0 8 * * 1-5", "Europe/Paris")
    assert schedule["inputs"] == {"topic": "green tea"}


def one_workflow(client: Client, name: str) -> dict[str, Any]:
    [workflow] = [w for a in client.agents(q=name) for w in client.workflows(a["id"]) if w["name"] == name]
    return dict(workflow)
