"""An organization's ``runs_per_process``: its framework runs share a forked process, one at a time, only
when it opted in, never with another organization; cancel, timeout and a crash end only the run in it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest

from orchestrator_ext.engine.runners import ForkedRunner, RunnerPool
from tests.conftest import Api
from tests.engine.conftest import wait_final, who

#: a LangGraph code node reporting its process and a module global of an installed package it bumps
PROBE = """def run(values):
    import os, time
    import orchestrator_runtimes as shared
    shared.reuse_probe = getattr(shared, "reuse_probe", 0) + 1
    behave = values.get("behave") or ""
    if behave == "sleep":
        time.sleep(60)
    if behave == "crash":
        os._exit(3)
    left = os.environ.get("LEFT_BY_A_RUN", "")
    os.environ["LEFT_BY_A_RUN"] = "yes"
    return {"pid": os.getpid(), "seen": shared.reuse_probe, "left": left}
"""


def probe_spec() -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "input"},
            {"id": "probe", "type": "code", "config": {"source": PROBE}},
            {"id": "end", "type": "output"},
        ],
        "edges": [{"source": "start", "target": "probe"}, {"source": "probe", "target": "end"}],
    }


async def org_of(api: Api, user: str, runs: int) -> None:
    """Set the user's personal organization's ``runs_per_process``."""
    me = (await api("GET", "users", "me", user=user)).json
    org = me["memberships"][0]["org_id"]
    reply = await api("PATCH", "organizations", org, user=user, body={"runs_per_process": runs})
    assert reply.status == 200, reply.text


async def start(api: Api, user: str, workflow: str, behave: str = "", **body: Any) -> str:
    inputs = {"behave": behave}
    reply = await api("POST", "workflows", workflow, "execute", user=user, body={"inputs": inputs, **body})
    assert reply.status == 202, reply.text
    return str(reply.json["id"])


async def probe(api: Api, user: str, workflow: str, behave: str = "", **body: Any) -> dict[str, Any]:
    return await wait_final(api, user, await start(api, user, workflow, behave, **body), within=60)


def seen(run: dict[str, Any]) -> tuple[int, int]:
    assert run["status"] == "succeeded", run
    found = run["outputs"]["values"]["probe"]
    assert found["left"] == "", "a run saw the environment variable an earlier run set"
    return int(found["pid"]), int(found["seen"])


async def make_workflow(api: Api, create_agent: Any, create_workflow: Any, user: str) -> str:
    agent = await create_agent(user=user, framework="langgraph")
    return str((await create_workflow(user, agent["id"], spec=probe_spec()))["id"])


async def test_an_organization_that_opted_in_reuses_one_process_never_shared_with_another(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any
) -> None:
    alice, bob, carol, dave = who("alice"), who("bob"), who("carol"), who("dave")
    for user, runs in ((alice, 5), (carol, 5), (dave, 2)):
        await org_of(api, user, runs)
    flows = {user: await make_workflow(api, create_agent, create_workflow, user) for user in (alice, bob, carol, dave)}
    async with workers(runner_pool_size=1, preload=("langgraph",)):
        first = [seen(await probe(api, alice, flows[alice])) for _ in range(3)]
        fresh = [seen(await probe(api, bob, flows[bob])) for _ in range(2)]  # the default: a fresh fork each
        other = seen(await probe(api, carol, flows[carol]))  # opted in too, but another organization
        again = seen(await probe(api, alice, flows[alice]))
        bounded = [seen(await probe(api, dave, flows[dave])) for _ in range(3)]
    pid = first[0][0]
    assert first == [(pid, 1), (pid, 2), (pid, 3)]  # one process; a module global a run set is seen by the next
    assert again == (pid, 4)
    assert [n for _, n in fresh] == [1, 1]
    assert len({p for p, _ in fresh} | {pid}) == 3
    assert other[1] == 1
    assert other[0] not in {pid, *(p for p, _ in fresh)}
    assert [n for _, n in bounded] == [1, 2, 1]  # 2 runs a process, then a fresh one
    assert bounded[0][0] == bounded[1][0] != bounded[2][0]


async def wait_running(api: Api, user: str, execution_id: str) -> None:
    for _ in range(600):
        status = (await api("GET", "executions", execution_id, user=user)).json["status"]
        if status == "running":
            await asyncio.sleep(0.3)  # in its node by now
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never running: {status}")


async def test_cancel_timeout_and_a_crash_end_only_the_run_in_a_kept_process(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any
) -> None:
    alice = who("alice")
    await org_of(api, alice, 100)
    flow = await make_workflow(api, create_agent, create_workflow, alice)
    async with workers(runner_pool_size=1, preload=("langgraph",)):
        kept, _ = seen(await probe(api, alice, flow))
        assert seen(await probe(api, alice, flow)) == (kept, 2)  # kept: the next run goes in the same process
        timed_out = await probe(api, alice, flow, "sleep", timeout_seconds=2)  # in the kept process
        after_timeout = seen(await probe(api, alice, flow))
        sleeping = await start(api, alice, flow, "sleep")
        await wait_running(api, alice, sleeping)
        assert (await api("POST", "executions", sleeping, "cancel", user=alice)).status in (200, 202)
        cancelled = await wait_final(api, alice, sleeping)
        after_cancel = seen(await probe(api, alice, flow))
        crashed = await probe(api, alice, flow, "crash")
        after_crash = seen(await probe(api, alice, flow))
    assert timed_out["status"] == "timed_out", timed_out
    assert cancelled["status"] == "cancelled", cancelled
    assert (crashed["status"], crashed["error"]["kind"]) == ("failed", "resources"), crashed
    # each kill ended the process it ran in: the next run starts afresh (its module global unset) and succeeds
    assert after_timeout[1] == after_cancel[1] == after_crash[1] == 1
    assert len({kept, after_timeout[0], after_cancel[0], after_crash[0]}) == 4
    assert not alive(kept)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def kept_runner(pool: RunnerPool, org: str, runs: int, tier: str = "t") -> ForkedRunner:
    """A forked process that ran one (failing, fast) job for ``org`` and was released to be kept."""
    runner = await pool.for_org(None, None).take(org, tier, runs)
    assert isinstance(runner, ForkedRunner)
    messages = [message async for message in runner.messages({"framework": "no-such-runtime"})]
    assert "error" in messages[-1], messages
    await runner.discard()
    return runner


async def test_a_kept_process_that_exited_is_dropped_and_never_signalled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = RunnerPool(1, [], 0, tmp_path)
    try:
        runner = await kept_runner(pool, "org-a", runs=5)
        server = pool.servers.get(None)
        assert len(server.kept) == 1
        assert runner.pid is not None
        assert runner.ref is not None
        os.kill(runner.pid, signal.SIGKILL)  # it ends by itself (as after its idle time), the fork server reaps it
        for _ in range(200):
            if runner.ref.exited():
                break
            await asyncio.sleep(0.02)
        assert runner.ref.exited()
        signalled: list[int] = []
        monkeypatch.setattr(os, "killpg", lambda pid, number: signalled.append(pid))
        other = await pool.for_org(None, None).take("org-b", "t", 1)  # any run's start drops it
        assert len(server.kept) == 0
        assert signalled == []  # its pid may be another process's by now: not signalled
        runner.kill_now()
        assert signalled == []
        monkeypatch.undo()
        await other.discard()
    finally:
        await pool.close()


async def test_a_changed_setting_or_tier_lets_the_kept_processes_go(tmp_path: Path) -> None:
    pool = RunnerPool(1, [], 0, tmp_path)
    try:
        first = await kept_runner(pool, "org-a", runs=5)
        assert (await kept_runner(pool, "org-a", runs=5)).pid == first.pid  # kept, then taken again
        lowered = await kept_runner(pool, "org-a", runs=2)  # the setting lowered: not the process kept under 5
        assert lowered.pid != first.pid
        assert not first.connected()
        moved = await kept_runner(pool, "org-a", runs=2, tier="pro")  # another tier: a fresh process
        assert moved.pid != lowered.pid
        assert not lowered.connected()
        once = await kept_runner(pool, "org-a", runs=1)
        assert once.pid != moved.pid
        assert len(pool.servers.get(None).kept) == 0
    finally:
        await pool.close()


async def test_at_most_parked_processes_wait_the_longest_waiting_goes(tmp_path: Path) -> None:
    pool = RunnerPool(1, [], 0, tmp_path, parked=2)
    try:
        kept = [await kept_runner(pool, org, runs=5) for org in ("org-a", "org-b", "org-c")]
        assert len(pool.servers.get(None).kept) == 2
        assert [runner.connected() for runner in kept] == [False, True, True]  # org-a's, parked first, closed
        assert (await kept_runner(pool, "org-b", runs=5)).pid == kept[1].pid
    finally:
        await pool.close()


async def test_a_kill_meant_for_a_run_that_ended_spares_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = RunnerPool(1, [], 0, tmp_path)
    try:
        runner = await pool.for_org(None, None).take("org-a", "t", 5)
        assert isinstance(runner, ForkedRunner)
        late_kill = runner.killer()  # as a run's timeout holds it
        assert "error" in [m async for m in runner.messages({"framework": "no-such-runtime"})][-1]
        await runner.discard()  # released: kept for the organization's next run
        signalled: list[int] = []
        monkeypatch.setattr(os, "killpg", lambda pid, number: signalled.append(pid))
        late_kill()
        assert signalled == []
        assert runner.connected()
        runner.killer()()  # the kill of the run it serves now does reach it
        assert signalled == [runner.pid]
    finally:
        monkeypatch.undo()
        await pool.close()
