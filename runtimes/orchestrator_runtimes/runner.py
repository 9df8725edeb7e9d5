"""``python -m orchestrator_runtimes.runner``: one run of a framework runtime in its own process.

The worker starts runners ahead of time (``--preload langgraph,crewai`` imports
those runtimes first), each waiting for one job; a runner runs one job and
exits, so no state leaks from one run to the next. (:mod:`.forkserver` does
the same for many runs: a fresh process for each, forked from one that has
the frameworks imported.)

Protocol: the job is one JSON line on stdin (``framework``, ``spec``,
``inputs``, ``execution_id``, ``attempt``, ``integrations``, ``default_model``,
``state_url``, ``resume``, ``files_root``). The runner answers
``{"ready": true}`` once preloaded, then one JSON line per event
(``{"event": kind, "data": {...}}``) and a last line ``{"result": {...}}``,
``{"waiting": {...}}`` (stopped for a human) or ``{"error": {...}}`` on the
stdout it was started with. Anything the run's own
code prints goes to stderr, which the worker keeps as the run's log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import IO, Any, Protocol

from . import tracing
from .models import model_failure
from .reporting import collect_records
from .runtime import (
    ErrorKind,
    RunContext,
    RunError,
    RunEvent,
    RunnableRuntime,
    RunResult,
    RunWaiting,
    invalid_spec,
    load_runtime,
)
from .tracing import traced_channel


def _protocol_channel() -> IO[str]:
    """Keep the original stdout for the protocol; point fd 1 (and ``print``) at stderr."""
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


class Writer(Protocol):
    def write(self, text: str, /) -> int: ...


def _send(channel: Writer, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message, default=str, allow_nan=False) + "\n")


def preload(names: list[str]) -> None:
    """Import each runtime and its framework now, so the job does not wait for it."""
    for name in names:
        if name == tracing.PRELOAD_NAME:
            tracing.preload()
            continue
        try:
            runtime = load_runtime(name)
            warm = getattr(runtime, "preload", None)
            if callable(warm):
                warm()
        except RunError:
            continue  # not installed here: a job for it fails with the runtime's own message
        except Exception as exc:  # noqa: BLE001 - a broken runtime must not take the others down
            print(f"runtime {name!r} could not be preloaded: {type(exc).__name__}: {exc}", file=sys.stderr)


def run_job(job: dict[str, Any], channel: Writer) -> int:
    """Run one job, reporting on ``channel``; the process's exit status."""
    from .spec import validate_spec

    records: dict[str, Any] = {}
    collect_records(records.__setitem__)
    channel = traced_channel(job, channel)  # the job's ``trace``: this process's spans (tracing.py)
    try:
        framework = str(job.get("framework", ""))
        runtime = load_runtime(framework)
        if not isinstance(runtime, RunnableRuntime):
            raise RunError(ErrorKind.CONFIGURATION, f"the '{framework}' runtime does not run in a runner process")
        spec, problems = validate_spec(job.get("spec"), framework)
        if spec is None:
            raise invalid_spec([(p.field, p.message) for p in problems])
        context = RunContext(
            execution_id=str(job.get("execution_id", "")),
            attempt=int(job.get("attempt", 1)),
            workdir=Path.cwd(),
            integrations=job.get("integrations") or {},
            default_model=job.get("default_model") or None,
            state_url=job.get("state_url") or None,
            resume=job.get("resume"),
            files_root=Path(job["files_root"]) if job.get("files_root") else None,
            org_id=job.get("org_id"),
            agent_id=job.get("agent_id"),
            workflow_id=job.get("workflow_id"),
        )
        for item in runtime.run(spec, job.get("inputs") or {}, context):
            if isinstance(item, RunEvent):
                _send(channel, {"event": item.kind, "data": item.data})
            elif isinstance(item, RunResult):
                _send(channel, {"result": {"outputs": {**records, **item.outputs}}})
                return 0
            elif isinstance(item, RunWaiting):
                waiting = {"node": item.node, "request": item.request, "outputs": {**records, **item.outputs}}
                _send(channel, {"waiting": waiting})
                return 0
        raise RunError(ErrorKind.INTERNAL, f"the '{framework}' runtime ended without a result")
    except RunError as exc:
        _send(channel, {"error": {**exc.as_json(), "retryable": exc.retryable}})
    except Exception as exc:  # noqa: BLE001 - a framework's own exception becomes the run's error
        failure = model_failure(exc, None)
        if failure is not None:
            _send(channel, {"error": {**failure.as_json(), "retryable": failure.retryable}})
            return 1
        trace = traceback.format_exception(exc)
        _send(
            channel,
            {
                "error": {
                    "kind": ErrorKind.CODE.value,
                    "message": f"{type(exc).__name__}: {exc}",
                    "traceback": trace[-20:],
                    "retryable": False,
                }
            },
        )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--preload", default="", help="comma-separated runtimes to import before the job")
    args = parser.parse_args(argv)
    channel = _protocol_channel()
    preload([name for name in args.preload.split(",") if name])
    _send(channel, {"ready": True})
    line = sys.stdin.readline()
    if not line:
        return 0  # the worker discarded this runner unused
    try:
        job = json.loads(line)
    except json.JSONDecodeError as exc:
        _send(channel, {"error": {"kind": "internal", "message": f"unreadable job: {exc}", "retryable": False}})
        return 1
    return run_job(job, channel)


if __name__ == "__main__":
    sys.exit(main())
