"""``/health``: is the service up, and does its database answer?

Open to unauthenticated callers (load balancers, Kubernetes probes); it
reveals nothing but the two states.
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
            database, status, code = "ok", "ok", 200
        except Exception:  # noqa: BLE001 - any failure means unavailable
            database, status, code = "unavailable", "unavailable", 503
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self.write_model(DescribeHealth(status=status, database=database, database_latency_ms=latency_ms), code)


default_handlers = route_table(("/health", HealthHandler))
