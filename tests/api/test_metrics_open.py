"""``/orchestrator/metrics`` with ``authenticate_metrics`` off: open to Prometheus without a token."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def orchestrator_config() -> dict[str, Any]:
    return {"authenticate_metrics": False}


async def test_open_metrics(jp_fetch: Any) -> None:
    reply = await jp_fetch("orchestrator", "metrics", headers={"Authorization": "none"}, raise_error=False)
    assert reply.code == 200
    text = reply.body.decode()
    assert 'orchestrator_executions{status="queued"} 0.0' in text
    assert "orchestrator_db_pool_connections" in text
