"""The notebook zygote: python3 notebooks on a fork of a warm interpreter, as their organization's account.

What a run's process is (its own session, non-dumpable, killed with the zygote and the worker, fresh for
every run, the run's directory and environment), that one organization's zygote never serves another,
and that the readiness check the worker claims on says the truth. Output parity with a kernel is
``test_papermill_parity.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from papermill.engines import papermill_engines

from orchestrator_ext.engine.kernels import KernelPool, discard, zygote_python
from orchestrator_ext.engine.zygote import ZygoteKernel
from orchestrator_ext.engine.zygote_client import ZygoteEngine
from tests.engine.test_run_accounts import NOBODY, as_root, root  # noqa: F401 - the fixture

PROBE = """
import ctypes, json, os
libc = ctypes.CDLL(None)
signal = ctypes.c_int(0)
libc.prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG
print(json.dumps({"pid": os.getpid(), "sid": os.getsid(0), "uid": os.getuid(), "gid": os.getgid(),
    "groups": os.getgroups(), "cwd": os.getcwd(), "home": os.environ.get("HOME"), "env": sorted(os.environ),
    "dumpable": libc.prctl(3, 0, 0, 0, 0), "pdeathsig": signal.value, "seen": "left" in globals()}))
left = "by an earlier run"
"""


async def probe(kernel: ZygoteKernel) -> dict[str, Any]:
    """Run :data:`PROBE` on ``kernel``; what it printed."""
    printed = []
    async for message in kernel.request({"execute": {"code": PROBE}}):
        if message.get("msg_type") == "stream":
            printed.append(message["content"]["text"])
        if "reply" in message:
            assert message["reply"]["status"] == "ok", message
    return json.loads("".join(printed))  # type: ignore[no-any-return]


async def test_each_run_is_a_fresh_non_dumpable_child_in_its_own_session_and_directory(root: Path) -> None:  # noqa: F811
    pool = KernelPool(0, 0, root)
    assert not pool.is_ready()
    try:
        reports = []
        for _ in range(2):
            kernel = await pool.for_org(None, None).take()
            assert isinstance(kernel, ZygoteKernel)
            try:
                reports.append(await probe(kernel))
                assert Path(kernel.workdir).parent == root
            finally:
                await discard(kernel)
            assert not os.path.exists(kernel.workdir)  # noqa: ASYNC240 - the run's directory goes with it
        assert pool.is_ready()
        zygote = pool.zygotes.peek(None)
        assert zygote is not None
        assert zygote.process is not None
        first, second = reports
        assert first["pid"] != second["pid"] != zygote.process.pid
        assert first["sid"] == first["pid"]  # its own session: cancel kills its whole group
        assert first["dumpable"] == 0  # no other process of its account may read its memory
        assert first["pdeathsig"] == signal.SIGKILL
        assert not second["seen"]  # nothing of the earlier run: a new fork of the untouched zygote
        assert first["cwd"] == first["home"] != second["cwd"]
        assert not {"DATABASE_URL", "ORCHESTRATOR_DATABASE_URL"} & set(first["env"])
    finally:
        await pool.close()


async def test_an_organizations_zygote_never_forks_for_another(root: Path) -> None:  # noqa: F811
    pool = KernelPool(0, 0, root)
    try:
        kernel_a = await pool.for_org("org-a", None).take()
        kernel_b = await pool.for_org("org-b", None).take()
        try:
            zygote_a, zygote_b = pool.zygotes.peek("org-a"), pool.zygotes.peek("org-b")
            assert zygote_a is not None
            assert zygote_b is not None
            assert zygote_a is not zygote_b
            assert zygote_a.process is not None
            assert zygote_b.process is not None
            assert psutil.Process(kernel_a.pid).ppid() == zygote_a.process.pid
            assert psutil.Process(kernel_b.pid).ppid() == zygote_b.process.pid
            assert pool.is_ready("org-a")
            assert not pool.is_ready("org-c")
        finally:
            await discard(kernel_a)
            await discard(kernel_b)
    finally:
        await pool.close()


@as_root
async def test_the_child_runs_as_its_organizations_account_with_no_other_group(root: Path) -> None:  # noqa: F811
    pool = KernelPool(0, 0, root)
    try:
        kernel = await pool.for_org("org-a", NOBODY).take()
        assert isinstance(kernel, ZygoteKernel)
        try:
            report = await probe(kernel)
        finally:
            await discard(kernel)
        assert (report["uid"], report["gid"], report["groups"]) == (65534, 65534, [])
        zygote = pool.zygotes.peek("org-a")
        assert zygote is not None
        assert zygote.process is not None
        assert zygote.control is not None
        assert psutil.Process(zygote.process.pid).uids().real == 65534
        assert os.stat(f"/proc/{zygote.process.pid}/environ").st_uid == 0  # non-dumpable
        # only the worker may ask for forks: the socket's folder is its own, closed to the runs
        assert zygote.control.stat().st_uid == os.geteuid()
        assert zygote.control.stat().st_mode & 0o777 == 0o700
    finally:
        await pool.close()


WORKER = """
import asyncio, json, sys
from pathlib import Path
from orchestrator_ext.engine.kernels import KernelPool

