"""Runs that go wrong end in a clear final state, with an error a user can act on, and the worker survives."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.conftest import Api
from tests.engine.conftest import notebook, who


async def test_a_notebook_that_loops_forever_times_out(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("while True:\n    pass"))
    follow_up = await notebook_workflow(user, notebook("from orchestrator_runtimes import record\nrecord('ok', 1)"))
    async with workers():
        run = await run_to_end(user, workflow["id"], timeout_seconds=2)
        after = await run_to_end(user, follow_up["id"])
    assert run["status"] == "timed_out"
    assert run["timeout_seconds"] == 2
    assert run["error"]["kind"] == "timeout"
    assert "timeout of 2 s" in run["error"]["message"]
    assert after["status"] == "succeeded"
    assert after["outputs"] == {"ok": 1}


async def test_a_notebook_that_prints_50_mb_keeps_a_capped_log_and_notebook(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(
        user, notebook("line = 'x' * 1023\nfor _ in range(50 * 1024):\n    print(line)", "print('done')")
    )
    async with workers(max_log_bytes=256 * 1024, max_output_bytes=512 * 1024):
        run = await run_to_end(user, workflow["id"], within=120)
    assert run["status"] == "succeeded", run["error"]
    logs = (await api("GET", "executions", run["id"], "logs", user=user)).text
    assert len(logs) < 300 * 1024
    assert "[log truncated" in logs
    document = (await api("GET", "executions", run["id"], "notebook", user=user)).json
    outputs = document["cells"][0]["outputs"]
    kept = "".join(out.get("text", "") for out in outputs)
    assert 500 * 1024 < len(kept) < 600 * 1024
    assert "[output truncated" in kept
    second = document["cells"][1]
    assert second["execution_count"] is not None
    assert second["metadata"]["papermill"]["status"] == "completed"
    assert second["outputs"] == []  # past the cap, later output is dropped too


async def test_a_notebook_that_allocates_too_much_memory_fails_with_the_limit(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("hog = bytearray(4 * 1024 ** 3)"))
    follow_up = await notebook_workflow(user, notebook("print('still here')"))
    async with workers(memory_mib=1536):
        run = await run_to_end(user, workflow["id"])
        after = await run_to_end(user, follow_up["id"])
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "resources", run["error"]
    assert "1536 MiB" in run["error"]["message"]
    assert after["status"] == "succeeded"


async def test_failures_worth_retrying_are_retried_with_backoff(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    flaky = await notebook_workflow(user, notebook("raise ConnectionError('the API is down')"), max_attempts=3)
    broken = await notebook_workflow(user, notebook("raise ValueError('a bug')"), max_attempts=3)
    async with workers(retry_backoff_seconds=0.1):
        retried = await run_to_end(user, flaky["id"])
        not_retried = await run_to_end(user, broken["id"])
    assert (retried["status"], retried["attempt"], retried["max_attempts"]) == ("failed", 3, 3)
    assert retried["error"]["ename"] == "ConnectionError"
    events = (await api("GET", "executions", retried["id"], "events", user=user)).text
    assert events.count('"status":"queued"') == 3  # created, then two retries
    assert (not_retried["status"], not_retried["attempt"]) == ("failed", 1)


async def test_a_graph_workflow_without_its_runtime_fails_clearly(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    agent = await create_agent(user=user, framework="n8n")  # no n8n runtime exists yet
    workflow = await create_workflow(user, agent["id"])
    async with workers(runner_pool_size=1):
        run = await run_to_end(user, workflow["id"])
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "configuration"
    assert "'n8n' runtime is not installed" in run["error"]["message"]


async def test_a_notebook_for_a_kernel_that_is_not_installed_fails_clearly(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    nb = notebook("1")
    nb["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "?", "language": "python"}
    workflow = await notebook_workflow(user, nb)
    async with workers():
        run = await run_to_end(user, workflow["id"])
    assert (run["status"], run["attempt"]) == ("failed", 1)
    assert run["error"]["kind"] == "configuration"
    assert "'no-such-kernel' is not installed" in run["error"]["message"]


async def test_nul_characters_in_what_a_run_produces_do_not_lose_it(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    source = (
        "from orchestrator_runtimes import record\nprint('a\\x00b')\n"
        "record('text', 'x\\x00y')\nraise KeyError('k\\x00')"
    )
    workflow = await notebook_workflow(user, notebook(source))
    async with workers():
        run = await run_to_end(user, workflow["id"])
    assert run["status"] == "failed"  # the KeyError, recorded: PostgreSQL's refusal of NUL did not lose the run
    assert run["outputs"] == {"text": "x\ufffdy"}
    assert run["error"]["ename"] == "KeyError"
    assert "a\ufffdb" in (await api("GET", "executions", run["id"], "logs", user=user)).text
    assert (await api("GET", "executions", run["id"], "notebook", user=user)).status == 200


def test_a_worker_process_is_not_dumpable() -> None:
    """Runs run as the worker's user: its /proc/<pid>/environ (database URL, keys) must not be theirs to read."""
    code = (
        "import ctypes\n"
        "from orchestrator_ext.engine.isolation import protect_worker_process\n"
        "assert protect_worker_process()\n"
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "0"
