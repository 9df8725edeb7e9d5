"""LangGraph workflow specs more than one test runs, each test through its own way in (the engine's API, a
team-mode hub)."""

from __future__ import annotations

from typing import Any

#: a human approval: waits with the question "Ship {what}?", then ends "shipped" if the answer has ``ok``
#: true, else "held"; with the runs' database it resumes from its checkpoint in a new attempt
APPROVAL: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "approve", "type": "human_approval", "config": {"question": "Ship {what}?"}},
        {"id": "yes", "type": "code", "config": {"source": "def run(values):\n    return 'shipped'"}},
        {"id": "no", "type": "code", "config": {"source": "def run(values):\n    return 'held'"}},
    ],
    "edges": [
        {"source": "start", "target": "approve"},
        {"source": "approve", "target": "yes", "condition": "approve.ok"},
        {"source": "approve", "target": "no"},
    ],
}
