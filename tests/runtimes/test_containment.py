"""Nothing a run starts outlives it: a notebook cell or a LangGraph node that starts a detached process (a
session of its own, or a double fork) leaves nothing behind, whether the run ends by itself or is killed
(cancel, timeout, memory limit kill the run's process from the worker).

Each started process is a ``sleep`` with a duration no other process has, so the test finds exactly its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from orchestrator_ext.engine.kernels import KernelPool, discard
from orchestrator_ext.engine.runners import ForkedRunner, RunnerPool
from orchestrator_ext.engine.zygote import ZygoteKernel
from tests.engine.test_run_accounts import code_job, root  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="subreapers are Linux's")

#: starts two detached sleeps: one in a session of its own, one double-forked (its parent exits at once)
DETACH = """
import os, subprocess
subprocess.Popen(["sleep", "{first}"], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.execvp("sleep", ["sleep", "{second}"])
    os._exit(0)
os.waitpid(middle, 0)
"""


@pytest.fixture
def marks() -> Iterator[tuple[str, str]]:
    """Two sleep durations nobody else uses (300 s and a random fraction); any left are killed afterwards."""
    first, second = (f"300.{random.randrange(10**8):08d}" for _ in range(2))
    yield first, second
    for process in sleeping(first, second):
        process.kill()


def sleeping(*marks: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if len(cmdline) == 2 and cmdline[1] in marks and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


async def until(condition: Any, within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run_cell(kernel: ZygoteKernel, code: str) -> None:
    reply = await kernel.execute(code, timeout=30)
    assert reply["content"]["status"] == "ok", reply


@pytest.mark.parametrize("end", ["ends", "killed"])
async def test_a_notebook_runs_detached_processes_die_with_it(
    root: Path,  # noqa: F811
    marks: tuple[str, str],
    end: str,
) -> None:
    pool = KernelPool(0, 0, root)
    try:
        kernel = await pool.for_org(None, None).take()
        assert isinstance(kernel, ZygoteKernel)
        try:
            await run_cell(kernel, DETACH.format(first=marks[0], second=marks[1]))
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


def _node(code: str, then: str) -> str:
    body = "\n".join("    " + line for line in code.strip().splitlines())
    return f"def run(values):\n{body}\n    {then}\n    return '{{}}'\n"


async def test_a_langgraph_nodes_detached_processes_die_with_the_run(
    root: Path,  # noqa: F811
    marks: tuple[str, str],
) -> None:
    pool = RunnerPool(1, [], 0, root)
    try:
        runner = await pool.for_org(None, None).take()
        assert isinstance(runner, ForkedRunner)
        try:
            assert await _langgraph(runner, _node(DETACH.format(first=marks[0], second=marks[1]), "pass")) == {}
        finally:
            await runner.discard()
        assert await until(lambda: not sleeping(*marks), within=10), [p.info for p in sleeping(*marks)]
    finally:
        await pool.close()


async def test_a_langgraph_run_killed_mid_node_leaves_nothing_behind(
    root: Path,  # noqa: F811
    marks: tuple[str, str],
) -> None:
    pool = RunnerPool(1, [], 0, root)
    try:
        runner = await pool.for_org(None, None).take()
        assert isinstance(runner, ForkedRunner)
        source = _node(DETACH.format(first=marks[0], second=marks[1]), "import time; time.sleep(120)")
        work = asyncio.create_task(_langgraph(runner, source))
        try:
            assert await until(lambda: len(sleeping(*marks)) == 2, within=60)
            runner.kill_now()  # as a cancel or a timeout does
        finally:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await runner.discard()
        assert await until(lambda: not sleeping(*marks), within=10), [p.info for p in sleeping(*marks)]
    finally:
        await pool.close()
