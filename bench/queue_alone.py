"""The queue's own work per run in ``bench/scale.py``: runs claimed, their events written and finished through
:class:`orchestrator_ext.engine.queue.Queue` from the benchmark's process as a worker does, with no process
forked; its database round trips counted and each part timed.
"""

from __future__ import annotations

import time
from typing import Any

from harness import distribution, short


class RoundTrips:
    """Counts the database round trips of this process: each statement outside a pipeline (the pool's
    connection checks included), and each pipeline's sync (however many statements it carries)."""

    def __init__(self) -> None:
        import psycopg

        self.count = 0
        self._patched: list[tuple[Any, str, Any]] = []
        cursor_execute = psycopg.AsyncCursor.execute
        pipeline_sync = psycopg.AsyncPipeline.sync
        counter = self

        async def execute(cur: Any, *args: Any, **kwargs: Any) -> Any:
            if cur.connection._pipeline is None:
                counter.count += 1
            return await cursor_execute(cur, *args, **kwargs)

        async def sync(pipeline: Any) -> None:
            counter.count += 1
            await pipeline_sync(pipeline)

        for owner, name, replacement in (
            (psycopg.AsyncCursor, "execute", execute),
            (psycopg.AsyncPipeline, "sync", sync),
        ):
            self._patched.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)

    def close(self) -> None:
        for owner, name, original in self._patched:
            setattr(owner, name, original)


def event_rows(run: Any) -> list[dict[str, Any]]:
    """What a trivial LangGraph run writes besides its status: two steps and a log line."""
    key = {"execution_id": str(run.id), "org_id": str(run.org_id), "attempt": run.attempt}
    return [
        {**key, "kind": "step", "data": {"node": "a", "type": "code", "output": 1}},
        {**key, "kind": "step", "data": {"node": "b", "type": "code", "output": 2}},
        {**key, "kind": "log", "data": {"stream": "stderr", "text": "a line\n"}},
    ]


async def claim(queue: Any, count: int) -> list[Any]:
    """``count`` runs in one round trip (``Queue.claim_many``); one where the queue has no such call (older code)."""
    if hasattr(queue, "claim_many"):
        return list(await queue.claim_many("bench-queue", 60, None, count))
    run = await queue.claim("bench-queue", 60)
    return [run] if run is not None else []


async def drive_queue(app_url: str, runs: int, batch: int) -> dict[str, Any]:
    """Claim, events, finish for ``runs`` queued runs, ``batch`` claimed per round trip; time and round trips."""
    from orchestrator_ext.engine.queue import Queue

    queue = Queue(app_url, size=2)
    await queue.open()
    trips = RoundTrips()
    claim_s: list[float] = []
    events_s: list[float] = []
    finish_s: list[float] = []
    done = 0
    try:
        while done < runs:
            t0 = time.perf_counter()
            claimed = await claim(queue, min(batch, runs - done))
            claim_s.extend([(time.perf_counter() - t0) / max(1, len(claimed))] * len(claimed))
            if not claimed:
                raise SystemExit(f"the queue ran dry after {done} of {runs} runs")
            t0 = time.perf_counter()
            await queue.append_events([row for run in claimed for row in event_rows(run)])
            events_s.extend([(time.perf_counter() - t0) / len(claimed)] * len(claimed))
            for run in claimed:
                t0 = time.perf_counter()
                if not await queue.finish(run, "bench-queue", "succeeded", {"output": 2}, None, None):
                    raise SystemExit(f"run {run.id} was not held")
                finish_s.append(time.perf_counter() - t0)
            done += len(claimed)
    finally:
        calls = trips.count
        trips.close()
        await queue.close()
    return {
        "runs": runs,
        "claimed_per_round_trip": batch,
        "round_trips_per_run": round(calls / runs, 2),
        "claim": short(distribution(claim_s)),
        "events": short(distribution(events_s)),
        "finish": short(distribution(finish_s)),
        "ms_per_run": round(1000 * (sum(claim_s) + sum(events_s) + sum(finish_s)) / runs, 3),
    }
