"""JSON logs carry the correlation id and never secrets or PII."""

from __future__ import annotations

import io
import json
import logging

from orchestrator_ext.observability.logging import configure, correlation_id, redact


def test_json_line_with_correlation_id_and_redaction() -> None:
    stream = io.StringIO()
    logger = configure(stream=stream)
    token = correlation_id.set("req-42")
    try:
        logging.getLogger("orchestrator.test").info(
            "calling with Authorization: token abc123 for bob@example.org",
            extra={"api_key": "sk-live", "route": "/agents", "nested": {"password": "pw", "ok": 1}},
        )
    finally:
        correlation_id.reset(token)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    line = json.loads(stream.getvalue().strip())
    assert line["correlation_id"] == "req-42"
    assert line["route"] == "/agents"
    assert line["api_key"] == "[REDACTED]"
    assert line["nested"] == {"password": "[REDACTED]", "ok": 1}
    assert "abc123" not in line["message"]
    assert "bob@example.org" not in line["message"]


def test_redact_database_urls() -> None:
    assert "pw" not in redact("connect postgresql://app:pw@db:5432/x failed")


def test_text_style_is_scrubbed_too() -> None:
    stream = io.StringIO()
    logger = configure(stream=stream, fmt="text")
    try:
        logging.getLogger("orchestrator.test").warning("login of carol@example.org with token=abc123&x=1")
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    assert "carol@example.org" not in stream.getvalue()
    assert "abc123" not in stream.getvalue()
