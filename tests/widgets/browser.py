"""Opening the widgets and the JupyterLab extension in a real browser (Playwright, Debian's Chromium),
and the steps several tests take there (personal server, Notebook 7, JupyterLab under the hub, the
quickstart): build a three-step workflow in the builder and run it, deploy a notebook from the file
browser. Screenshots are kept where ``ORCHESTRATOR_SCREENSHOTS`` says (for people to look at)."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.personal_server import PersonalServer
from tests.widgets.sample_specs import CODE

#: every request that would leave the machine (Voila's template links a font CDN) fails at once
OFF_MACHINE = re.compile(r"^(https?|wss?)://(?!(127\.0\.0\.1|localhost)[:/])")
LOAD_TIMEOUT_MS = 90_000
#: the nodes of the three-step workflow the builder tests draw
STEPS = ("input_1", "code_1", "output_1")


@contextmanager
def chromium_page(width: int = 1500, height: int = 1000, timeout_ms: int = 30_000) -> Iterator[Page]:
    """A fresh browser for one test (Playwright's loop must not outlive it: see tests/hub/test_browser.py)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium")
        context = browser.new_context(viewport={"width": width, "height": height})
        context.route(OFF_MACHINE, lambda route: route.abort())
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
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


def open_lab_launcher(page: Page, server_url: str, query: str = "", timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
    """A fresh JupyterLab workspace at ``server_url`` (a personal server, or a user's server under the
    hub): the launcher is open, the file browser shows the root. ``query``: e.g. ``&token=...``."""
    workspace = f"t{uuid.uuid4().hex[:8]}"
    page.goto(f"{server_url}/lab/workspaces/{workspace}?reset{query}", timeout=timeout_ms)
    page.locator(".jp-Launcher").first.wait_for(timeout=timeout_ms)


def launcher_section(page: Page, title: str = "Orchestrator") -> Locator:
    """A section of the launcher: Orchestrator's (its cards: Agent builder, Dashboard, Admin), or
    ``Notebook`` (a card per kernel)."""
    heading = page.locator(".jp-Launcher-sectionTitle", has_text=re.compile(f"^{re.escape(title)}$"))
    return page.locator(".jp-Launcher-section").filter(has=heading)


# ---- the builder ------------------------------------------------------------------------


def node(root: Locator, node_id: str) -> Locator:
    return root.locator(f'.react-flow__node:has([data-node-id="{node_id}"])')


def drop(root: Locator, node_type: str, x: int, y: int) -> None:
    pane = root.locator(".react-flow__pane")
    root.locator(f'.ow-palette-item[data-node-type="{node_type}"]').drag_to(pane, target_position={"x": x, "y": y})


def connect(root: Locator, source: str, target: str) -> None:
    out = root.locator(f'[data-node-id="{source}"] .react-flow__handle.source')
    into = root.locator(f'[data-node-id="{target}"] .react-flow__handle.target')
    out.drag_to(into)


def build_and_save(root: Locator, middle: str = "code", timeout_ms: int = 15_000) -> None:
    """Drag input, ``middle`` (a code node, or a model node: its settings are filled after) and output
    onto the canvas, connect them; a code node gets :data:`CODE`. Saved when valid, as version 1."""
    drop(root, "input", 200, 70)
    drop(root, middle, 200, 200)
    drop(root, "output", 200, 330)
    expect(root.locator(".ow-node")).to_have_count(3)
    connect(root, "input_1", f"{middle}_1")
    connect(root, f"{middle}_1", "output_1")
    expect(root.locator(".react-flow__edge")).to_have_count(2)
    if middle == "code":
        node(root, "code_1").click()
        root.get_by_label("Source", exact=True).fill(CODE)
        save_first_version(root, timeout_ms)


def save_first_version(root: Locator, timeout_ms: int = 15_000) -> None:
    try:
        expect(root.locator(".ow-valid")).to_have_text("✓ The workflow is valid.", timeout=timeout_ms)
    except AssertionError as exc:  # say what the builder found wrong
        raise AssertionError(f"not valid: {root.locator('.ow-problems').inner_text()}") from exc
    root.get_by_role("button", name="Save", exact=True).click()
    expect(root.locator(".ow-status")).to_contain_text("Saved as version 1", timeout=timeout_ms)


def run_until_done(root: Locator, steps: tuple[str, ...] = STEPS, timeout_ms: int = 120_000) -> None:
    """Run… then Start the run (no inputs asked), and wait until every node of ``steps`` is done."""
    root.get_by_role("button", name="Run…").click()
    root.get_by_role("button", name="Start the run").click()
    for step in steps:
        expect(root.locator(f'[data-node-id="{step}"][data-state="done"]')).to_be_visible(timeout=timeout_ms)
    expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")


# ---- "Deploy as workflow…" -----------------------------------------------------------------


def parameters_notebook() -> dict[str, Any]:
    """A notebook as JupyterLab writes it (``source`` as a list of lines), with a cell tagged parameters."""
    cells = [
        (["parameters"], ['region = "emea"\n', "limit = 5\n"]),
        ([], ["print(region * limit)"]),
    ]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": f"c{i}",
                "metadata": {"tags": tags} if tags else {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for i, (tags, source) in enumerate(cells)
        ],
    }


def fill_deploy_dialog(page: Page, notebook: str, agent: str, cron: str, timezone: str) -> Locator:
    """Right-click ``notebook`` (its name in the file browser's folder) in the file browser, Deploy as
    workflow…, and fill the dialog: the agent, a schedule (its preview read back), the time zone. The dialog."""
    name = notebook.rsplit("/", 1)[-1]
    page.locator(".jp-DirListing-item", has_text=name).click(button="right")
    page.get_by_role("menuitem", name="Deploy as workflow…").click()
    dialog = page.locator(".jp-Dialog-content")
    dialog.wait_for()
    expect(dialog.get_by_label("Agent", exact=True)).to_have_value(name.removesuffix(".ipynb"))
    dialog.get_by_label("Agent", exact=True).fill(agent)
    dialog.get_by_label("Run it on a schedule").check()
    dialog.get_by_label("Cron expression").fill(cron)
    expect(dialog.locator(".jp-orchestrator-cron-preview")).not_to_be_empty()
    dialog.get_by_label("Time zone").select_option(timezone)
    return dialog


def fill_report_inputs(dialog: Locator) -> None:
    """The inputs of :func:`parameters_notebook` in the dialog: ``region`` as found, ``limit`` set to 7."""
    expect(dialog.get_by_label("region")).to_have_value("emea")
    dialog.get_by_label("limit").fill("7")


def confirm_deploy(page: Page, notebook: str, version: int = 1, timeout_ms: int = 30_000) -> None:
    """Press Deploy; the note in the corner says which version of the workflow was made."""
    page.get_by_role("button", name=f"Deploy {notebook.rsplit('/', 1)[-1]}").click()
    note = page.locator(".jp-toast-container, .Toastify")
    expect(note).to_contain_text(f"version {version}", timeout=timeout_ms)


# ---- screenshots --------------------------------------------------------------------------


def screenshot(page: Page, name: str, clip: Locator | None = None) -> None:
    """Keep a screenshot when ORCHESTRATOR_SCREENSHOTS names a folder (of ``clip`` alone when given)."""
    folder = os.environ.get("ORCHESTRATOR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (clip or page).screenshot(path=str(Path(folder) / f"{name}.png"))
