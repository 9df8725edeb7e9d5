"""Fixtures of the team-mode tests: one real hub for the whole folder (``team_hub``), the users'
environment it spawns servers from (``team_env``), and Playwright pointed at Debian's Chromium.

The hub runs as root (it makes a system account per user): elsewhere these tests are skipped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.team_hub import TeamHub, start_hub, stop_hub
from tests.hub.userenv import SYSTEM_PYTHON, ensure_env

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
    reason="the team mode runs as root and spawns servers from a /usr/bin/python3 environment",
)


@pytest.fixture(scope="session")
def team_env() -> Path:
    return ensure_env()


@pytest.fixture(scope="package")
def team_hub(team_env: Path) -> Iterator[TeamHub]:
    hub = start_hub(team_env)
    try:
        yield hub
    finally:
        stop_hub(hub)


@pytest.fixture
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """pytest-jupyter's loop fixture takes the current loop, which under Playwright's sync API is
    Playwright's own, and closes it: these tests get a loop of their own instead."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def jp_server_cleanup() -> Iterator[None]:
    """No jupyter-server runs in this process here: nothing for pytest-jupyter to clean up (its
    cleanup would run a loop inside Playwright's)."""
    return
