"""A succeeded n8n run takes its steps from the webhook's answer (no read of n8n's execution record), and
only where the answer tells the whole story (runtimes n8n/answer.py)."""

from __future__ import annotations

import asyncio
import copy
import time
import types
import uuid
from typing import Any

import pytest
from orchestrator_runtimes.n8n import inline
from orchestrator_runtimes.n8n.answer import STEPS_HEADER, expressions, steps_from
from orchestrator_runtimes.n8n.api import N8nApi
from orchestrator_runtimes.n8n.mapping import steps_of

from tests.n8n.conftest import N8n, exported
from tests.n8n.test_n8n_spec import n8n_spec

pytestmark = pytest.mark.timeout(180)


def test_only_answers_that_tell_the_whole_story_carry_the_steps() -> None:
    greet = exported("greet")
    assert list(expressions(greet)) == ["Respond to Webhook"]
    looped = copy.deepcopy(greet)  # Greet -> Respond -> Greet: a node may run twice
    looped["connections"]["Respond to Webhook"] = {"main": [[{"node": "Greet", "type": "main", "index": 0}]]}
    assert expressions(looped) == {}
    after = copy.deepcopy(greet)  # something runs after the answer
    after["nodes"].append({"name": "Later", "type": "n8n-nodes-base.noOp", "parameters": {}})
    after["connections"]["Respond to Webhook"] = {"main": [[{"node": "Later", "type": "main", "index": 0}]]}
    assert expressions(after) == {}
    assert expressions(exported("llm_chain")) == {}  # token counts are in the record only


def test_an_answer_without_steps_or_with_garbage_means_read_the_record() -> None:
    assert steps_from({}, {}) is None
    assert steps_from({STEPS_HEADER: ""}, {}) is None  # n8n's answer for steps over the limit
    assert steps_from({STEPS_HEADER: "%7Bnot json"}, {}) is None
    assert steps_from({STEPS_HEADER: "%7B%22s%22%3A1%7D"}, {}) is None


async def test_a_run_records_the_same_steps_without_reading_the_execution(
    n8n: N8n, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_read(*args: Any) -> None:
        raise AssertionError("the execution record was read")

    monkeypatch.setattr(inline, "_read_ended", no_read)
    spec = {**n8n_spec(exported("greet")), "timeout_seconds": 60}
    integrations = {"n8n": {"kind": "n8n", "config": {"base_url": n8n.base_url}, "secret": n8n.api_key}}
    recorded: list[dict[str, Any]] = []
    claimed = types.SimpleNamespace(
        id=uuid.uuid4(),
        attempt=1,
        spec=spec,
        inputs={"name": "Zoë"},
        org_id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
    )
    outputs = await inline.run_in_worker(claimed, integrations, None, recorded.append)
    assert outputs["output"] == {"greeting": "Hello, Zoë!", "letters": 3}
    assert [event["node"] for event in recorded] == ["Webhook", "Greet", "Respond to Webhook"]
    types_ = {step["node"]: step["type"] for step in outputs["steps"]}
    execution: dict[str, Any] = {}
    from_record: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30  # n8n answers before it saves the execution's data: on a busy machine, later
    while len(from_record) < len(outputs["steps"]) and time.monotonic() < deadline:
        execution = N8nApi(n8n.base_url, n8n.api_key).execution(str(outputs["n8n_execution_id"]), include_data=True)
        from_record = [{**s, "latency_ms": 0.0} for s in steps_of(execution, types_)]
        await asyncio.sleep(0.2)
    assert execution["workflowId"] == outputs["n8n_workflow_id"]
    assert [{k: s[k] for k in ("node", "type", "output", "status")} for s in outputs["steps"]] == [
        {k: s[k] for k in ("node", "type", "output", "status")} for s in from_record
    ]
