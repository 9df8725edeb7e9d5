"""A version's node positions in a real browser: the builder opened on a saved workflow draws its
nodes where they were saved (not laid out afresh), in Voila against a real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import FloatRect, expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.browser import chromium_page, open_in_voila
from tests.widgets.sample_specs import three_steps

pytestmark = pytest.mark.timeout(300)


def test_a_saved_version_opens_at_its_positions(
    server: PersonalServer, client: Client, write_notebook: Callable[[str, str], str]
) -> None:
    # an L shape no automatic layout makes: end far to the right of calc, calc below start
    saved = {"start": {"x": 0, "y": 0}, "calc": {"x": 0, "y": 150}, "end": {"x": 450, "y": 150}}
    agent = client.create_agent(f"Positions {uuid.uuid4().hex[:6]}", "langgraph")
    workflow = client.create_workflow(agent["id"], "Placed", {**three_steps(), "ui": {"positions": saved}})
    assert workflow["spec"]["ui"]["positions"]["end"] == {"x": 450.0, "y": 150.0}
    notebook = write_notebook("placed.ipynb", f"from orchestrator_widgets import Builder\nBuilder({workflow['id']!r})")
    with chromium_page() as page:
        root = open_in_voila(page, server, notebook)
        boxes: dict[str, FloatRect] = {}
        for node_id in saved:
            located = root.locator(f'.react-flow__node:has([data-node-id="{node_id}"])')
            expect(located).to_be_visible()  # fitted into view
            box = located.bounding_box()
            assert box is not None
            boxes[node_id] = box
        start, calc, end = boxes["start"], boxes["calc"], boxes["end"]
        assert abs(calc["x"] - start["x"]) < 2
        assert abs(end["y"] - calc["y"]) < 2
        # the saved geometry at the canvas' zoom: end is 450/150 = 3 times as far right as calc is below start
        assert (end["x"] - calc["x"]) / (calc["y"] - start["y"]) == pytest.approx(3, rel=0.05)
