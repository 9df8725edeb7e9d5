"""The orchestrator's log records, as a test reads them through caplog."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def captured_logs(caplog: pytest.LogCaptureFixture, name: str, level: int) -> Iterator[pytest.LogCaptureFixture]:
    """caplog's handler on the logger ``name`` itself, at ``level``: a server started earlier in the session
    may have configured the "orchestrator" loggers not to propagate to the root logger, where caplog listens."""
    logger = logging.getLogger(name)
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(level, logger=name):
            yield caplog
    finally:
        logger.removeHandler(caplog.handler)
