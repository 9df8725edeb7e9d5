"""The OpenAPI 3.1 document of the REST API, built from the route table it is given and the pydantic models.

Every handler method under ``/orchestrator/api/v1`` carries an :class:`Operation`
(``@operation``, declared in :mod:`orchestrator_ext.openapi_operations` and
imported from here); :func:`build_document` walks the route table the server
serves (``(pattern, handler)`` pairs), turns each described method into an
OpenAPI operation, and generates the component schemas with pydantic. Errors
are RFC 9457 problem details (``Problem``), described once as shared responses.
This module imports nothing of ``handlers``: the handlers depend on it (for
``@operation``), never the other way round.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue, models_json_schema

from . import __version__
from .openapi_links import LinkSource, LinkTarget, add_links, body_fields, item_schema, parent_fields
from .openapi_names import renamed_refs, resource_names, titled
from .openapi_operations import API_PREFIX, Endpoint, Header, Operation, Routes, body_required, endpoints, operation
from .schemas.common import Problem
from .security.permissions import PLATFORM_ADMIN, ROLE_PERMISSIONS, Permission

#: the builder, and the declarations re-exported: the handlers and the index import them from here
__all__ = [
    "API_PREFIX",
    "Endpoint",
    "Header",
    "Operation",
    "Routes",
    "body_required",
    "build_document",
    "document_json",
    "endpoints",
    "operation",
]

REF_TEMPLATE = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")

#: status -> (shared response name, description); each is a ``Problem`` body
PROBLEM_RESPONSES: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The body is not valid JSON."),
    403: ("Forbidden", "Not authenticated, or the caller's role does not allow the action."),
    404: ("NotFound", "No such resource, or it belongs to an organization the caller is not in."),
    409: ("Conflict", "The change conflicts with existing data (a unique name, a limit, a reference)."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts."),
    415: ("UnsupportedMediaType", "The body is not JSON."),
    422: ("ValidationFailed", "A field is invalid; 'errors' names each one."),
    429: (
        "TooManyRequests",
        "A rate limit is reached (the caller's writes or runs, the organization's runs, or failed "
        "authentications from this address); Retry-After says in how many seconds to come back.",
    ),
    503: ("ServiceUnavailable", "The database is unavailable; retry shortly."),
}

RETRY_AFTER = {"description": "Seconds until a request is allowed again.", "schema": {"type": "integer", "minimum": 1}}

DESCRIPTION = """\
Build, run and operate AI agents: organizations, agents, workflows, executions and integrations.

