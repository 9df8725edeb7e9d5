"""The memory watchdog's cost does not grow with the runs: one scan of ``/proc`` per tick for all of a
worker's runs, never on the event loop (the kill at the limit included); and what a run started in a
session of its own stays under it, so it counts against the run's limit and is killed with it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import pytest
from orchestrator_runtimes import limits
from orchestrator_runtimes.limits import MemoryGuard, ProcessScanner, resident_bytes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: a run's process: a subreaper (as a forked run is) whose child leaves its session and double-forks a
#: process that holds 1 GiB; it prints that process's pid
RUN = """
import os, subprocess, sys, time
from orchestrator_runtimes.containment import become_subreaper
assert become_subreaper()
code = "import os, time\\nprint(os.getpid(), flush=True)\\nheld = b'x' * (1024 << 20)\\ntime.sleep(60)"
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", code])
    os._exit(0)
os.wait()
time.sleep(60)
"""


def _python(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)


async def test_every_runs_watchdog_shares_one_scan_per_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[str] = []
    scan = limits.children_map

    def counted() -> dict[int, list[int]]:
        scans.append(threading.current_thread().name)
        return scan()

    monkeypatch.setattr(limits, "children_map", counted)
    sleepers = [_python("import time; time.sleep(30)") for _ in range(4)]
    scanner = ProcessScanner(max_age=0.5)
    try:
        guards = [
            asyncio.create_task(MemoryGuard(4096, lambda p=p: p.pid, interval=0.02, scanner=scanner).wait())  # type: ignore[misc]
            for p in sleepers
        ]
        started = time.monotonic()
        await asyncio.sleep(2.0)
        elapsed = time.monotonic() - started
        for guard in guards:
            guard.cancel()
        await asyncio.gather(*guards, return_exceptions=True)
    finally:
        for process in sleepers:
            process.kill()
            process.wait()
    # four runs, ~100 ticks each: one scan per half second for all of them (a guard each would be 4x)
    assert 1 <= len(scans) <= elapsed / 0.5 + 2, scans
    assert threading.main_thread().name not in scans  # never on the event loop


async def test_a_run_past_its_limit_through_a_detached_grandchild_is_killed_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanned_on: list[str] = []
    scan = limits.children_map

    def recorded() -> dict[int, list[int]]:
        scanned_on.append(threading.current_thread().name)
        return scan()

    monkeypatch.setattr(limits, "children_map", recorded)
    run = _python(RUN)
    try:
        assert run.stdout is not None
        grandchild = int(await asyncio.to_thread(run.stdout.readline))
        error = await asyncio.wait_for(
            MemoryGuard(512, lambda: run.pid, interval=0.05, scanner=ProcessScanner(max_age=0.2)).wait(), 60
        )
        assert error.details["resident_mib"] >= 512  # the grandchild's gigabyte counted against the run
        assert run.wait(timeout=10) < 0
        deadline = time.monotonic() + 10
        while resident_bytes(grandchild) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert resident_bytes(grandchild) == 0  # killed with the run, though in a session of its own
        assert scanned_on
        assert threading.main_thread().name not in scanned_on  # the kill's scan too
    finally:
        run.kill()
        run.wait()
