"""The OpenAPI document and the Swagger UI docs page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator_ext.handlers import all_handlers
from orchestrator_ext.handlers.base import API_PREFIX, OrchestratorHandler
from tests.conftest import Api

HTTP_METHODS = ("get", "put", "post", "patch", "delete")
ANONYMOUS = {"Authorization": "none"}


def routed_methods() -> set[tuple[str, str]]:
    """(route template, method) of every handler method under the API prefix, documented or not."""
    found = set()
    for pattern, handler, *_ in all_handlers():
        if not pattern.startswith(f"/{API_PREFIX}/"):
            continue
        own = [
            cls for cls in handler.__mro__ if issubclass(cls, OrchestratorHandler) and cls is not OrchestratorHandler
        ]
        for method in HTTP_METHODS:
            if any(method in vars(cls) for cls in own):
                found.add((handler.route, method))
    return found


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


async def fetch_document(api: Api) -> dict[str, Any]:
    reply = await api("GET", "openapi.json", user=None)
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    return json.loads(reply.text)  # type: ignore[no-any-return]


async def test_document_lists_every_route(api: Api) -> None:
    document = await fetch_document(api)
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == routed_methods()
    assert ("/integrations", "post") in documented
    assert not any(path.startswith("/orchestrator") for path, _ in documented)


async def test_every_operation_is_complete(api: Api) -> None:
    document = await fetch_document(api)
    ids = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op["summary"], (path, method)
            assert op["tags"], (path, method)
            assert any(code.startswith("2") for code in op["responses"]), (path, method)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{([a-z_]+)\}", path)), (path, method)
            if "security" not in op:
                assert "403" in op["responses"], (path, method)
    assert len(ids) == len(set(ids))


async def test_every_ref_resolves(api: Api) -> None:
    document = await fetch_document(api)
    found = list(refs(document))
    assert found
    for ref in found:
        assert resolve(document, ref) is not None, ref


async def test_errors_are_problems(api: Api) -> None:
    document = await fetch_document(api)
    responses = document["components"]["responses"]
    for response in responses.values():
        assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    create = document["paths"]["/integrations"]["post"]
    assert create["responses"]["422"] == {"$ref": "#/components/responses/ValidationFailed"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Integration"
    }
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateIntegration"
    }
    assert create["x-permission"] == "integrations:manage"
    assert "204" in document["paths"]["/integrations/{integration_id}"]["delete"]["responses"]
    assert "content" not in document["paths"]["/integrations/{integration_id}"]["delete"]["responses"]["204"]


async def test_query_models_become_parameters(api: Api) -> None:
    document = await fetch_document(api)
    listing = document["paths"]["/integrations"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert set(params) == {"limit", "cursor", "org_id", "kind"}
    assert all(p["in"] == "query" and p["required"] is False for p in params.values())
    assert params["limit"]["schema"]["maximum"] == 200
    assert "ListIntegrationsQuery" not in document["components"]["schemas"]


async def test_servers_security_and_public_operations(api: Api, jp_base_url: str) -> None:
    document = await fetch_document(api)
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": f"{jp_base_url.rstrip('/')}/orchestrator/api/v1"}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["token"] == {**schemes["token"], "type": "apiKey", "in": "header", "name": "Authorization"}
    assert schemes["cookie"]["in"] == "cookie"
    assert document["security"] == [{"token": []}, {"cookie": []}]
    assert document["paths"]["/openapi.json"]["get"]["security"] == []
    assert document["paths"]["/health"]["get"]["security"] == []


async def test_document_validates(api: Api) -> None:
    document = await fetch_document(api)
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


async def fetch(jp_fetch: Any, *parts: str, **kwargs: Any) -> Any:
    return await jp_fetch(*parts, headers=ANONYMOUS, raise_error=False, **kwargs)


async def test_docs_page_is_offline_and_local(jp_fetch: Any, jp_base_url: str) -> None:
    page = await fetch(jp_fetch, "orchestrator", "docs")
    assert page.code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.body.decode()
    assert "http://" not in html
    assert "https://" not in html
    assert f'data-openapi-url="{jp_base_url}orchestrator/api/v1/openapi.json"' in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(urls) == 4
    for url in urls:
        parts = urlsplit(url.replace("&amp;", "&"))
        assert not parts.scheme, url
        assert not parts.netloc, url
        assert parts.path.startswith(f"{jp_base_url}orchestrator/docs/static/"), url
        asset = await fetch(jp_fetch, parts.path[len(jp_base_url) :], params={"v": parts.query.split("=", 1)[1]})
        assert asset.code == 200, url


async def test_docs_assets(jp_fetch: Any) -> None:
    bundle = await fetch(jp_fetch, "orchestrator", "docs", "static", "swagger-ui-bundle.js")
    assert bundle.code == 200
    assert "javascript" in bundle.headers["Content-Type"]
    assert b"SwaggerUIBundle" in bundle.body
    start = await fetch(jp_fetch, "orchestrator", "docs", "static", "orchestrator-docs.js")
    assert b"validatorUrl: null" in start.body
    for name in ("swagger-initializer.js", "index.html", "../__init__.py", "nope.js"):
        assert (await fetch(jp_fetch, "orchestrator", "docs", "static", name)).code == 404, name
