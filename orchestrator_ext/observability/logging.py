"""JSON-lines logging with a correlation id, and a filter that keeps secrets and PII out.

The correlation id lives in a context variable set by the base handler for
each request (from ``X-Request-ID`` or generated); every record logged while
the request is handled carries it. With tracing on, every record logged inside
a span carries its ``trace_id`` and ``span_id`` too (docs/operations/tracing.md).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

#: set while tracing is on (orchestrator_ext.tracing): (trace id, span id) of the current span, or None
trace_ids: Callable[[], tuple[str, str] | None] | None = None

SENSITIVE_KEYS = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|email|display_name|credential)", re.I
)
_INLINE_SECRETS = [
    (re.compile(r"(?i)(authorization:\s*)(token|bearer)\s+\S+"), r"\1\2 [REDACTED]"),
    (re.compile(r"(?i)(\b(token|api_key|apikey|key|password|secret)=)[^&\s]+"), r"\1[REDACTED]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
    (re.compile(r"postgres(ql)?(\+\w+)?://[^\s]+"), "postgresql://[REDACTED]"),
]
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def redact(value: Any, key: str = "") -> Any:
    """Mask values under sensitive keys, recursively; scrub inline secrets from strings."""
    if key and SENSITIVE_KEYS.search(key):
        return "[REDACTED]"
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for pattern, replacement in _INLINE_SECRETS:
            value = pattern.sub(replacement, value)
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "correlation_id": getattr(record, "correlation_id", None) or correlation_id.get(),
        }
        ids = trace_ids() if trace_ids is not None else None
        if ids is not None:
            payload["trace_id"], payload["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in payload and not key.startswith("_"):
                payload[key] = redact(value, key)
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class RedactingTextFormatter(logging.Formatter):
    """The terminal format, with the same scrubbing of secrets and PII as the JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = str(redact(super().format(record)))
        ids = trace_ids() if trace_ids is not None else None
        return f"{text} [trace_id={ids[0]} span_id={ids[1]}]" if ids is not None else text


def configure(level: int | str = logging.INFO, stream: TextIO | None = None, fmt: str = "json") -> logging.Logger:
    """Attach one handler to the ``orchestrator`` logger (idempotent)."""
    logger = logging.getLogger("orchestrator")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "_orchestrator", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    text_format = RedactingTextFormatter("[%(levelname)s %(name)s] %(message)s")
    handler.setFormatter(JsonFormatter() if fmt == "json" else text_format)
    handler._orchestrator = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    return logger
