"""``/health``: is the service up, and does its database answer?

Open to unauthenticated callers (load balancers, Kubernetes probes); it
reveals nothing but the states (the database ``ok``, ``unavailable``, or
``restarting`` while the embedded PostgreSQL is being started again after
its postmaster died: 503 meanwhile, with a ``detail`` that says so).
"""

from __future__ import annotations

import asyncio
import time

from jupyter_server.auth.decorator import allow_unauthenticated

from ..schemas.health import DescribeHealth
from .base import OrchestratorHandler, operation, route_table


class HealthHandler(OrchestratorHandler):
    _track_activity = False

    @allow_unauthenticated
    @operation(
        "Health of the service and its database",
        responses={200: DescribeHealth, 503: DescribeHealth},
        tags=("health",),
        authenticated=False,
    )
    async def get(self) -> None:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.services.db.ping(), timeout=5)
            report = DescribeHealth(status="ok", database="ok", database_latency_ms=0.0)
        except Exception:  # noqa: BLE001 - any failure means unavailable
            report = self._unavailable()
        report.database_latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self.write_model(report, 200 if report.status == "ok" else 503)

    def _unavailable(self) -> DescribeHealth:
        """Why the database does not answer: its embedded server restarting (a moment), or unknown."""
        embedded = getattr(self.extensionapp, "embedded", None)  # OrchestratorApp's, in personal mode
        if embedded is not None and embedded.state == "restarting":
            detail = "the embedded PostgreSQL stopped; this server is starting it again (seconds)"
            return DescribeHealth(status="unavailable", database="restarting", database_latency_ms=0.0, detail=detail)
        detail = "the database does not answer"
        return DescribeHealth(status="unavailable", database="unavailable", database_latency_ms=0.0, detail=detail)


default_handlers = route_table(("/health", HealthHandler))
