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
- writes need jupyter's XSRF token, except those that carry n8n's
  ``browser-id`` header (the editor's own calls): a custom header another site
  cannot send without a CORS preflight, which this server does not grant.

The editor starts n8n if it is not running (the on-demand mode).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import httpclient, httputil, web

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
        if self.request.headers.get("browser-id"):
            return  # the editor's calls carry a custom header: not forgeable cross-site (see the module's doc)
        super().check_xsrf_cookie()

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
        manager = getattr(self.extensionapp, "_n8n", None)
        if manager is None or self.settings.get("orchestrator_hub") is not None:  # the personal mode's only
            raise web.HTTPError(404, "n8n is not run by this server (ORCHESTRATOR_N8N=off, or n8n is not installed)")
        try:
            base_url, cookie = await manager.editor_login()
        except Exception as exc:
            self.log.warning("the n8n editor is unavailable: %s", exc)
            raise web.HTTPError(503, "n8n is not available") from exc
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in DROPPED_REQUEST}
        headers.update({"Cookie": f"n8n-auth={cookie}", "browser-id": manager.BROWSER_ID})
        query = f"?{self.request.query}" if self.request.query else ""
        relay = _Relay(self)
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
        if not relay.started:
            relay.start(response.code, response.headers)
        if response.code == 599 and response.error is not None:
            self.log.warning("the n8n editor's request failed: %s", response.error)


class _Relay:
    """n8n's answer, relayed as it arrives (its status and headers first, then each chunk, flushed)."""

    def __init__(self, handler: N8nEditorHandler) -> None:
        self.handler = handler
        self.started = False
        self.status = 502
        self.headers = httputil.HTTPHeaders()

    def header(self, line: str) -> None:
        if line.startswith("HTTP/"):
            self.status, self.headers = httputil.parse_response_start_line(line.strip()).code, httputil.HTTPHeaders()
        elif line.strip():
            self.headers.parse_line(line)

    def chunk(self, data: bytes) -> None:
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
