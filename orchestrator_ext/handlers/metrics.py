"""``/orchestrator/metrics``: the server's Prometheus metrics, in the text exposition format.

Traffic, errors and latency by route; requests in flight; the database pool;
executions by status across every organization (counted at scrape time).
Like jupyter-server's own ``/metrics`` (``PrometheusMetricsHandler``), it needs
an authenticated caller unless ``OrchestratorApp.authenticate_metrics`` is off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import allow_unauthenticated
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from ..services.metrics import refresh_executions
from .base import OrchestratorHandler

log = logging.getLogger("orchestrator.metrics")

#: how long a scrape waits for the executions count before serving the last one
REFRESH_TIMEOUT_S = 5.0


class MetricsHandler(OrchestratorHandler):
    route = "/orchestrator/metrics"
    _track_activity = False

    @allow_unauthenticated
    async def get(self) -> None:
        if self.services.settings.authenticate_metrics and not await self._may_read():
            raise web.HTTPError(403, "Authentication is required to read the metrics.")
        await self._refresh()
        body = generate_latest(self.services.metrics.registry)
        self.finish(body, set_content_type=CONTENT_TYPE_LATEST)

    async def _may_read(self) -> bool:
        """An authenticated caller whom the server's authorizer lets read this extension."""
        user = self.current_user
        if not self.logged_in or user is None:
            return False
        return bool(await ensure_async(self.authorizer.is_authorized(self, user, "read", self.auth_resource)))

    async def _refresh(self) -> None:
        """Recount executions; when the database does not answer, serve the last counts (and the rest)."""
        services = self.services
        try:
            await asyncio.wait_for(refresh_executions(services.db, services.metrics), timeout=REFRESH_TIMEOUT_S)
        except (SQLAlchemyError, TimeoutError) as exc:
            log.warning("executions count unavailable for the metrics: %s", type(exc).__name__)


default_handlers: list[tuple[str, Any]] = [(r"/orchestrator/metrics", MetricsHandler)]
