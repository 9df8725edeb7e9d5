"""The ``dashboard`` hub service: the Orchestrator dashboard, behind hub login.

``python -m orchestrator_ext.hub.dashboard`` (started by the hub, see
``hub_config/team.py``). A user who opens the hub's Services menu entry logs
in through hub OAuth and is sent to the dashboard notebook rendered by Voila
in their **own** server (``/hub/user-redirect/voila/render/<notebook>``): the
dashboard's kernel runs as that user, with that user's token, so one kernel
account never holds several users' tokens, and nothing here can run code.
The spawner puts a fresh copy of the notebook in each user's home.

With the hub's internal TLS it serves https with the certificate the hub made
for it, to the hub and the proxy only (:func:`.tls.server_context`).
"""

from __future__ import annotations

import os
import signal
from typing import Any
from urllib.parse import quote, urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated  # type: ignore[import-untyped]
from jupyterhub.utils import url_path_join  # type: ignore[import-untyped]
from tornado import ioloop, web

from .tls import server_context

#: where the spawner copies notebooks/dashboard.ipynb, relative to the user's home
NOTEBOOK = "orchestrator/dashboard.ipynb"


class DashboardHandler(HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]
    """Send a logged-in user to the dashboard in their own server (started if needed)."""

    def initialize(self, target: str) -> None:
        self.target = target

    @web.authenticated
    def get(self) -> None:
        self.redirect(self.target)


def make_app(prefix: str, hub_prefix: str, notebook: str = NOTEBOOK) -> web.Application:
    target = url_path_join(hub_prefix, "user-redirect", "voila", "render", quote(notebook))
    return web.Application(
        [
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
            (prefix + r".*", DashboardHandler, {"target": target}),
        ],
        cookie_secret=os.urandom(32),
    )


def main(**settings: Any) -> None:
    """Serve at the address and prefix that the hub gives its managed services."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/dashboard/")
    hub_prefix = url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "hub/")
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8891"))
    app = make_app(prefix, hub_prefix, os.environ.get("ORCHESTRATOR_DASHBOARD_NOTEBOOK", NOTEBOOK))
    tls = server_context(os.environ)
    if tls is not None:
        settings.setdefault("ssl_options", tls)
    app.listen(url.port or (443 if tls else 80), url.hostname or "127.0.0.1", **settings)
    loop = ioloop.IOLoop.current()
    for stop in (signal.SIGINT, signal.SIGTERM):  # the hub stops its services with SIGINT, then SIGTERM
        signal.signal(stop, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()


if __name__ == "__main__":
    main()
