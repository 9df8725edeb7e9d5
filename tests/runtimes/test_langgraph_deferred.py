"""A LangGraph run's first attempt checkpoints in memory: the runs' database gets its checkpoint only when
someone will read it (the run waits for a human, or fails and is retried), never for a run that succeeded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
from orchestrator_runtimes.langgraph import LangGraphRuntime
from orchestrator_runtimes.langgraph.deferred import defers
from orchestrator_runtimes.runtime import RunContext, RunResult, RunWaiting

from tests.runtimes.test_langgraph_runtime import code, failure, run_all, spec

RUNTIME = LangGraphRuntime()
# fails on its first attempt (no mark yet), works on the next: the retry must go on from the checkpoint
FLAKY = (
    "def run(values):\n    import os\n    if not os.path.exists({mark!r}):\n        open({mark!r}, 'w').close()\n"
    "        raise RuntimeError('first attempt')\n    return 'second'"
)
COUNTED = "def run(values):\n    with open({count!r}, 'a') as out:\n        out.write('x')\n    return 'counted'"


def checkpoints(url: str, thread: str) -> int:
    """How many checkpoints the runs' database holds for ``thread`` (0 when the tables do not exist)."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('checkpoints')").fetchone() == (None,):
            return 0
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread,)).fetchone()
        return int(row[0]) if row else 0


def test_only_a_first_attempt_at_exit_durability_defers() -> None:
    assert defers("exit", 1, None)
    assert not defers("exit", 2, None)  # a retry reads what the attempt before it left
    assert not defers("exit", 2, {"answer": True})
    assert not defers("sync", 1, None)  # asked for a checkpoint after every step


def test_a_run_that_succeeds_writes_no_checkpoint(run_context: Callable[..., RunContext], state_url: str) -> None:
    graph = spec([{"id": "a", "type": "code", "config": code("def run(values):\n    return 1")}])
    context = run_context(state_url=state_url)
    _, result = run_all(RUNTIME.run(graph, {}, context))
    assert isinstance(result, RunResult)
    assert checkpoints(state_url, context.execution_id) == 0
    # the same graph at durability 'sync' writes as it goes
    synced = spec([{"id": "a", "type": "code", "config": code("def run(values):\n    return 1")}], durability="sync")
    context = run_context(state_url=state_url)
    run_all(RUNTIME.run(synced, {}, context))
    assert checkpoints(state_url, context.execution_id) > 0


def test_a_waiting_run_is_in_the_database_before_it_says_so(
    run_context: Callable[..., RunContext], state_url: str
) -> None:
    graph = spec(
        [
            {"id": "start", "type": "input"},
            {"id": "approve", "type": "human_approval", "config": {"question": "Go?"}},
        ],
        [{"source": "start", "target": "approve"}],
    )
    context = run_context(state_url=state_url)
    for item in RUNTIME.run(graph, {}, context):
        if isinstance(item, RunWaiting):  # the runner reports this and ends: the checkpoint is there now
            assert checkpoints(state_url, context.execution_id) > 0
            break
    else:
        raise AssertionError("the run did not wait")


def test_a_failed_first_attempt_is_retried_from_its_checkpoint(
    run_context: Callable[..., RunContext], state_url: str, tmp_path: Path
) -> None:
    count, mark = tmp_path / "count", tmp_path / "mark"
    graph = spec(
        [
            {"id": "once", "type": "code", "config": code(COUNTED.format(count=str(count)))},
            {"id": "flaky", "type": "code", "config": code(FLAKY.format(mark=str(mark)))},
        ],
        [{"source": "once", "target": "flaky"}],
    )
    context = run_context(state_url=state_url)
    assert "first attempt" in failure(RUNTIME.run(graph, {}, context)).message
    assert checkpoints(state_url, context.execution_id) > 0
    retried = RunContext(**{**context.__dict__, "attempt": 2})
    _, result = run_all(RUNTIME.run(graph, {}, retried))
    assert isinstance(result, RunResult)
    assert result.outputs["output"] == "second"
    assert count.read_text() == "x"  # the node before the failure ran once: the retry went on from there
