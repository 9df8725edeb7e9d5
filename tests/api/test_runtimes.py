"""``GET /runtimes``: the installed frameworks and what each can do."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orchestrator_runtimes
import pytest
from orchestrator_runtimes.langgraph import LangGraphRuntime
from orchestrator_runtimes.runtime import ErrorKind, RunError, installed_runtimes, load_runtime

from tests.conftest import Api


async def test_runtimes_lists_the_installed_frameworks_and_their_capabilities(api: Api) -> None:
    reply = await api("GET", "runtimes")
    assert reply.status == 200, reply.text
    found = {item["name"]: item for item in reply.json["items"]}
    assert {"notebook", "langgraph", "crewai", "agno"} <= found.keys()
    # every runtime installed here (the dev install has every extra) can run: none is listed unavailable
    unavailable = {name: item["error"] for name, item in found.items() if not item["available"]}
    assert unavailable == {}
    assert set(found) == set(installed_runtimes())
    langgraph = found["langgraph"]
    assert langgraph["available"] is True
    assert langgraph["entry_point"] == "orchestrator_runtimes.langgraph:LangGraphRuntime"
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
    assert found["notebook"]["node_types"] == []
    assert "subgraph" in langgraph["node_types"]
    assert found["crewai"]["node_types"] == ["agent", "task", "input", "output"]
    anonymous = await api("GET", "runtimes", user=None)
    assert anonymous.status in (401, 403)


def test_a_framework_that_is_not_installed_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = LangGraphRuntime()
    assert runtime.missing() is None
    monkeypatch.setattr(LangGraphRuntime, "framework_module", "langgraph_not_here")
    assert "pip install 'orchestrator[langgraph]'" in (runtime.missing() or "")
    with pytest.raises(RunError) as caught:
        runtime.require()
    assert caught.value.kind is ErrorKind.CONFIGURATION


def test_n8n_is_a_runtime_and_an_unknown_framework_names_no_extra() -> None:
    assert load_runtime("n8n").name == "n8n"  # tests/n8n runs it on a real n8n
    with pytest.raises(RunError) as caught:
        load_runtime("robots")
    assert "pip install" not in caught.value.message


def test_nothing_in_runtimes_shadows_a_framework() -> None:
    """The editable install puts runtimes/ on sys.path: a folder there named like a framework would be imported
    instead of the framework (the worker images and pins live in images/)."""
    runtimes = Path(orchestrator_runtimes.__file__).resolve().parent.parent
    assert [p.name for p in runtimes.iterdir() if not p.name.startswith((".", "__"))] == ["orchestrator_runtimes"]
    for name in ("langgraph", "crewai", "agno"):
        found = importlib.util.find_spec(name)
        assert found is not None, name
        places = [Path(place).resolve() for place in (found.submodule_search_locations or [])]
        assert places, name
        assert not any(place.is_relative_to(runtimes) for place in places), (name, places)