Authenticate with the header `Authorization: token <token>` (the server's token, or a JupyterHub
API token), or with the Jupyter login cookie (then send the `_xsrf` cookie's value as
`X-XSRFToken` on requests other than GET). Errors are `application/problem+json` documents
(RFC 9457) whose `errors` list names each invalid field.
"""


class _Schemas:
    """Component schemas of every model the operations use, and the reference to each."""

    def __init__(self, ops: Iterable[Operation]) -> None:
        wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Problem, "serialization"): None}
        self.queries: set[type[BaseModel]] = set()
        for op in ops:
            for model in (op.body, op.query):
                if model is not None:
                    wanted[(model, "validation")] = None
            if op.query is not None:
                self.queries.add(op.query)
            for response in op.responses.values():
                if response is not None:
                    wanted[(response, "serialization")] = None
        refs, top = models_json_schema(list(wanted), ref_template=REF_TEMPLATE)
        renamed = resource_names(top.get("$defs", {}))
        self.refs: dict[tuple[type[Any], JsonSchemaMode], JsonSchemaValue] = {
            key: renamed_refs(ref, renamed) for key, ref in refs.items()
        }
        self.components: dict[str, JsonSchemaValue] = {
            renamed.get(name, name): titled(renamed_refs(schema, renamed), renamed.get(name))
            for name, schema in top.get("$defs", {}).items()
        }

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode) -> JsonSchemaValue:
        return self.refs[(model, mode)]

    def of(self, model: type[BaseModel] | None, mode: JsonSchemaMode) -> JsonSchemaValue:
        """The component of ``model`` ({} for None)."""
        return {} if model is None else self.resolve(model, mode)

    def resolve(self, model: type[BaseModel], mode: JsonSchemaMode) -> JsonSchemaValue:
        name = self.ref(model, mode)["$ref"].rsplit("/", 1)[-1]
        return self.components[name]

    def drop_query_models(self) -> None:
        """Query models become parameters; keep their component only if a body or response uses it."""
        used = {ref["$ref"] for (model, _), ref in self.refs.items() if model not in self.queries}
        for model in self.queries:
            ref = self.ref(model, "validation")["$ref"]
            if ref not in used:
                self.components.pop(ref.rsplit("/", 1)[-1], None)


def _query_parameters(schemas: _Schemas, model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = schemas.resolve(model, "validation")
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param_schema = {k: v for k, v in prop.items() if k not in ("description", "title")}
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": param_schema}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _path_parameters(route: str) -> list[dict[str, Any]]:
    params = []
    for name in _PATH_PARAM.findall(route):
        schema = {"type": "string", "format": "uuid"} if name.endswith("_id") else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _header_parameters(op: Operation) -> list[dict[str, Any]]:
    params = []
    for name, header in op.headers.items():
        schema: dict[str, Any] = {"type": "string"}
        if header.pattern is not None:
            schema["pattern"] = header.pattern
        params.append(
            {"name": name, "in": "header", "required": False, "description": header.description, "schema": schema}
        )
    return params


def _problem_statuses(endpoint: Endpoint) -> set[int]:
    """The error responses an operation can give, from what it takes and whether it authenticates."""
    op = endpoint.operation
    statuses: set[int] = set()
    if op.authenticated:
        statuses |= {403, 429, 503}  # 429: bad tokens are throttled on every authenticated route
    if op.body is not None:
        statuses |= {400, 413, 415, 422}
    if op.query is not None:
        statuses.add(422)
    if op.authenticated and (op.body is not None or op.query is not None or "{" in endpoint.route):
        statuses.add(404)
    if op.authenticated and endpoint.method in ("post", "put", "patch"):
        statuses.add(409)
    return statuses


def _responses(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in sorted(_problem_statuses(endpoint)):
        responses[str(status)] = {"$ref": f"#/components/responses/{PROBLEM_RESPONSES[status][0]}"}
    for status, model in sorted(endpoint.operation.responses.items()):
        if model is Problem and status in PROBLEM_RESPONSES:
            responses[str(status)] = {"$ref": f"#/components/responses/{PROBLEM_RESPONSES[status][0]}"}
            continue
        response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
        served = endpoint.operation.media.get(status, ())
        if model is not None:
            json_media = served or ("application/problem+json" if model is Problem else "application/json",)
            response["content"] = {media: {"schema": schemas.ref(model, "serialization")} for media in json_media}
        else:
            for media in served:
                response.setdefault("content", {})[media] = {"schema": {"type": "string"}}
        responses[str(status)] = response
    return dict(sorted(responses.items()))


def _permission_text(permission: str) -> str:
    if permission == PLATFORM_ADMIN:
        return (
            "Requires a platform admin: a JupyterHub admin, a personal server's owner, "
            "or a name in OrchestratorApp.platform_admins."
        )
    roles = [role.value for role, granted in ROLE_PERMISSIONS.items() if Permission(permission) in granted]
    return f"Requires the `{permission}` permission in the organization (roles: {', '.join(roles)})."


def _operation(endpoint: Endpoint, schemas: _Schemas, operation_id: str) -> dict[str, Any]:
    op = endpoint.operation
    doc: dict[str, Any] = {"operationId": operation_id, "summary": op.summary, "tags": list(op.tags)}
    if op.permission:
        doc["description"] = _permission_text(op.permission)
        doc["x-permission"] = op.permission
    params = _path_parameters(endpoint.route) + _header_parameters(op)
    if op.query is not None:
        params += _query_parameters(schemas, op.query)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": body_required(endpoint.method, op),
            "content": {"application/json": {"schema": schemas.ref(op.body, "validation")}},
        }
    doc["responses"] = _responses(endpoint, schemas)
    if not op.authenticated:
        doc["security"] = []
    return doc


def _operation_ids(found: list[Endpoint]) -> list[str]:
    """``getAgent``, ``postAgentCollection``...: the method and the handler's name, unique."""
    ids: list[str] = []
    for endpoint in found:
        base = endpoint.method + endpoint.handler.__name__.removesuffix("Handler")
        candidate, n = base, 2
        while candidate in ids:
            candidate, n = f"{base}{n}", n + 1
        ids.append(candidate)
    return ids


