"""The builder and the execution view in a real browser, against a real server: in JupyterLab a
person builds a three-node LangGraph workflow by dragging from the palette and connecting handles,
sees a broken edge marked and cleared, saves v1, edits and saves v2, runs it and watches every node
turn done; in Voila they approve a waiting run, build with the keyboard only, and axe finds no
serious or critical accessibility violation in the builder or the execution view."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Locator, Page, expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.browser import chromium_page, connect, drop, node, open_in_lab, open_in_voila, screenshot
from tests.widgets.sample_specs import CODE, with_approval

pytestmark = pytest.mark.timeout(300)
WriteNotebook = Callable[[str, str], str]
ROOT = Path(__file__).resolve().parents[2]


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page, context=".ow-root")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_build_check_save_edit_and_run_in_lab(
    server: PersonalServer, client: Client, write_notebook: WriteNotebook
) -> None:
    name = "Three steps in Lab"
    notebook = write_notebook("build.ipynb", f"from orchestrator_widgets import Builder\nBuilder(name={name!r})")
    with chromium_page() as page:
        root = open_in_lab(page, server, notebook)
        drop(root, "input", 200, 70)
        drop(root, "code", 200, 200)
        drop(root, "output", 200, 330)
        expect(root.locator(".ow-node")).to_have_count(3)
        connect(root, "input_1", "code_1")
        connect(root, "code_1", "output_1")
        expect(root.locator(".react-flow__edge")).to_have_count(2)
        # the code node has no code yet: marked at once
        expect(root.locator('[data-node-id="code_1"].ow-node-invalid')).to_be_visible()
        node(root, "code_1").click()
        source = root.get_by_label("Source", exact=True)
        if source.count():  # the node type's config schema names its fields
            source.fill(CODE)
        else:  # a schema without node configs: the settings as JSON
            root.get_by_label("Settings (JSON)").fill(json.dumps({"source": CODE}))
        expect(root.locator('[data-node-id="code_1"].ow-node-invalid')).to_have_count(0)
        screenshot(page, "builder-lab-node-form")

        # a broken edge: a condition that does not parse is marked on the edge, then fixed
        root.locator(".react-flow__edge").nth(1).click(force=True)
        condition = root.get_by_role("textbox", name="Condition")
        condition.fill("code_1 ===")
        expect(root.locator(".react-flow__edge.ow-edge-invalid")).to_have_count(1, timeout=15_000)
        expect(root.locator(".ow-problems")).to_contain_text("not a valid expression")
        screenshot(page, "builder-lab-broken-edge")
        condition.fill("")
        expect(root.locator(".react-flow__edge.ow-edge-invalid")).to_have_count(0, timeout=15_000)
        expect(root.locator(".ow-valid")).to_have_text("✓ The workflow is valid.", timeout=15_000)

        root.get_by_role("button", name="Save", exact=True).click()
        expect(root.locator(".ow-status")).to_contain_text("Saved as version 1", timeout=15_000)
        [workflow] = [w for a in client.agents() for w in client.workflows(a["id"]) if w["name"] == name]
        assert workflow["version"] == 1
        assert len(workflow["spec"]["nodes"]) == 3

        node(root, "code_1").click()
        root.get_by_label("Label").fill("Compute")
        root.get_by_label("What changed (saved with the version)").fill("a label")
        root.get_by_role("button", name="Save", exact=True).click()
        expect(root.locator(".ow-status")).to_contain_text("Saved as version 2", timeout=15_000)
        assert client.workflow(workflow["id"])["spec"]["nodes"][1]["label"] == "Compute"
        root.locator(".ow-changes summary").click()
        expect(root.locator(".ow-changes")).to_contain_text("changed node code_1: label")

        root.get_by_role("button", name="Run…").click()
        root.get_by_role("button", name="Start the run").click()
        for node_id in ("input_1", "code_1", "output_1"):
            expect(root.locator(f'[data-node-id="{node_id}"][data-state="done"]')).to_be_visible(timeout=120_000)
        expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")
        node(root, "code_1").click()
        expect(root.get_by_label("Output of code_1")).to_have_text("42")
        screenshot(page, "execution-lab-done")


def test_approve_a_waiting_run_in_voila_with_no_serious_violations(
    server: PersonalServer, client: Client, write_notebook: WriteNotebook
) -> None:
    agent = client.create_agent("Approved in Voila", "langgraph")
    workflow = client.create_workflow(agent["id"], "Ship it", with_approval())
    builder = write_notebook(
        "edit.ipynb", f"from orchestrator_widgets import Builder\nBuilder(workflow_id={workflow['id']!r})"
    )
    with chromium_page() as page:
        root = open_in_voila(page, server, builder)
        expect(root.locator(".ow-node")).to_have_count(4)
        expect(root.locator(".ow-valid")).to_be_visible(timeout=15_000)
        screenshot(page, "builder-voila")
        assert serious_violations(page) == []

        root.get_by_role("button", name="Run…").click()
        dialog = root.get_by_role("dialog")
        assert serious_violations(page) == []
        dialog.get_by_role("button", name="Start the run").click()
        expect(root.locator('[data-node-id="check"][data-state="waiting"]')).to_be_visible(timeout=120_000)
        expect(root.locator(".ow-question")).to_have_text("Ship 42?")
        screenshot(page, "execution-voila-waiting")
        assert serious_violations(page) == []
        root.get_by_label("Comment (optional)").fill("looks right")
        root.get_by_role("button", name="Approve").click()
        expect(root.locator('[data-node-id="end"][data-state="done"]')).to_be_visible(timeout=120_000)
        expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded")
        screenshot(page, "execution-voila-approved")
    runs = client.executions(workflow_id=workflow["id"])
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["outputs"]["output"] == {"approved": True, "comment": "looks right"}


def test_execution_view_in_voila_and_the_keyboard_only_builder(
    server: PersonalServer, client: Client, write_notebook: WriteNotebook, server_root: Path
) -> None:
    agent = client.create_agent("Watched", "langgraph")
    workflow = client.create_workflow(agent["id"], "Waits", with_approval())
    execution = client.execute(workflow["id"], {})
    view = write_notebook(
        "view.ipynb", f"from orchestrator_widgets import ExecutionView\nExecutionView({execution['id']!r})"
    )
    # the keyboard path runs in the notebook the project ships for people (notebooks/builder.ipynb)
    keyboard = "builder.ipynb"
    shutil.copy(ROOT / "notebooks" / keyboard, server_root / keyboard)
    with chromium_page() as page:
        root = open_in_voila(page, server, view)
        expect(root.locator('[data-node-id="check"][data-state="waiting"]')).to_be_visible(timeout=120_000)
        assert serious_violations(page) == []
        root.get_by_role("button", name="Reject").click()
        expect(root.locator(".ow-execution .ow-badge").first).to_have_text("succeeded", timeout=120_000)
        assert client.execution(execution["id"])["outputs"]["output"] == {"approved": False, "comment": ""}

        root = open_in_voila(page, server, keyboard)
        keyboard_only_build(page, root)


def keyboard_only_build(page: Page, root: Locator) -> None:
    """Add, connect, move and delete nodes with the keyboard alone."""
    root.locator('.ow-palette-item[data-node-type="input"]').focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # to the next palette item, "Model"...
    root.locator('.ow-palette-item[data-node-type="output"]').focus()
    page.keyboard.press("Enter")
    expect(root.locator(".ow-node")).to_have_count(2)
    # a node focused on the canvas is selected with Enter; its panel connects it to another node
    source = node(root, "input_1")
    source.focus()
    page.keyboard.press("Enter")
    expect(root.locator(".ow-panel h3")).to_contain_text("input_1")
    connect_to = root.get_by_label("Connect to")
    connect_to.focus()
    connect_to.select_option("output_1")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(root.locator(".react-flow__edge")).to_have_count(1)
    # move it with the arrow keys
    before = source.bounding_box()
    assert before
    source.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    # the node is redrawn when the move comes back through the model: wait for that, not for a time
    page.wait_for_function(
        "([element, x]) => element.getBoundingClientRect().x > x", arg=[source.element_handle(), before["x"] + 20]
    )
    after = source.bounding_box()
    assert after
    assert after["x"] > before["x"] + 20
    # delete it: its edge goes with it; Undo brings both back
    source.focus()
    page.keyboard.press("Delete")
    expect(root.locator(".ow-node")).to_have_count(1)
    expect(root.locator(".react-flow__edge")).to_have_count(0)
    root.get_by_role("button", name="Undo").focus()
    page.keyboard.press("Enter")
    expect(root.locator(".ow-node")).to_have_count(2)
    expect(root.locator(".react-flow__edge")).to_have_count(1)
    screenshot(page, "builder-keyboard")
