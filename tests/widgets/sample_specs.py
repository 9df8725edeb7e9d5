"""Workflow specs the widget tests build and run (LangGraph code nodes: no model needed)."""

from __future__ import annotations

from typing import Any

CODE = "def run(values):\n    return 41 + 1"


def three_steps() -> dict[str, Any]:
    """input -> code -> output: the three-node LangGraph workflow of the builder's tests."""
    return {
        "nodes": [
            {"id": "start", "type": "input", "config": {}},
            {"id": "calc", "type": "code", "config": {"source": CODE}},
            {"id": "end", "type": "output", "config": {}},
        ],
        "edges": [{"source": "start", "target": "calc"}, {"source": "calc", "target": "end"}],
    }


def with_approval() -> dict[str, Any]:
    """input -> code -> human approval -> output: a run that waits for a person."""
    spec = three_steps()
    spec["nodes"].insert(2, {"id": "check", "type": "human_approval", "config": {"question": "Ship 42?"}})
    spec["edges"] = [
        {"source": "start", "target": "calc"},
        {"source": "calc", "target": "check"},
        {"source": "check", "target": "end"},
    ]
    return spec
