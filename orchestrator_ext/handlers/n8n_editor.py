"""n8n's editor behind the jupyter-server's authentication: ``<base_url>orchestrator/n8n/``.

The personal mode's n8n listens on the loopback only. This handler proxies
the editor (its page, assets, ``/rest`` API and its push stream) to it for a
user jupyter-server has authenticated (its token or login cookie), and
nobody else: an unauthenticated request never reaches n8n.

- n8n runs with ``N8N_PATH`` set to this prefix (its page and assets ask for
  their URLs under it) and its push channel as server-sent events
  (``N8N_PUSH_BACKEND=sse``), so plain HTTP, streamed, carries everything;
- the user does not log in to n8n: the proxy logs in as the instance's owner
  (the platform made it) and sends n8n's ``n8n-auth`` cookie and the browser id
  it is bound to with every request; the browser's own cookies (jupyter's)
  and credentials never reach n8n, and n8n's cookies never reach the browser;
- writes need jupyter's XSRF token, except the editor's own calls: those carry
  n8n's ``browser-id`` header *and* come from this server's own page (their
  ``Origin``, else ``Referer``, names the request's host). The header alone is
  not enough: with ``ServerApp.allow_origin='*'`` the preflight another site
  needs for it is granted, and that site could then write to n8n as the user;
- n8n's login expires (the cookie is kept while n8n's port is): when n8n
  answers 401, the proxy logs in again once and repeats the request.

The editor starts n8n if it is not running (the on-demand mode).

Under JupyterHub (the Orchestrator service) the path names the organization,
``orchestrator/n8n/<organization id>/``, and the request goes to that
organization's instance (``serve --org X --service-prefix ...``), for its
members whose role may write workflows only: another organization's editor is
a 404, as everything of another tenant's, and the same session handling applies
(:mod:`orchestrator_ext.n8n.editors`).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import httpclient, httputil, web

from ..errors import OrchestratorError
from ..n8n.editors import HubEditors
from .base import AUTH_RESOURCE

PREFIX = "orchestrator/n8n/"
#: the request headers not forwarded (hop-by-hop, the browser's credentials, what the proxy sets itself)
DROPPED_REQUEST = frozenset(
    {"host", "cookie", "authorization", "browser-id", "connection", "keep-alive", "te", "upgrade", "x-xsrftoken"}
)
#: the response headers not passed back (hop-by-hop, lengths tornado sets, n8n's cookies)
DROPPED_RESPONSE = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "set-cookie", "server"}
)
WITH_BODY = ("POST", "PUT", "PATCH", "DELETE")


class N8nEditorHandler(ExtensionHandlerMixin, JupyterHandler):
    """Every method of the editor, proxied to the loopback n8n for an authenticated, authorized user."""

    auth_resource = AUTH_RESOURCE

    def check_xsrf_cookie(self) -> None:
        """Writes without jupyter's XSRF token: only the editor's own (n8n's header, from this server's page)."""
        if self.request.headers.get("browser-id") and self._same_origin():
            return
        super().check_xsrf_cookie()

    def _same_origin(self) -> bool:
        """Whether the request comes from a page of this host: its ``Origin``, else its ``Referer``, names it."""
        source = self.request.headers.get("Origin") or self.request.headers.get("Referer") or ""
        origin = urlsplit(source).netloc.lower() if source.lower() != "null" else ""
        return bool(origin) and origin == (self.request.host or "").lower()

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self._proxy(path)

    @web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        await self._proxy(path)

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        await self._proxy(path)

    @web.authenticated
    @authorized
    async def patch(self, path: str) -> None:
        await self._proxy(path)

    @web.authenticated
    @authorized
    async def delete(self, path: str) -> None:
        await self._proxy(path)

    async def _proxy(self, path: str) -> None:
        hub = self.settings.get("orchestrator_hub")
        if hub is not None:
            manager, path = await self._hub_editor(hub, path)
        else:
            manager = getattr(self.extensionapp, "_n8n", None)
        if manager is None:
            raise web.HTTPError(404, "n8n is not run by this server (ORCHESTRATOR_N8N=off, or n8n is not installed)")
        if await self._send(manager, path, again_on_401=True):
            manager.forget_editor_login()  # n8n's login expired: log in again, once
            await self._send(manager, path, again_on_401=False)

    async def _hub_editor(self, hub: Any, path: str) -> tuple[Any, str]:
        """The editor of the organization the path names (``<org id>/<n8n's path>``), if the hub user may open it."""
        org, _, rest = path.partition("/")
        try:
            org_id = uuid.UUID(org)
        except ValueError:
            raise web.HTTPError(404, "the editor's path names an organization: orchestrator/n8n/<org id>/") from None
        editors: HubEditors = self.settings.setdefault("orchestrator_n8n_editors", HubEditors())
        try:
            identity = hub.identity(self.current_user)
            if identity is None:
                raise web.HTTPError(403)
            return await editors.for_org(self.settings["orchestrator_services"], identity, org_id), rest
        except OrchestratorError as exc:
            raise web.HTTPError(exc.status, str(exc)) from exc

    async def _send(self, manager: Any, path: str, *, again_on_401: bool) -> bool:
        """The request to n8n, its answer relayed; True (nothing relayed) where n8n refused the login and
        ``again_on_401``."""
        try:
            base_url, cookie = await manager.editor_login()
        except Exception as exc:
            self.log.warning("the n8n editor is unavailable: %s", exc)
            raise web.HTTPError(503, "n8n is not available") from exc
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in DROPPED_REQUEST}
        headers.update({"Cookie": f"n8n-auth={cookie}", "browser-id": manager.BROWSER_ID})
        query = f"?{self.request.query}" if self.request.query else ""
        relay = _Relay(self, hold_401=again_on_401)
        request = httpclient.HTTPRequest(
            f"{base_url}/{path}{query}",
            method=self.request.method or "GET",
            headers=headers,
            body=self.request.body if self.request.method in WITH_BODY else None,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            decompress_response=False,
            request_timeout=3600,  # the push stream stays open while the editor is
            header_callback=relay.header,
            streaming_callback=relay.chunk,
        )
        response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        if again_on_401 and response.code == 401 and not relay.started:
            return True
        if not relay.started:
            relay.start(response.code, response.headers)
        if response.code == 599 and response.error is not None:
            self.log.warning("the n8n editor's request failed: %s", response.error)
        return False


