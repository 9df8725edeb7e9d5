"""The fork server's spares: each run is taken by a child forked ahead of time, never reused; runs arriving
together are taken at once; a spare that dies is replaced; the server waits for its children (no zombies)
and everything dies with it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from orchestrator_runtimes.forkserver import SPARES

from tests.fork_servers import job_messages, running_fork_server


@pytest.fixture
def fork_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A fork server with nothing preloaded (a job for an unknown runtime fails fast, through a real fork)."""
    with running_fork_server(tmp_path) as running:
        yield running


def run_once(path: Path, workdir: Path) -> tuple[int, dict[str, object]]:
    """One job: the pid of the process that ran it and its last message."""
    messages = job_messages(path, {"framework": "no-such-runtime", "process": {"workdir": str(workdir)}})
    return int(messages[0]["pid"]), messages[-1]


def live_children(pid: int) -> list[psutil.Process]:
    return [child for child in psutil.Process(pid).children() if child.status() != psutil.STATUS_ZOMBIE]


def pids(parent: int) -> set[int]:
    return {child.pid for child in live_children(parent)}


def eventually(condition: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.05)


def test_each_run_is_a_spare_of_its_own_and_a_dead_spare_is_replaced(
    fork_server: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    server, path = fork_server
    runs = [run_once(path, tmp_path) for _ in range(3)]
    assert len({pid for pid, _ in runs}) == 3  # a new process each time
    assert all(last["error"]["kind"] == "configuration" for _, last in runs), runs  # type: ignore[index]
    # the runs ended and were waited for: only the spares are left, no zombie
    eventually(lambda: len(psutil.Process(server.pid).children()) == SPARES)
    spares = live_children(server.pid)
    assert not {spare.pid for spare in spares} & {pid for pid, _ in runs}
    for spare in spares:
        assert os.getsid(spare.pid) == spare.pid  # its own session, before any run: the worker kills its group
    killed = spares[0]
    killed.kill()
    eventually(lambda: len(live_children(server.pid)) == SPARES and killed.pid not in pids(server.pid))
    pid, last = run_once(path, tmp_path)
    assert pid != killed.pid
    assert "error" in last


def test_runs_arriving_together_are_taken_by_the_spares_at_once(
    fork_server: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    _, path = fork_server
    with ThreadPoolExecutor(6) as pool:
        done = list(pool.map(lambda _: run_once(path, tmp_path), range(6)))
    assert len({pid for pid, _ in done}) == 6
    assert all("error" in last for _, last in done)


def test_the_spare_dies_with_the_server(fork_server: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    server, path = fork_server
    run_once(path, tmp_path)
    eventually(lambda: len(live_children(server.pid)) == SPARES)
    spares = live_children(server.pid)
    server.kill()
    server.wait()
    for spare in spares:
        eventually(lambda spare=spare: not spare.is_running() or spare.status() == psutil.STATUS_ZOMBIE)


def test_a_worker_whose_run_dir_is_deep_still_reaches_its_fork_server(tmp_path: Path) -> None:
    """A ``run_dir`` whose path leaves no room for the socket's name in ``sun_path`` (107 bytes): the worker
    binds and connects through its descriptor of the folder, and runs are forked as usual."""
    import asyncio

    from orchestrator_ext.engine.runners import ForkServer

    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 5)
    deep.mkdir(parents=True)
    server = ForkServer(preload=[], memory_mib=0, workdir_root=deep)

    async def once() -> dict[str, object]:
        try:
            path = await server.ensure()
            assert server.control is not None
            assert len(os.fsencode(server.control / "runs.sock")) > 107
            reader, writer = await asyncio.open_unix_connection(str(path))
            job = {"framework": "no-such-runtime", "process": {"workdir": str(tmp_path)}}
            writer.write(json.dumps(job).encode() + b"\n")
            lines = (await reader.read()).splitlines()
            writer.close()
            return dict(json.loads(lines[-1]))
        finally:
            await server.close()

    last = asyncio.run(once())
    # a real fork answered: the child looked the runtime up and named it
    assert "no-such-runtime" in json.dumps(last["error"]), last
