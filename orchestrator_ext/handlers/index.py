"""Where a newcomer starts: ``/orchestrator/`` (a page for people) and ``/orchestrator/api/v1/`` (the API root).

Both need the same token or login as the rest of the API. The API root lists
the collections from the route table this extension serves, as the OpenAPI
document does, so a new resource appears there without an edit here. The page
links to the API's documentation, the API root, the dashboard and the metrics.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .. import __version__
from ..openapi import API_PREFIX, Routes, endpoints
from ..schemas.meta import DescribeApiLinks, DescribeApiRoot, DescribeCollection
from .base import OrchestratorHandler, operation, route_table

STYLE = (
    "body{font-family:system-ui,sans-serif;line-height:1.5;margin:2rem auto;max-width:44rem;padding:0 1rem;"
    "color:#1a1a1a;background:#fff}a{color:#0b57d0}a:focus{outline:3px solid #0b57d0;outline-offset:2px}"
    "li{margin:.5rem 0}code{background:#f1f1f1;padding:0 .2rem}"
)
#: the page runs no script and loads nothing: only its own style element, by hash
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        f"style-src 'sha256-{base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()}'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    ]
)

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Orchestrator</title>
    <style>{style}</style>
  </head>
  <body>
    <main>
      <h1>Orchestrator</h1>
      <p>Build, run and operate AI agents from Jupyter. Version {version}.</p>
      <nav aria-labelledby="start-here">
        <h2 id="start-here">Start here</h2>
        <ul>
          <li><a href="{docs}">API documentation</a>: every endpoint, with examples you can try.</li>
          <li><a href="{api}">REST API root</a>: the collections of the API, as JSON with links.</li>
          <li>{dashboard}</li>
          <li><a href="{metrics}">Prometheus metrics</a>: {metrics_note}.</li>
          <li><a href="{health}">Health</a>: whether the service and its database answer.</li>
        </ul>
      </nav>
    </main>
  </body>
</html>
"""


def links(base_url: str) -> DescribeApiLinks:
    """Absolute paths of the documents every client starts from."""
    api = url_path_join(base_url, API_PREFIX)
    return DescribeApiLinks(
        index=url_path_join(base_url, "orchestrator/"),
        docs=url_path_join(base_url, "orchestrator/docs"),
        openapi=url_path_join(api, "openapi.json"),
        metrics=url_path_join(base_url, "orchestrator/metrics"),
        health=url_path_join(api, "health"),
    )


def api_root(routes: Routes, base_url: str) -> DescribeApiRoot:
    """The API root document: every route without a path parameter of ``routes``, with its link."""
    collections: dict[str, DescribeCollection] = {}
    for endpoint in endpoints(routes):
        if "{" in endpoint.route or endpoint.route == "/":
            continue
        found = collections.setdefault(
            endpoint.route,
            DescribeCollection(
                route=endpoint.route,
                href=url_path_join(base_url, API_PREFIX, endpoint.route),
                methods=[],
                summary=endpoint.operation.summary,
            ),
        )
        found.methods.append(endpoint.method.upper())
        if endpoint.method == "get":
            found.summary = endpoint.operation.summary
    return DescribeApiRoot(
        name="Orchestrator API",
        version=__version__,
        links=links(base_url),
        collections=[collections[route] for route in sorted(collections)],
    )


def default_dashboard_url(base_url: str, root_dir: Path, environ: Mapping[str, str]) -> str:
    """Where the dashboard is, when nothing is configured.

    As a hub service: the hub's ``dashboard`` service. In the personal mode: the
    dashboard notebook under the server's root (a clone of the repository), rendered
    by Voila when it is installed, else opened in JupyterLab; empty when there is none.
    """
    if environ.get("JUPYTERHUB_SERVICE_NAME"):
        return url_path_join(environ.get("JUPYTERHUB_BASE_URL", "/"), "services/dashboard/")
    notebook = "notebooks/dashboard.ipynb"
    if not (root_dir / notebook).is_file():
        return ""
    try:
        import voila  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return url_path_join(base_url, "lab/tree", notebook)
    return url_path_join(base_url, "voila/render", notebook)


class ApiRootHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "The API root: its collections and documents, with links",
        responses={200: DescribeApiRoot},
        tags=("meta",),
    )
    async def get(self) -> None:
        self.write_model(api_root(self.extensionapp.handlers, self.base_url))


class IndexHandler(OrchestratorHandler):
    """The start page for people (HTML): a browser without a login is sent to log in."""

    route = "/orchestrator/"

    @property
    def content_security_policy(self) -> str:
        configured = self.settings.get("headers", {}).get("Content-Security-Policy")
        return str(configured) if configured else PAGE_CSP

    def get_login_url(self) -> str:
        # a page, not an API call: redirect to the login page instead of APIHandler's bare 403
        return str(super(APIHandler, self).get_login_url())

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(self.render_page(), set_content_type="text/html; charset=UTF-8")

    def render_page(self) -> str:
        found = links(self.base_url)
        dashboard = str(self.settings.get("orchestrator_dashboard_url") or "")
        if dashboard:
            dashboard_item = f'<a href="{html.escape(dashboard)}">Dashboard</a>: your executions at a glance.'
        else:
            dashboard_item = (
                "Dashboard: open <code>notebooks/dashboard.ipynb</code> of the repository in JupyterLab "
                "(<code>OrchestratorApp.dashboard_url</code> puts a link here)."
            )
        metrics_note = (
            "they need the same token (<code>Authorization: token …</code>) or login as the API"
            if self.services.settings.authenticate_metrics
            else "open to every caller on this server (<code>authenticate_metrics</code> is off)"
        )
        return PAGE.format(
            style=STYLE,
            version=html.escape(__version__),
            docs=html.escape(found.docs),
            api=html.escape(url_path_join(self.base_url, API_PREFIX) + "/"),
            dashboard=dashboard_item,
            metrics=html.escape(found.metrics),
            metrics_note=metrics_note,
            health=html.escape(found.health),
        )


default_handlers: list[tuple[str, Any]] = [
    *route_table(("/", ApiRootHandler)),
    (f"/{API_PREFIX}", ApiRootHandler),
    (r"/orchestrator/?", IndexHandler),
]
