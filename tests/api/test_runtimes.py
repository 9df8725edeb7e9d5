"""``GET /runtimes``: the installed frameworks and what each can do."""

from __future__ import annotations

from tests.conftest import Api


async def test_runtimes_lists_the_installed_frameworks_and_their_capabilities(api: Api) -> None:
    reply = await api("GET", "runtimes")
    assert reply.status == 200, reply.text
    found = {item["name"]: item for item in reply.json["items"]}
    assert {"notebook", "langgraph", "crewai", "agno"} <= found.keys()
    langgraph = found["langgraph"]
    assert langgraph["available"] is True
    assert langgraph["entry_point"] == "orchestrator_runtimes.langgraph_runtime:LangGraphRuntime"
    assert langgraph["capabilities"]["checkpoints"] is True
    assert langgraph["capabilities"]["human_in_the_loop"] is True
    for item in found.values():
        assert set(item["capabilities"]) == {
            "streaming",
            "checkpoints",
            "multi_agent",
            "tools",
            "human_in_the_loop",
            "multi_modal",
            "gpu",
        }
    assert found["notebook"]["capabilities"]["human_in_the_loop"] is False
    anonymous = await api("GET", "runtimes", user=None)
    assert anonymous.status in (401, 403)