def _components(schemas: _Schemas, cookie_name: str) -> dict[str, Any]:
    problem = schemas.ref(Problem, "serialization")
    return {
        "schemas": dict(sorted(schemas.components.items())),
        "responses": {
            name: {
                "description": text,
                "content": {"application/problem+json": {"schema": problem}},
                **({"headers": {"Retry-After": RETRY_AFTER}} if name == "TooManyRequests" else {}),
            }
            for name, text in PROBLEM_RESPONSES.values()
        },
        "securitySchemes": {
            "token": {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "Enter `token <token>`: the server's token or a JupyterHub API token.",
            },
            "cookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": cookie_name,
                "description": "The Jupyter login cookie; requests other than GET also need the X-XSRFToken header.",
            },
        },
    }


def _link(paths: dict[str, dict[str, Any]], found: list[Endpoint], schemas: _Schemas) -> None:
    """Links from every operation that creates something to the operations that take its id."""
    ids = {(e.route, e.method): op["operationId"] for e in found for op in [paths[e.route][e.method]]}
    sources = []
    for endpoint in found:
        op = endpoint.operation
        fields = {
            str(status): set(schemas.resolve(model, "serialization").get("properties", {}))
            for status, model in op.responses.items()
            if model is not None and 200 <= status < 300
        }
        operation_id = ids[(endpoint.route, endpoint.method)]
        own = set(_PATH_PARAM.findall(endpoint.route))
        if op.creates is not None:
            created = next((m for code, m in op.responses.items() if m is not None and 200 <= code < 300), None)
            parents = parent_fields(schemas.of(created, "serialization")) - own
            sources.append(LinkSource(endpoint.route, operation_id, op.creates, op.created_id, fields, "", parents))
        if op.lists is not None:  # the first item of a page, when there is one
            item = item_schema(schemas.components, schemas.of(op.responses.get(200), "serialization"))
            pages = {code: set(item.get("properties", {})) for code in fields}
            parents = parent_fields(item) - own
            sources.append(LinkSource(endpoint.route, operation_id, op.lists, op.listed_id, pages, "items/0/", parents))
    targets = [
        LinkTarget(
            e.route,
            ids[(e.route, e.method)],
            frozenset(p["name"] for p in paths[e.route][e.method].get("parameters", []) if p["in"] == "query"),
            body_fields(
                schemas.components, schemas.resolve(e.operation.body, "validation") if e.operation.body else {}
            ),
            e.method,
        )
        for e in found
    ]
    add_links(paths, sources, targets)


def build_document(routes: Routes, base_url: str = "/", cookie_name: str = "username") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API that ``routes`` serve under ``base_url``."""
    found = endpoints(routes)
    schemas = _Schemas(e.operation for e in found)
    paths: dict[str, dict[str, Any]] = {}
    for endpoint, operation_id in zip(found, _operation_ids(found), strict=True):
        paths.setdefault(endpoint.route, {})[endpoint.method] = _operation(endpoint, schemas, operation_id)
    _link(paths, found, schemas)
    schemas.drop_query_models()
    tags = sorted({tag for e in found for tag in e.operation.tags})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Orchestrator API", "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": f"{base_url.rstrip('/')}/{API_PREFIX}"}],
        "tags": [{"name": tag} for tag in tags],
        "security": [{"token": []}, {"cookie": []}],
        "paths": dict(sorted(paths.items())),
        "components": _components(schemas, cookie_name),
    }


def document_json(routes: Routes, base_url: str, cookie_name: str) -> str:
    """The document as JSON text, built once per route table, base URL and cookie name."""
    return _cached_json(tuple((pattern, handler) for pattern, handler, *_ in routes), base_url, cookie_name)


@functools.lru_cache(maxsize=32)
def _cached_json(routes: tuple[tuple[str, type[Any]], ...], base_url: str, cookie_name: str) -> str:
    return json.dumps(build_document(routes, base_url, cookie_name), separators=(",", ":"))
