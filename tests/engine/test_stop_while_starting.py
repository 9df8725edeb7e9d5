"""A worker asked to stop while it is still starting (a SIGTERM to the personal server in its first
second, as the CLI tests send one): the stop waits for the start to give up, nothing is left running,
and the stop returns. Before, ``stop()`` failed on the claim loop that did not exist yet, the server's
shutdown stopped there, and the start went on to start fork servers nobody would stop."""

from __future__ import annotations

import asyncio
import dataclasses

import psutil

from orchestrator_ext.engine.settings import WorkerSettings
from orchestrator_ext.engine.worker import Worker
from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, TestDatabase


async def test_a_stop_during_start_ends_the_worker_and_leaves_nothing(
    database: TestDatabase, worker_settings: WorkerSettings
) -> None:
    settings = dataclasses.replace(worker_settings, runner_pool_size=1, kernel_pool_size=1)
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    worker = Worker(database.app_url, settings, KeyRing.parse(TEST_KEYS))
    starting = asyncio.create_task(worker.start())
    await asyncio.sleep(0)  # the start is under way
    await asyncio.wait_for(worker.stop(grace=1.0), timeout=60)
    await asyncio.wait_for(starting, timeout=60)
    assert worker._loops == []  # no claim, heartbeat, reap or listen loop was started
    left = [c for c in psutil.Process().children(recursive=True) if c.pid not in before and c.is_running()]
    assert [c for c in left if c.status() != psutil.STATUS_ZOMBIE] == [], [c.cmdline() for c in left]
