"""The health report."""

from __future__ import annotations

from typing import Literal

from .common import ResponseModel


class DescribeHealth(ResponseModel):
    status: Literal["ok", "unavailable"]
    #: restarting: the embedded PostgreSQL's postmaster died and the server is starting it again
    database: Literal["ok", "unavailable", "restarting"]
    database_latency_ms: float
    #: what is happening, in words, when the database is not ok
    detail: str | None = None
