"""Runs under accounts of their own, without a hub: the setting, the per-organization pools, kernels
from a fixed command, fork servers as another uid, and everything dying with its worker.

The tests that switch accounts need root and an account (``nobody``) that can run this Python and
import the project; elsewhere they are skipped. The team mode's attack suite is
``tests/hub/test_run_isolation.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.kernelspec import NoSuchKernel

from orchestrator_ext.engine.accounts import (
    RunAccount,
    RunAccounts,
    RunAccountsError,
    account_name,
    closed_socket,
    runs_root,
)
from orchestrator_ext.engine.kernels import KernelPool, discard
from orchestrator_ext.engine.pool import PerAccount
from orchestrator_ext.engine.runners import ForkedRunner, RunnerPool

NOBODY = RunAccount(65534, 65534, "nobody")


def _nobody_can_run_python() -> bool:
    if os.geteuid() != 0:
        return False
    probe = subprocess.run(
        [sys.executable, "-c", "import orchestrator_runtimes.forkserver"],
        user=NOBODY.uid,
        group=NOBODY.gid,
        extra_groups=[],
        capture_output=True,
        cwd="/",
        check=False,
    )
    return probe.returncode == 0


as_root = pytest.mark.skipif(
    not _nobody_can_run_python(), reason="needs root and an account 'nobody' that can run this Python"
)


@pytest.fixture
def root() -> Iterator[Path]:
    """A runs' root folder every account can enter (pytest's tmp_path is under a 0700 folder)."""
    path = runs_root(Path(tempfile.mkdtemp(prefix="orch-runs-", dir="/tmp")))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


# ---- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["everyone", "uid:", "uid:0", "uid:x", "per-org"])
def test_an_unusable_setting_is_refused_saying_what_to_write(setting: str) -> None:
    with pytest.raises(RunAccountsError, match=r"uid:<N>"):
        RunAccounts(setting)


async def test_the_personal_mode_keeps_the_workers_account_and_one_pool() -> None:
    accounts = RunAccounts("")
    assert not accounts.separate
    assert accounts.pool_key("0b8f4f8e-0000-4000-8000-000000000001") is None
    assert await accounts.for_org("0b8f4f8e-0000-4000-8000-000000000001") is None
    accounts.check()  # nothing to check


async def test_a_fixed_uid_serves_every_organization_but_pools_stay_apart() -> None:
    accounts = RunAccounts("uid:4242")
    assert await accounts.for_org("org-a") == RunAccount(4242, 4242)
    assert await accounts.for_org("org-b") == RunAccount(4242, 4242)
    assert accounts.pool_key("org-a") != accounts.pool_key("org-b")
    assert RunAccount(4242, 4242).popen_kwargs() == {"user": 4242, "group": 4242, "extra_groups": []}


def test_an_organizations_account_name_is_short_stable_and_tells_nothing_of_it() -> None:
    org = "7d1f5e0a-3c2b-4a59-9e8d-2f6a1b0c9d33"
    name = account_name(org)
    assert name == account_name(org)
    assert name != account_name("7d1f5e0a-3c2b-4a59-9e8d-2f6a1b0c9d34")
    assert name.startswith("orch-")
    assert len(name) == 17
    assert "7d1f5e0a" not in name


def test_the_runs_root_is_private_and_refused_where_runs_could_not_reach_it(root: Path, tmp_path: Path) -> None:
    assert root.stat().st_mode & 0o777 == 0o711
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o700)
    with pytest.raises(RunAccountsError, match=r"closed to other accounts \(set run_dir\)"):
        runs_root(closed / "runs")
    if os.geteuid() == 0:
        os.chown(root, 65534, 65534)
        with pytest.raises(RunAccountsError, match="belongs to another account"):
            runs_root(root)
        os.chown(root, 0, 0)


def test_a_database_socket_in_a_private_folder_is_known_closed_to_the_runs(tmp_path: Path) -> None:
    private = tmp_path / "pgdata"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert closed_socket(f"postgresql://orchestrator_runs@/orchestrator_runs?host={private}") == private
    assert closed_socket("postgresql://orchestrator_runs:pw@db.example.org:5432/orchestrator_runs") is None
    assert closed_socket("postgresql://orchestrator_runs@/orchestrator_runs?host=/") is None


# ---- per-organization pools -------------------------------------------------------------------------


class Fake:
    def __init__(self, key: str | None) -> None:
        self.key, self.closed, self.busy = key, False, False

    async def close(self) -> None:
        self.closed = True


async def test_pools_are_per_organization_bounded_and_never_close_a_busy_one() -> None:
    made: list[Fake] = []

    def make(key: str | None) -> Fake:
        made.append(Fake(key))
        return made[-1]

    pools: PerAccount[Fake] = PerAccount(make, Fake.close, busy=lambda fake: fake.busy, limit=2, idle_seconds=600)
    a = pools.get("a")
    assert pools.get("a") is a  # the same organization, the same pool
    b = pools.get("b")
    a.busy = True
    pools.get("c")  # over the limit, but a's runs are in flight: b, the least recently used idle one, goes
    await asyncio.sleep(0)
    assert (a.closed, b.closed) == (False, True)
    assert pools.keys() == ["a", "c"]
    a.busy = False
    pools.get("d")
    await asyncio.sleep(0)
    assert a.closed
    assert pools.keys() == ["c", "d"]
    await pools.close()
    assert all(fake.closed for fake in made)


async def test_an_idle_organizations_pool_is_closed_at_the_next_use_of_another() -> None:
    pools: PerAccount[Fake] = PerAccount(Fake, Fake.close, limit=8, idle_seconds=0.05)
    idle = pools.get("idle")
    await asyncio.sleep(0.1)
    pools.get("busy")
    await asyncio.sleep(0)
    assert idle.closed
    assert pools.keys() == ["busy"]
    await pools.close()


async def test_a_warm_kernel_of_one_organization_is_never_handed_to_another(root: Path) -> None:
    pool = KernelPool(1, 0, root, engine="kernel")  # the zygote engine's: tests/engine/test_zygote.py
    pool.fill("org-a", None)
    warm = pool.pools.peek("org-a")
    assert warm is not None
    deadline = time.monotonic() + 60
    while warm._ready.empty():
        assert time.monotonic() < deadline, "the warm kernel did not start"
        await asyncio.sleep(0.1)
    kernel_b = await pool.for_org("org-b", None).take()  # started now: org-a's warm kernel is not b's
    try:
        assert warm._ready.qsize() == 1
        kernel_a = await pool.for_org("org-a", None).take()
        assert warm._ready.qsize() == 0
        assert kernel_a.workdir != kernel_b.workdir
        await discard(kernel_a)
    finally:
        await discard(kernel_b)
        await pool.close()


async def test_kernels_start_from_the_operators_command_never_a_planted_kernelspec(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "planted-ran"
    spec_dir = tmp_path / "data" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    argv = ["/bin/sh", "-c", f"touch {marker}; exec {sys.executable} -m ipykernel_launcher -f {{connection_file}}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "planted", "language": "python"}))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "data"))
    pool = KernelPool(0, 0, root, engine="kernel")
    kernel = await pool.for_org(None, None).take("python3")
    try:
        reply = await kernel.client.execute("import sys; print(sys.argv[0])", reply=True, timeout=30)
        assert reply["content"]["status"] == "ok"
        assert not marker.exists()
        assert kernel.manager.kernel_spec.argv[0] == sys.executable
    finally:
        await discard(kernel)
    with pytest.raises(NoSuchKernel):
        await pool.for_org(None, None).take("planted")


# ---- as another account (root) ------------------------------------------------------------------


def code_job(source: str) -> dict[str, Any]:
    nodes = [
        {"id": "start", "type": "input"},
        {"id": "probe", "type": "code", "config": {"source": source}},
        {"id": "end", "type": "output"},
    ]
    edges = [{"source": "start", "target": "probe"}, {"source": "probe", "target": "end"}]
    spec = {"nodes": nodes, "edges": edges}
    return {"framework": "langgraph", "spec": spec, "inputs": {}, "execution_id": "e", "attempt": 1, "integrations": {}}


REPORT = """def run(values):
    import json, os
    return json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "cwd": os.getcwd()})
