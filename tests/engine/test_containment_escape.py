"""A run that kills its own fork server or notebook zygote (the same account as the run) leaves nothing behind.

The run is a child subreaper and dies with its server; what it double-forked into a session of its own
was under it, and is reparented to init when the run dies: the worker, watching its servers, kills every
process of the run account left with init as its parent. Real runs through the API, under another uid
(``run_accounts=uid:65534``), as the Kubernetes mode runs them (the team mode's accounts work alike). Also:
a killed worker's socket-link folders in /tmp are removed by the next worker to start.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.engine import sweep
from orchestrator_ext.engine.accounts import RunAccounts, runs_root
from orchestrator_ext.engine.kernels import socket_base
from tests.conftest import Api
from tests.engine.conftest import notebook, wait_final, who
from tests.engine.test_run_accounts import NOBODY, as_root
from tests.escape import code_node_source, double_forked_sleep, fresh_marks, sleeping, until
from tests.runtimes.test_langgraph_api import start


def escape(mark: str) -> str:
    """A run that leaves a detached grandchild (double fork, a session of its own) sleeping ``mark``, then kills
    the server it was forked from (its parent: same account) and waits to die with it."""
    kill = "time.sleep(0.3)\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(60)\n"
    return f"import os, signal, time\n{double_forked_sleep(repr(mark))}{kill}"


@pytest.fixture
def mark() -> Iterator[str]:
    """A sleep duration nobody else uses; whatever sleeps it is killed afterwards."""
    with fresh_marks(1) as (value,):
        yield value


@pytest.fixture
def root() -> Iterator[Path]:
    path = runs_root(Path(tempfile.mkdtemp(prefix="orch-runs-", dir="/tmp")))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def orphans_of(uid: int) -> list[int]:
    """The processes of ``uid`` whose parent is init: none belongs to a live worker's runs."""
    return sorted(sweep.strays({uid}))


def _code_node(code: str) -> dict[str, Any]:
    nodes = [
        {"id": "start", "type": "input"},
        {"id": "escape", "type": "code", "config": {"source": code_node_source(code)}},
    ]
    return {"nodes": nodes, "edges": [{"source": "start", "target": "escape"}]}


@pytest.mark.parametrize("mode", [pytest.param("uid", marks=as_root), "personal"])
@pytest.mark.parametrize("server", ["zygote", "fork server"])
async def test_a_run_that_kills_its_server_leaves_no_process_of_its_account(
    api: Api,
    workers: Any,
    notebook_workflow: Any,
    create_agent: Any,
    create_workflow: Any,
    root: Path,
    mark: str,
    server: str,
    mode: str,
) -> None:
    """In the personal mode (runs as the worker's own account), what works in the worker's runs' folders
    and is not under the worker is swept instead (the person's other processes are never touched)."""
    user = who()
    settings: dict[str, Any] = {"workdir_root": root}
    if mode == "uid":
        settings |= {"run_accounts": f"uid:{NOBODY.uid}"}
    if server == "zygote":
        settings |= {"kernel_pool_size": 1}
    else:
        settings |= {"runner_pool_size": 1, "kernel_pool_size": 0, "preload": ("langgraph",)}
    async with workers(**settings):
        if server == "zygote":
            workflow = await notebook_workflow(user, notebook(escape(mark)))
            reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": {}})
            assert reply.status == 202, reply.text
            execution = reply.json["id"]
        else:
            execution = await start(api, create_agent, create_workflow, user, _code_node(escape(mark)), {})
        run = await wait_final(api, user, execution, within=120)
        assert run["status"] == "failed"  # its process died with the server it killed
        # the grandchild existed (it ran as the run's account), and is gone within a few seconds
        gone = await until(lambda: not sleeping(mark), within=10)
        assert gone, [(p.pid, p.ppid(), p.uids().real) for p in sleeping(mark)]
        if mode == "uid":
            assert await until(lambda: not orphans_of(NOBODY.uid), within=10), orphans_of(NOBODY.uid)


