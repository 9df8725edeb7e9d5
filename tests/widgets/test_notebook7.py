"""The builder and the execution view in Notebook 7 (the ``notebook`` package's /tree and
/notebooks/<path> pages, served by the same jupyter-server as JupyterLab and Voila), in a real
browser against a real server: the notebook the project ships for people (notebooks/builder.ipynb)
is opened from the file tree and run, the Builder renders, three nodes are dragged in from the
palette and connected, the version saved exists through the API, the Run tab shows every node
done, and an ``ExecutionView`` of that run in another notebook shows the same."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Locator, Page, expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.browser import (
    LOAD_TIMEOUT_MS,
    STEPS,
    build_and_save,
    chromium_page,
    node,
    run_until_done,
    screenshot,
)
from tests.widgets.sample_specs import CODE

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[2]


def shipped_builder(server_root: Path, name: str) -> str:
    """notebooks/builder.ipynb as the project ships it, under a new file name, its workflow named ``name``."""
    notebook = nbformat.read(ROOT / "notebooks" / "builder.ipynb", as_version=4)
    [cell] = [c for c in notebook.cells if "Builder(" in c.source]
    assert 'name="My first agent"' in cell.source
    cell.source = cell.source.replace('name="My first agent"', f"name={name!r}")
    path = f"nb7-builder-{uuid.uuid4().hex[:6]}.ipynb"
    nbformat.write(notebook, server_root / path)
    return path


def run_in_notebook7(page: Page, server: PersonalServer, path: str) -> Locator:
    """Open ``path`` from Notebook 7's file tree, run all its cells (Run menu), give the widget's root."""
    page.goto(f"{server.url}/tree?token={server.token}", timeout=LOAD_TIMEOUT_MS)
    with page.context.expect_page() as opened:  # Notebook 7 opens a notebook in a new browser tab
        page.locator(".jp-DirListing-item", has_text=path).dblclick()
    notebook = opened.value
    notebook.set_default_timeout(30_000)
    notebook.wait_for_url(f"**/notebooks/{path}", timeout=LOAD_TIMEOUT_MS)
    notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=LOAD_TIMEOUT_MS)
    run_all_cells(notebook)
    root = notebook.locator(".ow-root").first
    try:
        root.wait_for(timeout=LOAD_TIMEOUT_MS)
    except Exception:
        screenshot(notebook, f"notebook7-no-widget-{path}")
        raise
    return root


def run_all_cells(notebook: Page) -> None:
    """Run > Run All Cells, again while the code cell's prompt stays ``[ ]``: Notebook 7's indicator says
    idle before the kernel's session is attached, and a run asked for before that does nothing."""
    prompt = notebook.locator(".jp-CodeCell .jp-InputPrompt").last
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while True:
        notebook.get_by_role("menuitem", name="Run", exact=True).click()
        notebook.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            expect(prompt).not_to_have_text(re.compile(r"^\[\s*\]:$"), timeout=5_000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_build_save_and_run_in_notebook7(
    server: PersonalServer, client: Client, server_root: Path, write_notebook: Callable[[str, str], str]
) -> None:
    name = f"Notebook 7 {uuid.uuid4().hex[:6]}"
    path = shipped_builder(server_root, name)
    with chromium_page() as page:
        root = run_in_notebook7(page, server, path)
        tab = root.page
        expect(tab.locator("#main-panel, .jp-NotebookPanel").first).to_be_visible()
        assert "/lab" not in tab.url  # Notebook 7's own page, not JupyterLab's
        build_and_save(root)
        screenshot(tab, "builder-notebook7-saved")

        [workflow] = [w for a in client.agents(q=name) for w in client.workflows(a["id"]) if w["name"] == name]
        assert workflow["version"] == 1
        assert [n["type"] for n in workflow["spec"]["nodes"]] == ["input", "code", "output"]
        assert workflow["spec"]["nodes"][1]["config"]["source"] == CODE

        run_until_done(root)
        screenshot(tab, "execution-notebook7-builder-run")

        [run] = client.executions(workflow_id=workflow["id"])
        assert run["status"] == "succeeded"
        view = write_notebook(
            f"nb7-view-{uuid.uuid4().hex[:6]}.ipynb",
            f"from orchestrator_widgets import ExecutionView\nExecutionView({run['id']!r})",
        )
        root = run_in_notebook7(page, server, view)
        for step in STEPS:
            expect(root.locator(f'[data-node-id="{step}"][data-state="done"]')).to_be_visible(timeout=60_000)
        expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")
        expect(root.get_by_role("button", name="Cancel")).to_be_disabled()  # a finished run
        node(root, "code_1").click()
        expect(root.get_by_label("Output of code_1")).to_have_text("42")
        screenshot(root.page, "execution-notebook7-view")
