"""The API contract: ``/orchestrator/api/v1/openapi.json`` and the Swagger UI page ``/orchestrator/docs``.

Both are readable without authentication: the document is the public
contract of the API, and the page is static UI whose requests authenticate
on their own (the Authorize button's ``token`` scheme, or the login cookie).
The page works offline: its assets come from the installed
``swagger_ui_bundle`` package and this package's ``static/`` folder, served
under ``/orchestrator/docs/static/``; nothing is loaded from another host.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import FileFindHandler
from jupyter_server.utils import url_path_join
from pydantic import RootModel
from swagger_ui_bundle import swagger_ui_path

from .. import __version__
from .. import openapi as spec
from .base import OrchestratorHandler, operation, route_table

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSET_ROOTS = [str(swagger_ui_path), str(STATIC_DIR)]
#: the only files the docs page needs; nothing else under the asset roots is served
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "orchestrator-docs.js")
ASSET_VERSION = f"{__version__}-{Path(swagger_ui_path).name}"

DOCS_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Swagger UI sets style attributes
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
)

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Orchestrator API</title>
    <link rel="stylesheet" href="{css}">
    <link rel="icon" type="image/png" href="{icon}" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui" data-openapi-url="{openapi}"></div>
    <script src="{bundle}"></script>
    <script src="{start}"></script>
  </body>
</html>
"""


class OpenAPIDocument(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""


class OpenAPIHandler(OrchestratorHandler):
    _track_activity = False

    @allow_unauthenticated
    @operation(
        "The OpenAPI 3.1 document of this API",
        responses={200: OpenAPIDocument},
        tags=("meta",),
        authenticated=False,
    )
    async def get(self) -> None:
        cookie_name = str(self.identity_provider.get_cookie_name(self))
        # the routes this extension serves: the document describes what is there, nothing else
        self.finish(spec.document_json(self.extensionapp.handlers, self.base_url, cookie_name))


class DocsHandler(OrchestratorHandler):
    """The Swagger UI page (static UI: open, like the document it shows)."""

    route = "/orchestrator/docs"
    _track_activity = False

    @property
    def content_security_policy(self) -> str:
        configured = self.settings.get("headers", {}).get("Content-Security-Policy")
        return str(configured) if configured else DOCS_CSP

    @allow_unauthenticated
    async def get(self) -> None:
        self.finish(self.render_page(), set_content_type="text/html; charset=UTF-8")

    def render_page(self) -> str:
        def asset(name: str) -> str:
            return html.escape(url_path_join(self.base_url, "orchestrator/docs/static", name) + f"?v={ASSET_VERSION}")

        return PAGE.format(
            css=asset("swagger-ui.css"),
            icon=asset("favicon-32x32.png"),
            bundle=asset("swagger-ui-bundle.js"),
            start=asset("orchestrator-docs.js"),
            openapi=html.escape(url_path_join(self.base_url, "orchestrator/api/v1/openapi.json")),
        )


class DocsAssetHandler(FileFindHandler):
    """The page's assets, from the installed Swagger UI bundle and this package's static folder."""

    # FileFindHandler caches lookups per class; keep ours apart from the server's static files.
    _static_paths: dict[str, str] = {}  # noqa: RUF012

    def initialize(self) -> None:  # type: ignore[override]
        super().initialize(ASSET_ROOTS)


default_handlers: list[tuple[str, Any]] = [
    *route_table(("/openapi.json", OpenAPIHandler)),
    (r"/orchestrator/docs", DocsHandler),
    (r"/orchestrator/docs/static/(" + "|".join(re.escape(name) for name in ASSETS) + ")", DocsAssetHandler),
]
