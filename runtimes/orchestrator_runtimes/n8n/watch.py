"""The watcher that stops a run's n8n execution when the run's process is killed.

Cancel and timeout end a run by killing its process group at once (SIGKILL):
nothing in the run can say goodbye to n8n, whose execution would go on. So a
run forks this watcher first (:func:`orchestrator_runtimes.n8n._start_watcher`),
in a session of its own, with what it needs (the instance, the API key, the
workflow, the run's marker). The watcher waits for the run's process to end,
then stops the n8n execution carrying the marker, if one is still running, and
exits: it outlives the run by the time one stop takes, and never more than its
``deadline``. ``python -m orchestrator_runtimes.n8n.watch`` takes the same job
as one JSON line on stdin."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from .api import N8nApi, N8nApiError
from .mapping import marker_of

POLL_SECONDS = 0.1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_marked(api: N8nApi, workflow_id: str | None, hook: str, marker: str, within: float = 5.0) -> list[str]:
    """Stop the running executions of ``workflow_id`` that carry ``marker``; their ids.

    An execution shows its webhook's headers once n8n saved the webhook node's progress: while some
    execution of the workflow runs without them yet, look again, for up to ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        stopped, unknown = [], 0
        for status in ("running", "waiting"):
            for execution in api.executions(workflow_id, status, include_data=True, limit=50):
                found = marker_of(execution, hook)
                if found == marker:
                    api.stop(str(execution["id"]))
                    stopped.append(str(execution["id"]))
                elif found is None:
                    unknown += 1
        if stopped or not unknown or time.monotonic() >= deadline:
            return stopped
        time.sleep(0.2)


def watch(job: dict[str, Any]) -> int:
    pid = int(job["pid"])
    deadline = time.monotonic() + float(job.get("deadline", 7 * 24 * 3600))
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if job.get("done_file") and os.path.exists(str(job["done_file"])):
        return 0  # the run ended by itself: nothing of its can be running
    api = N8nApi(str(job["base_url"]), str(job["api_key"]), timeout=10)
    try:
        workflow_id = str(job["workflow_id"]) if job.get("workflow_id") else None
        stopped = stop_marked(api, workflow_id, str(job["hook"]), str(job["marker"]))
    except N8nApiError as exc:
        print(f"could not stop the n8n execution: {exc.message}", file=sys.stderr)
        return 1
    print(f"stopped n8n executions: {', '.join(stopped) or 'none running'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(watch(json.loads(sys.stdin.readline())))
