"""The pull from n8n on odd instance data: a 409 naming the node (problem+json), never a crash (a 500)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator_ext.errors import Conflict, ServiceUnavailable
from orchestrator_ext.n8n.sync import _read_copy
from tests.n8n.conftest import exported

OUR_ID = "w1"


class FakeInstance:
    """n8n's public API as the pull reads it (the list by name, then the copy), answering what a test gives."""

    def __init__(self, listed: list[Any], saved: Any) -> None:
        self.listed, self.saved = listed, saved

    def workflows(self, name: str | None = None) -> list[Any]:
        return self.listed

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        assert (method, path) == ("GET", "workflows/7")
        return self.saved


def pulled_from(saved: Any, listed: list[Any] | None = None) -> dict[str, Any]:
    instance = FakeInstance([{"id": "7"}] if listed is None else listed, saved)
    return _read_copy(instance, OUR_ID, exported("greet"))  # type: ignore[arg-type]


def greet_with(change: Any) -> dict[str, Any]:
    """The greet workflow as the instance would hold it, with ``change`` applied to its nodes by name."""
    saved = copy.deepcopy(exported("greet"))
    for node in saved["nodes"]:
        change(node)
    return saved


def test_the_well_formed_copy_is_pulled() -> None:
    assert pulled_from(exported("greet"))["nodes"] == exported("greet")["nodes"]


def set_on(node_name: str, key: str, value: Any) -> Any:
    def change(node: dict[str, Any]) -> None:
        if node["name"] == node_name:
            node[key] = value

    return change


def set_option(node: dict[str, Any]) -> None:
    if node["name"] == "Respond to Webhook":
        node["parameters"]["options"] = {"responseHeaders": {"entries": ["x-orchestrator-execution"]}}


@pytest.mark.parametrize(
    ("saved", "named"),
    [
        (["not", "a", "workflow"], "not a workflow object"),
        ({"nodes": {"Webhook": {}}}, "'nodes' that are not a list"),
        ({"nodes": ["Webhook"]}, "node #1 is not an object"),
        (greet_with(set_on("Webhook", "parameters", ["path"])), "node 'Webhook'"),
        (greet_with(set_on("Greet", "credentials", "openAiApi")), "node 'Greet'"),
        (greet_with(set_on("Greet", "credentials", {"openAiApi": "orchestrator x"})), "node 'Greet'"),
        (greet_with(set_option), "node 'Respond to Webhook'"),
        (greet_with(set_on("Greet", "name", ["Greet"])), "a name that is not text"),
        ({**exported("greet"), "connections": ["Webhook"]}, "'connections' that is not an object"),
    ],
)
def test_odd_instance_data_is_a_conflict_naming_what_is_wrong(saved: Any, named: str) -> None:
    with pytest.raises(Conflict) as raised:
        pulled_from(saved)
    assert named in raised.value.detail


@pytest.mark.parametrize("listed", [["7"], [{"name": "Greet"}], [None]])
def test_a_listing_without_an_id_is_the_instance_unavailable(listed: list[Any]) -> None:
    with pytest.raises(ServiceUnavailable):
        pulled_from(exported("greet"), listed)
