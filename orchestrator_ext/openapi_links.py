"""OpenAPI ``links`` from each operation that creates a resource (or lists them) to every operation that takes its id.

A client (or a stateful fuzzer such as schemathesis) follows them: ``POST /agents``
answers an agent whose ``id`` fills ``{agent_id}`` of ``GET /agents/{agent_id}``,
``PUT``, ``DELETE``, ``/agents/{agent_id}/workflows``... The other path
parameters of the target come from the creating request's own path (the
same name) or from a field of the created resource with that name
(``version`` of a workflow). A list links from its first item
(``$response.body#/items/0/id``).

The id also goes where an operation takes it in its query or body rather than its path:
``POST /organizations`` links to ``POST /agents`` with ``{"org_id": <the new id>}`` as
(part of) its body and to ``GET /executions?org_id=``, so a client creates inside what it
just created, and a stateful fuzzer's agents land in an organization it can reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class LinkSource:
    """An operation that creates something (or lists them): where its id goes and which fields its answers carry."""

    route: str
    operation_id: str
    creates: str
    created_id: str
    #: the 2xx statuses whose body is the created resource -> that body's top-level field names
    fields: dict[str, set[str]]
    #: where the resource is in the body: "" (the body), "items/0/" (a page's first item)
    at: str = ""
    #: fields naming a resource the created one always belongs to (an execution's ``workflow_id``): links
    #: to that resource's operations too; not ``org_id`` (every organization is a link away from
    #: /organizations already), nor ids the source's own path has
    parents: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LinkTarget:
    """An operation a link may lead to, and the names it takes in its query and its body's top level."""

    route: str
    operation_id: str
    query: frozenset[str] = frozenset()
    body: frozenset[str] = frozenset()
    method: str = "get"


#: fields an answer passes on to its link's body where the target takes them: the version of the workflow
#: it names (a run of that version), a workflow's spec (a new workflow like this one, a change keeping it)
_CARRIED = frozenset({"version", "spec"})


def _parameters(source: LinkSource, target: LinkTarget, fields: set[str]) -> dict[str, str] | None:
    """How to fill each path parameter of ``target`` from ``source``'s request and answer; None if one cannot be."""
    own = set(_PATH_PARAM.findall(source.route))
    parameters: dict[str, str] = {}
    for name in _PATH_PARAM.findall(target.route):
        if name == source.creates:
            parameters[name] = f"$response.body#/{source.at}{source.created_id}"
        elif name in own:
            parameters[name] = f"$request.path.{name}"
        elif name in fields:
            parameters[name] = f"$response.body#/{source.at}{name}"
        else:
            return None
    return parameters


def _link(source: LinkSource, target: LinkTarget, fields: set[str]) -> dict[str, Any] | None:
    """The link from ``source``'s answer to ``target``, if the target takes the created id (in its path,
    query or body) or, in its path, the id of a resource the created one belongs to (``workflow_id``)."""
    created = f"$response.body#/{source.at}{source.created_id}"
    in_path = f"{{{source.creates}}}" in target.route
    # a resource leads to its parent's reads, updates and runs; deleting the parent is the parent's own link
    parent = target.method != "delete" and any(name in source.parents for name in _PATH_PARAM.findall(target.route))
    if not in_path and not parent and source.creates not in target.query | target.body:
        return None
    parameters = _parameters(source, target, fields)
    if parameters is None:
        return None
    link: dict[str, Any] = {"operationId": target.operation_id}
    if not in_path and source.creates in target.query:
        parameters[f"query.{source.creates}"] = created
    body = {name: f"$response.body#/{source.at}{name}" for name in sorted(_CARRIED & fields & target.body)}
    if not in_path and source.creates in target.body:
        body[source.creates] = created
    if body:
        link["requestBody"] = body
    if parameters:
        link["parameters"] = parameters
    return link


def add_links(paths: dict[str, dict[str, Any]], sources: list[LinkSource], targets: list[LinkTarget]) -> None:
    """Add ``links`` to the creating responses in ``paths`` (the document's ``paths`` object, changed in place)."""
    for source in sources:
        method = next(m for m, op in paths[source.route].items() if op["operationId"] == source.operation_id)
        responses = paths[source.route][method]["responses"]
        for status, fields in source.fields.items():
            links: dict[str, Any] = {}
            for target in targets:
                if target.operation_id != source.operation_id:
                    link = _link(source, target, fields)
                    if link is not None:
                        links[target.operation_id] = link
            if links:
                responses[status]["links"] = dict(sorted(links.items()))


def _component(components: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return dict(components[schema["$ref"].rsplit("/", 1)[-1]]) if "$ref" in schema else schema


def item_schema(components: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """The schema of a page's items (``items``: an array of one component); {} if ``page`` is not a page."""
    items = page.get("properties", {}).get("items", {}).get("items", {})
    return _component(components, items) if "$ref" in items else {}


def parent_fields(schema: dict[str, Any]) -> frozenset[str]:
    """The ids a resource always has of the resources it belongs to: required, never null, not its organization."""
    required = set(schema.get("required", []))
    return frozenset(
        name
        for name, prop in schema.get("properties", {}).items()
        if name.endswith("_id") and name != "org_id" and name in required and "anyOf" not in prop
    )


def body_fields(components: dict[str, Any], body: dict[str, Any]) -> frozenset[str]:
    """The top-level fields of a request body, those of every ``oneOf`` branch included."""
    branches = [_component(components, branch) for branch in body.get("oneOf", []) if "$ref" in branch]
    return frozenset(name for part in (body, *branches) for name in part.get("properties", {}))