class _Relay:
    """n8n's answer, relayed as it arrives (its status and headers first, then each chunk, flushed)."""

    def __init__(self, handler: N8nEditorHandler, *, hold_401: bool = False) -> None:
        self.handler = handler
        self.hold_401 = hold_401  # a 401's body is not relayed: the request is sent again after a new login
        self.started = False
        self.status = 502
        self.headers = httputil.HTTPHeaders()

    def header(self, line: str) -> None:
        if line.startswith("HTTP/"):
            self.status, self.headers = httputil.parse_response_start_line(line.strip()).code, httputil.HTTPHeaders()
        elif line.strip():
            self.headers.parse_line(line)

    def chunk(self, data: bytes) -> None:
        if self.hold_401 and self.status == 401:
            return
        if not self.started:
            self.start(self.status, self.headers)
        self.handler.write(data)
        self.handler.flush()

    def start(self, status: int, headers: Any) -> None:
        self.started = True
        self.handler.set_status(502 if status == 599 else status)
        seen: set[str] = set()
        for name, value in headers.get_all():
            if name.lower() in DROPPED_RESPONSE:
                continue
            (self.handler.add_header if name.lower() in seen else self.handler.set_header)(name, value)
            seen.add(name.lower())


default_handlers = [(rf"/{PREFIX}(.*)", N8nEditorHandler)]
