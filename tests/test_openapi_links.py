"""The OpenAPI document's links resolve: every value a link takes exists where it says, every target gets its ids.

A link whose ``$response.body#/...`` names a field the answer does not have (a create
answering ``id`` where the link reads ``agent_id``), or that leaves a path parameter of its
target unfilled, is never followed by a client or by the stateful fuzzer (``test_fuzz``);
this checks every link of the document the server builds, without a server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from orchestrator_ext.handlers import all_handlers
from orchestrator_ext.openapi import build_document

_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(all_handlers())


def _operations(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {op["operationId"]: (route, op) for route, item in document["paths"].items() for op in item.values()}


def _links(document: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(source route, source operation, the response, the link) for every link of the document."""
    return [
        (route, op, response, link)
        for route, item in document["paths"].items()
        for op in item.values()
        for response in op["responses"].values()
        for link in response.get("links", {}).values()
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _has_pointer(document: dict[str, Any], schema: dict[str, Any], pointer: str) -> bool:
    """Whether the JSON pointer ``pointer`` names a property the response schema declares (``items/0/id``)."""
    for part in pointer.strip("/").split("/"):
        schema = _resolve(document, schema)
        if part.isdigit() and schema.get("type") == "array":
            schema = schema["items"]
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        else:
            return False
    return True


def _expressions(link: dict[str, Any]) -> list[str]:
    body = link.get("requestBody", {})
    return [*link.get("parameters", {}).values(), *(body.values() if isinstance(body, dict) else [body])]


def test_every_link_takes_values_its_source_has(document: dict[str, Any]) -> None:
    links = _links(document)
    assert len(links) > 100
    for route, op, response, link in links:
        schema = response["content"]["application/json"]["schema"]
        for expression in _expressions(link):
            if expression.startswith("$request.path."):
                assert f"{{{expression.removeprefix('$request.path.')}}}" in route, (op["operationId"], link)
            else:
                assert expression.startswith("$response.body#/"), (op["operationId"], link)
                assert _has_pointer(document, schema, expression.removeprefix("$response.body#")), (
                    op["operationId"],
                    link,
                )


def test_every_link_fills_its_targets_path(document: dict[str, Any]) -> None:
    operations = _operations(document)
    for _, op, _, link in _links(document):
        target_route, target = operations[link["operationId"]]
        given = {name.removeprefix("path.") for name in link.get("parameters", {})}
        assert set(_PATH_PARAM.findall(target_route)) <= given, (op["operationId"], link)
        declared = {(p["in"], p["name"]) for p in target.get("parameters", [])}
        for name in given - set(_PATH_PARAM.findall(target_route)):
            assert ("query", name.removeprefix("query.")) in declared, (op["operationId"], link)
        if "requestBody" in link:
            body = _resolve(document, target["requestBody"]["content"]["application/json"]["schema"])
            branches = [_resolve(document, branch) for branch in body.get("oneOf", [])]
            for field in link["requestBody"]:
                kinds = [part for part in branches if "properties" in part]  # a oneOf of bodies (integrations)
                assert all(field in part["properties"] for part in kinds or [body]), (op["operationId"], link)


def test_creates_link_to_what_is_made_inside_them(document: dict[str, Any]) -> None:
    """An organization to the agents and integrations created in it and the lists filtered by it; a run to
    its workflow (so that a page of runs leads to the workflows' operations)."""
    created = document["paths"]["/organizations"]["post"]["responses"]["201"]["links"]
    assert created["postAgentCollection"]["requestBody"] == {"org_id": "$response.body#/id"}
    assert created["postIntegrationCollection"]["requestBody"] == {"org_id": "$response.body#/id"}
    assert created["getExecutionCollection"]["parameters"] == {"query.org_id": "$response.body#/id"}
    runs = document["paths"]["/executions"]["get"]["responses"]["200"]["links"]
    assert runs["postExecuteWorkflow"]["parameters"] == {"workflow_id": "$response.body#/items/0/workflow_id"}
    assert runs["getExecution"]["parameters"] == {"execution_id": "$response.body#/items/0/id"}


def test_answers_are_named_after_their_resource(document: dict[str, Any]) -> None:
    """``Organization``, not ``DescribeOrganization``: what a generated client calls it, and how a tool ties
    ``org_id`` to the resource that produces it."""
    names = set(document["components"]["schemas"])
    assert {"Organization", "Agent", "Workflow", "Execution", "Integration", "Schedule"} <= names
    assert not [name for name in names if name.startswith("Describe")]
    assert "DescribeAgent" not in str(document)
