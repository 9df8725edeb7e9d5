"""Runs that go wrong end in a clear final state, with an error a user can act on, and the worker survives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.engine import attempts
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


async def test_a_notebook_gets_its_memory_limit_in_resident_memory(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    """2048 MiB means what a run holds: 1.5 GiB fits (an address-space limit left a kernel ~1.1 GiB); 3 GiB is
    stopped near the limit, and the run fails saying so. The worker goes on."""
    user = who()
    allocate = "held = [b'x' * (64 << 20) for _ in range({})]\nprint(len(held) * 64, 'MiB held')"
    fits = await notebook_workflow(user, notebook(allocate.format(24)))
    too_much = await notebook_workflow(user, notebook(allocate.format(48)))
    follow_up = await notebook_workflow(user, notebook("print('still here')"))
    async with workers(memory_mib=2048, kernel_pool_size=1):
        ok = await run_to_end(user, fits["id"], within=120)
        stopped = await run_to_end(user, too_much["id"], within=120)
        after = await run_to_end(user, follow_up["id"])
    assert ok["status"] == "succeeded", ok["error"]
    assert "1536 MiB held" in (await api("GET", "executions", ok["id"], "logs", user=user)).text
    assert (stopped["status"], stopped["attempt"]) == ("failed", 1), stopped["error"]
    assert stopped["error"]["kind"] == "resources", stopped["error"]
    assert "exceeded its memory limit of 2048 MiB (resident:" in stopped["error"]["message"]
    assert 2048 < stopped["error"]["resident_mib"] < 3072
    assert after["status"] == "succeeded"


async def test_a_notebook_that_prints_50_mb_at_once_keeps_the_first_mib_of_it(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    workflow = await notebook_workflow(user, notebook("print('y' * 50_000_000)"))
    async with workers(max_log_bytes=1 << 20, max_output_bytes=2 << 20, kernel_pool_size=1):
        run = await run_to_end(user, workflow["id"], within=120)
    assert run["status"] == "succeeded", run["error"]
    logs = (await api("GET", "executions", run["id"], "logs", user=user)).text
    assert "y" * 1000 in logs
    assert f"bytes cut after the first {1 << 20} bytes" in logs


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


async def test_a_graph_workflow_without_what_it_runs_on_fails_clearly(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, run_to_end: Any
) -> None:
    user = who()
    agent = await create_agent(user=user, framework="n8n")  # and the organization has no n8n instance
    spec = {"nodes": [{"id": "flow", "type": "n8n_workflow", "config": {"workflow_id": "x"}}]}
    workflow = await create_workflow(user, agent["id"], spec=spec)
    async with workers(runner_pool_size=1):
        run = await run_to_end(user, workflow["id"])
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "configuration"
    assert "received no n8n integration" in run["error"]["message"]


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


async def test_a_bug_in_the_worker_ends_the_run_at_once_with_its_traceback(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deterministic failure of ours (here: preparing the notebook raises) is not retried as a lost worker
    would be: the run fails on its first attempt, and the traceback is in its error and its log."""

    def broken_prepare(*args: Any, **kwargs: Any) -> Any:
        raise AttributeError("'list' object has no attribute 'strip'")

    monkeypatch.setattr(attempts, "prepare", broken_prepare)
    user = who()
    workflow = await notebook_workflow(user, notebook("print('never runs')"), max_attempts=3)
    async with workers(retry_backoff_seconds=0.1):
        run = await run_to_end(user, workflow["id"])
    assert (run["status"], run["attempt"], run["max_attempts"]) == ("failed", 1, 3)
    error = run["error"]
    assert error["kind"] == "internal"
    assert "AttributeError: 'list' object has no attribute 'strip'" in error["message"]
    assert any("broken_prepare" in line for line in error["traceback"])
    logs = (await api("GET", "executions", run["id"], "logs", user=user)).text
    assert "Traceback (most recent call last)" in logs
    assert "AttributeError: 'list' object has no attribute 'strip'" in logs
    missing = await api("GET", "executions", run["id"], "notebook", user=user)
    assert missing.status == 404
    assert "ended failed before its notebook could be prepared (the worker failed: AttributeError" in missing.text


async def test_a_kernel_that_dies_is_an_infrastructure_fault_and_retried(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any, shared_dir: Path
) -> None:
    """The kernel's process dies in the first attempt (as on a machine that lost it); the second one runs."""
    source = (
        "import os\nfrom orchestrator_runtimes import record\n"
        "if not os.path.exists(marker):\n    open(marker, 'w').close()\n    os._exit(1)\n"
        "record('survived', True)"
    )
    user = who()
    workflow = await notebook_workflow(user, notebook(source, parameters="marker = ''"), max_attempts=2)
    async with workers(retry_backoff_seconds=0.1):
        run = await run_to_end(user, workflow["id"], inputs={"marker": str(shared_dir / "died-once")})
    assert (run["status"], run["attempt"], run["outputs"]) == ("succeeded", 2, {"survived": True}), run["error"]
    events = (await api("GET", "executions", run["id"], "events", user=user)).text
    assert "the kernel died" in events


async def test_a_run_that_fails_before_its_first_cell_still_shows_its_notebook(
    api: Api, workers: Any, notebook_workflow: Any, run_to_end: Any
) -> None:
    """The kernel is not installed: the run never starts a cell, and /notebook gives the prepared notebook."""
    user = who()
    nb = notebook("print(n)", parameters="n = 1")
    nb["metadata"]["kernelspec"] = {"name": "no-such-kernel", "display_name": "?", "language": "python"}
    workflow = await notebook_workflow(user, nb)
    async with workers():
        run = await run_to_end(user, workflow["id"], inputs={"n": 7})
    assert (run["status"], run["error"]["kind"]) == ("failed", "configuration")
    document = await api("GET", "executions", run["id"], "notebook", user=user)
    assert document.status == 200, document.text
    cells = document.json["cells"]
    assert [cell["metadata"]["tags"] for cell in cells] == [["parameters"], ["injected-parameters"], []]
    assert cells[1]["source"] == "# Parameters\nn = 7\n"
    assert all(cell["execution_count"] is None for cell in cells)
