"""The worker's side of the notebook zygote holds against a run's own code and a slow start.

A cell can write to its own connection: a line that is not JSON, not a message, or longer than the limit
ends that run (:class:`ZygoteGone`: the run fails as a dead kernel) and nothing else; the zygote forks the
next run as before. One organization's zygote that is slow to start holds up no other organization's.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from orchestrator_ext.engine.zygote import Zygote, ZygoteGone, ZygoteKernel
from tests.engine.test_run_accounts import root  # noqa: F401 - the fixture

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a forking zygote")

#: writes PAYLOAD to every Unix stream socket the cell's process holds: its own connection to the worker
WRITE_TO_OWN_CONNECTION = """
import os, socket, stat
for name in os.listdir("/proc/self/fd"):
    try:
        if not stat.S_ISSOCK(os.fstat(int(name)).st_mode):
            continue
        conn = socket.socket(fileno=os.dup(int(name)))
    except OSError:
        continue
    if conn.family == socket.AF_UNIX and conn.type == socket.SOCK_STREAM:
        conn.sendall({payload!r})
    conn.close()
"""


async def _execute(kernel: ZygoteKernel, code: str) -> dict[str, object]:
    async for message in kernel.request({"execute": {"code": code}}):
        if "reply" in message:
            return message
    raise AssertionError("no reply")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json\n",
        b'{"no": "msg_type"}\n',
        b"[1, 2]\n",
        b'{"msg_type": "stream"}\n',
        b'{"pid": 1}\n',
        b"x" * (256 << 10) + b"\n",
    ],
    ids=["not-json", "no-msg-type", "not-an-object", "no-content", "a-pid", "overlong"],
)
async def test_a_cell_writing_garbage_to_its_connection_ends_only_its_run(
    root: Path,  # noqa: F811
    payload: bytes,
) -> None:
    zygote = Zygote(sys.executable, 0, root, max_line=64 << 10)
    try:
        kernel = await zygote.fork("python3")
        try:
            with pytest.raises(ZygoteGone, match="notebook's process sent"):
                await asyncio.wait_for(_execute(kernel, WRITE_TO_OWN_CONNECTION.format(payload=payload)), 30)
        finally:
            await kernel.discard()
        after = await zygote.fork("python3")  # the zygote (and the worker) go on
        try:
            reply = await asyncio.wait_for(_execute(after, "1 + 1"), 30)
            assert reply["reply"]["status"] == "ok"  # type: ignore[index]
        finally:
            await after.discard()
    finally:
        await zygote.close()


async def test_an_organizations_slow_zygote_start_holds_up_no_other(root: Path, tmp_path: Path) -> None:  # noqa: F811
    """One zygote's interpreter waits (a gate file) before it starts; another organization's starts meanwhile."""
    gate = tmp_path / "gate"
    slow_python = tmp_path / "slow-python"
    sleep = shutil.which("sleep") or "/bin/sleep"
    slow_python.write_text(f'#!/bin/sh\nwhile [ ! -e {gate} ]; do {sleep} 0.05; done\nexec {sys.executable} "$@"\n')
    slow_python.chmod(0o755)
    slow, fast = Zygote(str(slow_python), 0, root), Zygote(sys.executable, 0, root)
    starting = asyncio.create_task(slow.ensure())
    try:
        while slow.process is None:  # its Popen happened: it now waits to be ready
            await asyncio.sleep(0.02)
        await asyncio.wait_for(fast.ensure(), 45)
        assert fast.ready()
        assert not slow.ready()  # still held at its gate: the other did not wait for it
        gate.touch()
        await asyncio.wait_for(starting, 45)
        assert slow.ready()
    finally:
        gate.touch()
        await asyncio.gather(starting, return_exceptions=True)
        await slow.close()
        await fast.close()