"""


async def _run(runner: ForkedRunner, job: dict[str, Any]) -> dict[str, Any]:
    async for message in runner.messages(job):
        if "result" in message:
            return json.loads(message["result"]["outputs"]["output"])  # type: ignore[no-any-return]
        assert "error" not in message, message
    raise AssertionError("no result")


@as_root
def test_a_worker_without_the_rights_to_switch_refuses_to_start_saying_what_it_lacks() -> None:
    check = "from orchestrator_ext.engine.accounts import RunAccounts; RunAccounts('uid:4242').check()"
    refused = subprocess.run(
        [sys.executable, "-c", check], user=NOBODY.uid, group=NOBODY.gid, capture_output=True, text=True, cwd="/"
    )
    assert refused.returncode != 0
    assert "it lacks: CHOWN, DAC_OVERRIDE, KILL, SETGID, SETUID" in refused.stderr
    RunAccounts("uid:4242").check()  # root may


@as_root
async def test_framework_runs_fork_from_their_organizations_server_as_its_account(root: Path) -> None:
    pool = RunnerPool(1, [], 0, root)
    try:
        seen = {}
        for org in ("org-a", "org-b"):
            runner = await pool.for_org(org, NOBODY).take()
            assert isinstance(runner, ForkedRunner)
            try:
                seen[org] = await _run(runner, code_job(REPORT))
            finally:
                await runner.discard()
        servers = [pool.servers.peek(org) for org in ("org-a", "org-b")]
        assert servers[0] is not servers[1]  # one fork server per organization
        for report in seen.values():
            assert (report["uid"], report["gid"], report["groups"]) == (65534, 65534, [])
            assert Path(report["cwd"]).parent == root
        for server in servers:
            assert server is not None
            assert server.process is not None
            assert server.control is not None
            process = psutil.Process(server.process.pid)
            assert process.uids().real == 65534
            # non-dumpable: its /proc files are root's, so no run of its account can read its environment
            assert os.stat(f"/proc/{process.pid}/environ").st_uid == 0
            # the socket runs are asked for on is in a folder of the worker's, which runs cannot enter
            assert server.control.stat().st_uid == os.geteuid()
            assert server.control.stat().st_mode & 0o777 == 0o700
            assert server.home is not None
            assert server.home.stat().st_uid == 65534
    finally:
        await pool.close()


WORKER = """
import asyncio, json, sys
from pathlib import Path
from orchestrator_ext.engine.accounts import RunAccount
from orchestrator_ext.engine.runners import RunnerPool

