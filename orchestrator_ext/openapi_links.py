"""OpenAPI ``links`` from each operation that creates a resource (or lists them) to every operation that takes its id.

A client (or a stateful fuzzer such as schemathesis) follows them: ``POST /agents``
answers an agent whose ``id`` fills ``{agent_id}`` of ``GET /agents/{agent_id}``,
``PUT``, ``DELETE``, ``/agents/{agent_id}/workflows``... The other path
parameters of the target come from the creating request's own path (the
same name) or from a field of the created resource with that name
(``version`` of a workflow). A list links from its first item
(``$response.body#/items/0/id``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class LinkSource:
    """An operation that creates something: where its id goes and which fields its answers carry."""

    route: str
    operation_id: str
    creates: str
    created_id: str
    #: the 2xx statuses whose body is the created resource -> that body's top-level field names
    fields: dict[str, set[str]]


@dataclass(frozen=True)
class LinkTarget:
    route: str
    operation_id: str


def _parameters(source: LinkSource, target: LinkTarget, fields: set[str]) -> dict[str, str] | None:
    """How to fill each path parameter of ``target`` from ``source``'s request and answer; None if one cannot be."""
    own = set(_PATH_PARAM.findall(source.route))
    parameters: dict[str, str] = {}
    for name in _PATH_PARAM.findall(target.route):
        if name == source.creates:
            parameters[name] = f"$response.body#/{source.created_id}"
        elif name in own:
            parameters[name] = f"$request.path.{name}"
        elif name in fields:
            parameters[name] = f"$response.body#/{name}"
        else:
            return None
    return parameters


def add_links(paths: dict[str, dict[str, Any]], sources: list[LinkSource], targets: list[LinkTarget]) -> None:
    """Add ``links`` to the creating responses in ``paths`` (the document's ``paths`` object, changed in place)."""
    for source in sources:
        method = next(m for m, op in paths[source.route].items() if op["operationId"] == source.operation_id)
        responses = paths[source.route][method]["responses"]
        for status, fields in source.fields.items():
            links: dict[str, Any] = {}
            for target in targets:
                if target.operation_id == source.operation_id or f"{{{source.creates}}}" not in target.route:
                    continue
                parameters = _parameters(source, target, fields)
                if parameters is not None:
                    links[target.operation_id] = {"operationId": target.operation_id, "parameters": parameters}
            if links:
                responses[status]["links"] = dict(sorted(links.items()))
