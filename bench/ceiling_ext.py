"""The benchmark's ceiling: a plain jupyter-server extension with one constant JSON handler.

It goes through the same server, the same token authentication and the same
``APIHandler`` machinery as the orchestrator's handlers, and does nothing else:
what an API endpoint can reach at best on this machine. Loaded by
``bench/api.py`` with ``PYTHONPATH=bench`` and
``--ServerApp.jpserver_extensions``; never installed.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

ROUTE = "/bench/ceiling"
BODY = b'{"status":"ok","items":[],"next_cursor":null}'


class CeilingHandler(APIHandler):
    auth_resource = "orchestrator"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(BODY)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "ceiling_ext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    base_url = serverapp.web_app.settings["base_url"].rstrip("/")
    serverapp.web_app.add_handlers(".*$", [(base_url + ROUTE, CeilingHandler)])