async def main():
    pool = KernelPool(0, 0, Path(sys.argv[1]))
    kernel = await pool.for_org(None, None).take()
    print(json.dumps({"zygote": pool.zygotes.peek(None).process.pid, "run": kernel.pid}), flush=True)
    async for message in kernel.request({"execute": {"code": "import time; time.sleep(120)"}}):
        pass

asyncio.run(main())
"""


def test_the_zygote_and_its_runs_die_with_their_worker(root: Path) -> None:  # noqa: F811
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        pids = json.loads(worker.stdout.readline())
        processes = [psutil.Process(pids["zygote"]), psutil.Process(pids["run"])]
        worker.send_signal(signal.SIGKILL)  # no clean-up of its own: only the parent-death signals
        _gone, alive = psutil.wait_procs(processes, timeout=10)
        assert not alive, alive
    finally:
        worker.kill()
        worker.wait()


async def test_a_child_killed_mid_cell_is_a_dead_kernel_and_the_zygote_forks_on(root: Path) -> None:  # noqa: F811
    pool = KernelPool(0, 0, root)
    try:
        kernel = await pool.for_org(None, None).take()
        assert isinstance(kernel, ZygoteKernel)
        started = time.monotonic()
        cell = asyncio.ensure_future(kernel.execute("import time; time.sleep(60)", timeout=60))
        await asyncio.sleep(0.2)
        kernel.kill_now()
        with pytest.raises(RuntimeError, match="ended"):
            await cell
        assert time.monotonic() - started < 10
        await discard(kernel)
        again = await pool.for_org(None, None).take()
        try:
            reply = await again.client.execute("1 + 1")
            assert reply["content"]["status"] == "ok"
        finally:
            await discard(again)
    finally:
        await pool.close()


def test_the_kernel_engine_and_other_commands_keep_starting_kernels() -> None:
    assert KernelPool(0, 0, engine="kernel").python is None
    assert zygote_python(["/opt/py/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]) == (
        "/opt/py/bin/python"
    )
    assert zygote_python(["/bin/sh", "-c", "exec python -m ipykernel_launcher"]) is None  # the operator's own
    with pytest.raises(ValueError, match="notebook_engine"):
        KernelPool(0, 0, engine="fast")


def test_papermill_finds_the_engine_through_its_registry() -> None:
    """The ``papermill.engine`` entry point (pyproject.toml), as ``papermill --engine zygote`` loads it."""
    assert papermill_engines.get_engine("zygote") is ZygoteEngine


def test_papermills_command_line_runs_a_notebook_on_the_zygote(tmp_path: Path) -> None:
    source = Path(__file__).parent / "papermill_notebooks" / "simple_execute.ipynb"
    output = tmp_path / "out.ipynb"
    command = [sys.executable, "-m", "papermill", "--engine", "zygote", str(source), str(output), "-p", "msg", "hi"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    cells = json.loads(output.read_text())["cells"]
    assert [o.get("text") for c in cells for o in c.get("outputs", [])] == [["hi\n"]]
