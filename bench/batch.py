"""Runs submitted at once through the API and waited for: what the benchmarks' throughput figures are.

Every benchmark that measures throughput submits the same way (a thread pool of keep-alive clients) and waits
the same way (until none of the runs is queued or running), so that runs/s means the same in each.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness import API, Client, timestamp


def list_executions(client: Client, workflow_id: str, status: str | None = None, limit: int = 200) -> Iterator[Any]:
    cursor: str | None = None
    while True:
        query = {"workflow_id": workflow_id, "limit": str(limit)}
        if status:
            query["status"] = status
        if cursor:
            query["cursor"] = cursor
        page = client.call("GET", f"{API}/executions?{urllib.parse.urlencode(query)}")
        yield from page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return


def submit_all(
    port: int, token: str, workflow_id: str, runs: int, concurrency: int, inputs: Mapping[str, Any] | None = None
) -> list[str]:
    """``runs`` runs of a workflow submitted at once from ``concurrency`` threads (a keep-alive client each):
    their ids, once every POST was answered."""
    local = threading.local()

    def submit(_: int) -> str:
        if not hasattr(local, "client"):
            local.client = Client(port, token)
        body = {"inputs": dict(inputs or {})}
        reply = local.client.call("POST", f"{API}/workflows/{workflow_id}/execute", body, expect=(202,))
        return str(reply["id"])

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(submit, range(runs)))


def throughput(
    port: int, token: str, workflow_id: str, runs: int, concurrency: int, inputs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``runs`` runs submitted at once by ``concurrency`` clients, then waited for: the rate from the first
    POST to the last end, the server's own span (first created to last finished), and the rate to the 95th
    run (without a straggler's tail)."""
    poller = Client(port, token)
    started = time.perf_counter()
    ids = submit_all(port, token, workflow_id, runs, concurrency, inputs)
    submitted = time.perf_counter()
    polls = 0
    deadline = submitted + 600
    while True:
        # nothing queued, then nothing running: no run can go back to the queue (max_attempts is 1)
        polls += 1
        queued = next(list_executions(poller, workflow_id, "queued", limit=1), None)
        if queued is None and next(list_executions(poller, workflow_id, "running", limit=1), None) is None:
            break
        if time.perf_counter() > deadline:
            raise SystemExit("the throughput runs did not end within 10 minutes")
        time.sleep(0.02)
    finished = time.perf_counter()
    executions = list(list_executions(poller, workflow_id))
    poller.close()
    mine = [e for e in executions if e["id"] in set(ids)]
    if len(mine) != runs or len(executions) != runs:
        raise SystemExit(f"expected the {runs} throughput runs, found {len(executions)} ({len(mine)} of ours)")
    statuses = Counter(e["status"] for e in mine)
    errors = Counter(f"{e['error'].get('kind')}: {e['error'].get('message')}" for e in mine if e.get("error"))
    wall = finished - started
    first_created = min(timestamp(e["created_at"]) for e in mine)
    ends = sorted(timestamp(e["finished_at"]) for e in mine if e.get("finished_at"))
    if not ends:
        raise SystemExit("none of the throughput runs finished")
    last_finished = ends[-1]
    most = min(len(ends), max(1, -(-95 * runs // 100)))  # the 95th of 100: the rate without a straggler's tail
    return {
        "runs": runs,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "submit_concurrency": concurrency,
        "submit_seconds": round(submitted - started, 3),
        "wall_seconds": round(wall, 3),
        "runs_per_second": round(runs / wall, 2),
        "server_span_seconds": round(last_finished - first_created, 3),
        "server_runs_per_second": round(runs / (last_finished - first_created), 2),
        "seconds_to_95pct_done": round(ends[most - 1] - first_created, 3),
        "runs_per_second_to_95pct": round(most / (ends[most - 1] - first_created), 2),
        "polls": polls,
        "execution_ids": ids,
    }