async def main():
    pool = RunnerPool(1, [], 0, Path(sys.argv[1]))
    runner = await pool.for_org("org-a", RunAccount(65534, 65534)).take()
    job = json.loads(sys.argv[2])
    print(json.dumps({"server": pool.servers.peek("org-a").process.pid}), flush=True)
    async for message in runner.messages(job):
        pass

asyncio.run(main())
"""


@as_root
def test_the_fork_server_and_its_runs_die_with_their_worker(root: Path) -> None:
    job = code_job("def run(values):\n    import time\n    time.sleep(120)\n    return 'late'")
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(root), json.dumps(job)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        server = psutil.Process(json.loads(worker.stdout.readline())["server"])
        deadline = time.monotonic() + 60
        while not server.children():
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.1)
        run = server.children()[0]
        worker.send_signal(signal.SIGKILL)  # no clean-up of its own: only the kernel's parent-death signal
        _gone, alive = psutil.wait_procs([server, run], timeout=10)
        assert not alive, alive
    finally:
        worker.kill()
        worker.wait()


async def test_what_a_forked_run_prints_last_arrives_before_its_result(root: Path) -> None:
    pool = RunnerPool(1, [], 0, root)
    try:
        runner = await pool.for_org(None, None).take()
        assert isinstance(runner, ForkedRunner)
        job = code_job("def run(values):\n    for i in range(300):\n        print('line', i)\n    return 'done'")
        printed = []
        try:
            async for message in runner.messages(job):
                if message.get("event") == "log":
                    printed.append(message["data"]["text"])
        finally:
            await runner.discard()
        assert "".join(printed).splitlines()[-1] == "line 299"
        assert "result" in message
    finally:
        await pool.close()
