"""Nothing a run starts outlives it: a notebook cell or a LangGraph node that starts a detached process (a
session of its own, or a double fork) leaves nothing behind, whether the run ends by itself or is killed
(cancel, timeout, memory limit kill the run's process from the worker).

Each started process is a ``sleep`` with a duration no other process has, so the test finds exactly its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.engine.kernels import KernelPool, discard
from orchestrator_ext.engine.runners import ForkedRunner, RunnerPool
from orchestrator_ext.engine.zygote import ZygoteKernel
from tests.engine.test_run_accounts import code_job, root  # noqa: F401 - the fixture
from tests.escape import code_node_source, double_forked_sleep, fresh_marks, sleeping, until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers are Linux's")


def detach(first: str, second: str) -> str:
    """A run that starts two detached sleeps: one in a session of its own, one double-forked (its parent exits
    at once)."""
    popen = (
        f"subprocess.Popen(['sleep', {first!r}], start_new_session=True, stdin=subprocess.DEVNULL,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )
    return f"import os, subprocess\n{popen}{double_forked_sleep(repr(second))}"


@pytest.fixture
def marks() -> Iterator[tuple[str, ...]]:
    """Two sleep durations nobody else uses (300 s and a random fraction); any left are killed afterwards."""
    with fresh_marks(2) as values:
        yield values


async def run_cell(kernel: ZygoteKernel, code: str) -> None:
    reply = await kernel.execute(code, timeout=30)
    assert reply["content"]["status"] == "ok", reply


@pytest.mark.parametrize("end", ["ends", "killed"])
async def test_a_notebook_runs_detached_processes_die_with_it(
    root: Path,  # noqa: F811
    marks: tuple[str, ...],
    end: str,
) -> None:
    pool = KernelPool(0, 0, root)
    try:
        kernel = await pool.for_org(None, None).take()
        assert isinstance(kernel, ZygoteKernel)
        try:
            await run_cell(kernel, detach(*marks))
            started = sleeping(*marks)
            assert len(started) == 2
            assert all(os.getsid(process.pid) == process.pid for process in started)  # out of the run's session
            if end == "killed":  # cancel, timeout, memory limit: the worker kills the run's process group
                kernel.kill_now()
        finally:
            await discard(kernel)
        assert await until(lambda: not sleeping(*marks), within=10), [p.info for p in sleeping(*marks)]
    finally:
        await pool.close()


async def _langgraph(runner: ForkedRunner, source: str) -> dict[str, Any]:
    async for message in runner.messages(code_job(source)):
        if "result" in message:
            return json.loads(message["result"]["outputs"]["output"])  # type: ignore[no-any-return]
        assert "error" not in message, message
    raise AssertionError("no result")


@contextlib.asynccontextmanager
async def a_runner_that_must_leave_nothing(workdirs: Path, marks: tuple[str, ...]) -> AsyncIterator[ForkedRunner]:
    """A fork-server runner; once the test is done with it, it is discarded (as the worker discards a run's
    process), and whatever carries a mark must be gone within 10 s while its pool is still open."""
    pool = RunnerPool(1, [], 0, workdirs)
    try:
        runner = await pool.for_org(None, None).take()
        assert isinstance(runner, ForkedRunner)
        try:
            yield runner
        finally:
            await runner.discard()
        assert await until(lambda: not sleeping(*marks), within=10), [p.info for p in sleeping(*marks)]
    finally:
        await pool.close()


async def test_a_langgraph_nodes_detached_processes_die_with_the_run(
    root: Path,  # noqa: F811
    marks: tuple[str, ...],
) -> None:
    async with a_runner_that_must_leave_nothing(root, marks) as runner:
        assert await _langgraph(runner, code_node_source(detach(*marks))) == {}


async def test_a_langgraph_run_killed_mid_node_leaves_nothing_behind(
    root: Path,  # noqa: F811
    marks: tuple[str, ...],
) -> None:
    async with a_runner_that_must_leave_nothing(root, marks) as runner:
        source = code_node_source(detach(*marks), "import time; time.sleep(120)")
        work = asyncio.create_task(_langgraph(runner, source))
        try:
            assert await until(lambda: len(sleeping(*marks)) == 2, within=60)
            runner.kill_now()  # as a cancel or a timeout does
        finally:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
