"""A run's memory limit is on what it has resident (not its address space); a capped log keeps its head.

The processes here really allocate (and touch) the memory: 1.5 GiB under a 2048 MiB limit must pass, 3 GiB must
be stopped near the limit. Each is bounded by its own timeout and never holds more than ~2.5 GiB.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from orchestrator_runtimes.errors import ErrorKind, RunError
from orchestrator_runtimes.limits import CGROUP_ENV, MIB, MemoryGuard, descendants, resident_bytes

from orchestrator_ext.engine.events import RunEvents

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: allocates N MiB in touched 64 MiB pieces, says so, then waits to be stopped
ALLOCATE = (
    "import sys, time\n"
    "held = [b'x' * (64 << 20) for _ in range(int(sys.argv[1]) // 64)]\n"
    "print('held', flush=True)\n"
    "time.sleep(30)\n"
)


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


async def _guard(limit_mib: int, process: subprocess.Popen[str], within: float) -> RunError | None:
    try:
        return await asyncio.wait_for(MemoryGuard(limit_mib, lambda: process.pid).wait(), within)
    except TimeoutError:
        return None


async def test_a_run_that_stays_under_its_limit_is_left_alone() -> None:
    process = _python(ALLOCATE, "1536")
    try:
        held = asyncio.create_task(asyncio.to_thread(process.stdout.readline))  # type: ignore[union-attr]
        stopped = await _guard(2048, process, within=8.0)
        assert stopped is None
        assert await held == "held\n"  # it really holds 1.5 GiB, and it is still there
        assert resident_bytes(process.pid) > 1400 * MIB
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


async def test_a_run_past_its_limit_is_stopped_with_a_clear_error() -> None:
    process = _python(ALLOCATE, "3072")
    try:
        stopped = await _guard(2048, process, within=30.0)
        assert stopped is not None
        assert process.wait(timeout=5) < 0  # killed, before it could say it held 3 GiB
        assert process.stdout is not None
        assert process.stdout.read() == ""
        assert 2048 <= stopped.details["resident_mib"] < 3072  # past 2048 MiB, rounded
        assert stopped.kind is ErrorKind.RESOURCES
        assert "exceeded its memory limit of 2048 MiB (resident:" in stopped.message
    finally:
        process.kill()
        process.wait()


async def test_the_processes_a_run_starts_count_and_are_stopped_with_it() -> None:
    parent = _python(f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {ALLOCATE!r}, '1024'])\n")
    try:
        deadline = time.monotonic() + 10
        while not descendants(parent.pid) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        children = descendants(parent.pid)
        assert children
        stopped = await _guard(512, parent, within=30.0)
        assert stopped is not None
        assert stopped.details["resident_mib"] >= 512  # past 512 MiB, rounded
        assert parent.wait(timeout=5) < 0
        assert all(resident_bytes(pid) == 0 for pid in children)
    finally:
        parent.kill()
        parent.wait()


def test_a_run_has_no_address_space_limit_any_more() -> None:
    """What the run's process sets on itself: open files capped, address space left alone (it counted the
    ~0.8 GB a kernel maps and never uses)."""
    code = (
        "import resource\nfrom orchestrator_runtimes.limits import apply_limits\napply_limits()\n"
        "print(resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY, "
        "resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= 4096)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


class _Writer:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)


def test_a_50_mb_print_keeps_the_first_mib_and_says_how_much_was_cut() -> None:
    writer = _Writer()
    events = RunEvents(writer, uuid.uuid4(), uuid.uuid4(), 1, max_log_bytes=1 << 20)  # type: ignore[arg-type]
    events.log("stdout", "start\n")
    events.log("stdout", "x" * (50 * 1000 * 1000))
    events.log("stdout", "more after the cap\n")
    events.finish()
    texts = [row["data"]["text"] for row in writer.rows]
    kept = "".join(texts[:-1])
    assert len(kept.encode()) == 1 << 20
    assert kept.startswith("start\nxxx")
    cut = 6 + 50 * 1000 * 1000 + 19 - (1 << 20)
    assert f"[log truncated: {cut} bytes cut after the first {1 << 20} bytes" in texts[-1]
    events.finish()  # said once
    assert len(writer.rows) == len(texts)


def test_a_log_is_cut_between_characters_and_an_uncut_log_says_nothing() -> None:
    writer = _Writer()
    events = RunEvents(writer, uuid.uuid4(), uuid.uuid4(), 1, max_log_bytes=5)  # type: ignore[arg-type]
    events.log("stdout", "ab")
    events.log("stdout", "ééé")  # 6 bytes: 3 fit, which is one é and half of the next
    events.finish()
    assert [row["data"]["text"] for row in writer.rows][:2] == ["ab", "é"]
    assert "4 bytes cut" in writer.rows[-1]["data"]["text"]
    quiet = _Writer()
    small = RunEvents(quiet, uuid.uuid4(), uuid.uuid4(), 1, max_log_bytes=100)  # type: ignore[arg-type]
    small.log("stdout", "hello\n")
    small.finish()
    assert [row["data"]["text"] for row in quiet.rows] == ["hello\n"]


async def test_where_a_cgroup_is_delegated_each_run_gets_its_own_with_memory_max(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker writes into a delegated cgroup2 directory, and how it reads the kernel's verdict.

    This machine has no cgroup2 memory controller (cgroup v1): the directory is a stand-in with the files
    cgroupfs has, so this checks the protocol, not the kernel's enforcement."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    monkeypatch.setenv(CGROUP_ENV, str(tmp_path))
    guard = asyncio.create_task(MemoryGuard(2048, lambda: 4242, interval=0.01).wait())
    group = tmp_path / "run-4242"
    deadline = time.monotonic() + 5
    while not (group / "cgroup.procs").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory"
    assert (group / "memory.max").read_text() == str(2048 * MIB)
    assert (group / "memory.swap.max").read_text() == "0"
    assert (group / "memory.oom.group").read_text() == "1"
    assert (group / "cgroup.procs").read_text() == "4242"
    await asyncio.sleep(0.05)
    assert not guard.done()  # no oom_kill yet
    (group / "memory.events").write_text("low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 1\n")
    (group / "memory.peak").write_text(str(2048 * MIB))
    error = await asyncio.wait_for(guard, 5)
    assert error.kind is ErrorKind.RESOURCES
    assert "exceeded its memory limit of 2048 MiB" in error.message
    assert (group / "cgroup.kill").read_text() == "1"  # what was left of the run is killed


async def test_a_cgroup_without_the_memory_controller_fails_the_run_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu pids\n")
    monkeypatch.setenv(CGROUP_ENV, str(tmp_path))
    error = await asyncio.wait_for(MemoryGuard(2048, lambda: 4242, interval=0.01).wait(), 5)
    assert error.kind is ErrorKind.CONFIGURATION
    assert "no memory controller" in error.message