async def test_a_killed_workers_socket_links_are_removed_by_the_next_worker(workers: Any, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / "worker-999999-1" / "run-x"  # a dead worker's run folder
    deep.mkdir(parents=True)
    _, dead = socket_base(deep)
    live_run = tmp_path / ("e" * 100) / "run-y"  # a folder of no worker's, still there
    live_run.mkdir(parents=True)
    _, live = socket_base(live_run)
    assert dead is not None
    assert live is not None
    old = time.time() - 2 * sweep.LINK_AGE_SECONDS
    for folder in (dead, live):
        os.utime(folder, (old, old), follow_symlinks=False)
    try:
        async with workers():
            assert not dead.exists()
            assert live.exists()  # its run's folder is there, of no dead worker: kept
    finally:
        for folder in (dead, live):
            shutil.rmtree(folder, ignore_errors=True)


#: an orphan of the run account that keeps forking (each child sleeps): to be caught, a sweep must stop the
#: tree before it kills it (200 children at most: never a fork bomb)
FORKING = """
import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
for _ in range(200):
    if os.fork() == 0:
        time.sleep(300)
        os._exit(0)
    time.sleep(0.01)
time.sleep(300)
"""


@as_root
def test_a_sweep_catches_an_orphan_that_keeps_forking(mark: str) -> None:
    started = subprocess.run(
        [sys.executable, "-c", FORKING, mark],
        user=NOBODY.uid,
        group=NOBODY.gid,
        extra_groups=[],
        cwd="/",
        check=True,
    )
    assert started.returncode == 0
    deadline = time.monotonic() + 10
    while len(sleeping(mark)) < 20 and time.monotonic() < deadline:  # it is forking now
        time.sleep(0.02)
    assert sleeping(mark), "the orphan did not start"
    assert all(process.uids().real == NOBODY.uid for process in sleeping(mark))
    killed = sweep.sweep_account({NOBODY.uid})
    assert {process.pid for process in sleeping(mark)} == set(), "a process of the tree outlived the sweep"
    assert len(killed) >= 20


#: a run that detaches a sleeping grandchild once (a later attempt of the run does not), then works on
DETACH_ONCE = f"""
import os, time
if not os.path.exists(flag):
    open(flag, "w").close()
{textwrap.indent(double_forked_sleep("mark"), "    ")}    print("detached", flush=True)
    time.sleep(120)
"""


async def test_what_a_killed_workers_run_detached_is_killed_by_the_next_worker(
    api: Api, processes: Any, notebook_workflow: Any, shared_dir: Path, mark: str
) -> None:
    """Personal mode: the worker is killed outright, its zygote and run die with it, and the run's detached
    grandchild (working in the dead worker's runs' folder) is killed when the next worker starts."""
    user = who()
    workflow = await notebook_workflow(user, notebook(DETACH_ONCE, parameters="flag = ''\nmark = ''"))
    first = processes(worker_slots=1, kernel_pool_size=1)
    await asyncio.to_thread(first.wait_started)
    inputs = {"flag": str(shared_dir / "detached"), "mark": mark}
    reply = await api("POST", "workflows", workflow["id"], "execute", user=user, body={"inputs": inputs})
    assert reply.status == 202, reply.text
    assert await until(lambda: bool(sleeping(mark)), within=60), "the run did not detach its grandchild"
    first.kill()
    assert await until(lambda: all(p.ppid() == 1 for p in sleeping(mark)), within=10)  # an orphan now
    second = processes(worker_slots=1, kernel_pool_size=1)
    await asyncio.to_thread(second.wait_started)
    assert await until(lambda: not sleeping(mark), within=10), [(p.pid, p.ppid()) for p in sleeping(mark)]


def test_the_accounts_swept_at_a_workers_start_are_its_modes_run_accounts_only() -> None:
    assert sweep.run_account_uids(RunAccounts("")) == set()  # personal: the person's own, never swept by uid
    assert sweep.run_account_uids(RunAccounts("uid:4242")) == {4242}
    team = sweep.run_account_uids(RunAccounts("per-organization"))
    names = {pwd.getpwuid(uid).pw_name for uid in team}
    assert all(name.startswith("orch-") and not name.startswith("orch-n8n-") for name in names), names
