"""A framework run's memory limit, through the API: a LangGraph run forked from the warm fork server holds
1.5 GiB under a 2048 MiB limit; one that takes 3 GiB is stopped near the limit and fails saying so."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.engine.conftest import wait_final, who
from tests.engine.conftest import worker_settings as worker_settings
from tests.engine.conftest import workers as workers


def allocating(mib: int) -> dict[str, Any]:
    source = f"def run(values):\n    held = [b'x' * (64 << 20) for _ in range({mib // 64})]\n    return len(held) * 64"
    return {
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "hold", "type": "code", "config": {"source": source}},
            {"id": "end", "type": "output", "config": {"from": "hold"}},
        ],
        "edges": [{"source": "start", "target": "hold"}, {"source": "hold", "target": "end"}],
    }


async def test_a_framework_run_gets_its_memory_limit_in_resident_memory(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any
) -> None:
    user = who()
    agent = await create_agent(user=user, framework="langgraph")
    runs = {}
    async with workers(memory_mib=2048, preload=("langgraph",), runner_pool_size=1):
        for mib in (1536, 3072):
            workflow = await create_workflow(user, agent["id"], spec=allocating(mib))
            reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
            assert reply.status == 202, reply.text
            runs[mib] = await wait_final(api, user, reply.json["id"], 120)
    assert runs[1536]["status"] == "succeeded", runs[1536]["error"]
    assert 1536 in runs[1536]["outputs"].values(), runs[1536]["outputs"]
    stopped = runs[3072]
    assert (stopped["status"], stopped["attempt"]) == ("failed", 1), stopped["error"]
    assert stopped["error"]["kind"] == "resources"
    assert "exceeded its memory limit of 2048 MiB (resident:" in stopped["error"]["message"]
