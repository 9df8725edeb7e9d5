"""``/schemas/workflow-spec.json``: every framework's node configs and options, as the builder renders forms."""

from __future__ import annotations

import jsonschema
from orchestrator_runtimes.spec import framework_runtimes, validate_spec

from tests.conftest import Api

FAN_OUT = {
    "nodes": [
        {"id": "start", "type": "input"},
        {"id": "ask", "type": "model", "config": {"prompt": "About {topic}", "max_tokens": 16}},
        {"id": "calc", "type": "tool", "config": {"tool": "calculator", "args": {"expression": "1 + 1"}}},
        {"id": "join", "type": "code", "config": {"source": "def run(values):\n    return 1", "wait_for": []}},
    ],
    "edges": [
        {"source": "start", "target": "ask"},
        {"source": "start", "target": "calc"},
        {"source": "ask", "target": "join"},
        {"source": "calc", "target": "join"},
    ],
}


async def test_each_framework_s_node_configs_are_in_the_schema(api: Api) -> None:
    reply = await api("GET", "schemas", "workflow-spec.json")
    assert reply.status == 200, reply.text
    schema = reply.json
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"nodes", "edges", "options", "notebook", "schema_version"} <= set(schema["properties"])
    frameworks = schema["x-frameworks"]
    assert {"langgraph", "crewai", "agno"} <= set(frameworks)
    for name, runtime in framework_runtimes().items():
        for kind in runtime.node_models:
            node = frameworks[name]["nodes"][kind]["$ref"].removeprefix("#/$defs/")
            config = schema["$defs"][node]["properties"]["config"]["$ref"].removeprefix("#/$defs/")
            assert schema["$defs"][config]["properties"] or kind in runtime.ignored_types or config
    model = schema["$defs"]["LangGraphModelConfig"]
    assert model["required"] == ["prompt"]
    assert model["properties"]["prompt"]["description"]
    # the generic schema still takes any framework's spec
    jsonschema.Draft202012Validator(schema).validate(FAN_OUT)


async def test_one_framework_s_schema_checks_its_node_configs_like_the_runtime(api: Api) -> None:
    reply = await api("GET", "schemas", "workflow-spec.json", params={"framework": "langgraph"})
    assert reply.status == 200, reply.text
    validator = jsonschema.Draft202012Validator(reply.json)
    assert reply.json["properties"]["nodes"]["items"]["discriminator"]["propertyName"] == "type"
    validator.validate(FAN_OUT)
    assert validate_spec(FAN_OUT, "langgraph")[1] == []
    for bad in (
        {"nodes": [{"id": "a", "type": "model", "config": {}}]},
        {"nodes": [{"id": "a", "type": "model", "config": {"prompt": "x", "colour": "red"}}]},
        {"nodes": [{"id": "a", "type": "agent", "config": {}}]},
        {"nodes": [{"id": "a", "type": "input"}], "options": {"durability": "never"}},
    ):
        assert not validator.is_valid(bad), bad
        assert validate_spec(bad, "langgraph")[1], bad
    unknown = await api("GET", "schemas", "workflow-spec.json", params={"framework": "robots"})
    assert unknown.status == 422
    assert unknown.json["errors"][0]["field"] == "framework"
