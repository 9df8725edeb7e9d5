"""The health report."""

from __future__ import annotations

from typing import Literal

from .common import ResponseModel


class DescribeHealth(ResponseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    database_latency_ms: float
