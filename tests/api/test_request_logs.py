"""Request logs: one JSON line per request, with its correlation id, and no PII or secrets."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from orchestrator_ext.observability.logging import configure
from tests.conftest import Api


@pytest.fixture
def orchestrator_config() -> dict[str, Any]:
    return {"log_requests": True}


async def test_request_lines_carry_correlation_and_no_pii(api: Api, jp_serverapp: Any) -> None:
    stream = io.StringIO()
    configure(level=logging.DEBUG, stream=stream)
    await api("PUT", "users", "me", body={"email": "zelda.secret@example.org", "display_name": "Zelda Secret"})
    await api(
        "POST",
        "integrations",
        body={
            "kind": "openai-compatible",
            "name": "m",
            "config": {"base_url": "http://127.0.0.1:1/v1", "model": "x"},
            "secret": "sk-very-secret-value",
        },
        headers={"X-Request-ID": "trace-me-1"},
    )
    await api("GET", "agents", "not-a-uuid")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["message"] == "request"]
    assert {(r["method"], r["route"], r["status"]) for r in requests} >= {
        ("PUT", "/users/me", 200),
        ("POST", "/integrations", 201),
        ("GET", "/agents/{agent_id}", 404),
    }
    assert all(r["correlation_id"] for r in requests)
    assert any(r["correlation_id"] == "trace-me-1" for r in requests)
    text = stream.getvalue()
    for private in ("zelda.secret", "Zelda", "sk-very-secret-value", "token user:"):
        assert private not in text
