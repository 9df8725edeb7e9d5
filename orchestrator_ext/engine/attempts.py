"""One attempt of one run: from a claimed execution to its outcome.

Notebooks run through papermill on a warm kernel (:mod:`.notebooks`); every
other framework runs in a warm runner process (:mod:`.runners`). Either way
the attempt races its timeout and its cancellation: whichever comes first
kills the child's process group, so a loop that never yields is stopped too.

Only infrastructure faults are marked retryable (a kernel or runner that
would not start or died, the hand-over of integrations; a lost worker is
retried by the queue): those may go better on another attempt. Anything
else, a bug of ours included, fails the same way every time, so the run ends
at once with the traceback in its error and its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.kernelspec import NoSuchKernel
from nbclient.exceptions import DeadKernelError
from orchestrator_runtimes import RunError
from orchestrator_runtimes.limits import MemoryGuard, process_id
from orchestrator_runtimes.n8n import inline as n8n_inline
from orchestrator_runtimes.notebook import ParametersCellError, inputs_mode, notebook_input_problems
from orchestrator_runtimes.reporting import INTEGRATIONS_ENV
from orchestrator_runtimes.runtime import ErrorKind

from .. import tracing
from .events import RunEvents
from .kernels import DEFAULT_KERNEL, Kernel, KernelPool, discard
from .notebooks import prepare, run_notebook
from .queue import ClaimedRun
from .runners import RunnerGone, RunnerPool

log = logging.getLogger("orchestrator.engine")
SUCCEEDED, FAILED, CANCELLED, TIMED_OUT, WAITING = "succeeded", "failed", "cancelled", "timed_out", "waiting"


@dataclass
class Outcome:
    """How an attempt ended."""

    status: str
    outputs: dict[str, Any] | None = None
    error: RunError | None = None
    notebook: dict[str, Any] | None = None
    #: what a run that stopped for a human asks (status waiting)
    waiting_for: dict[str, Any] | None = None


@dataclass
class Limits:
    memory_mib: int
    max_output_bytes: int
    default_timeout_seconds: float


@dataclass
class ActiveRun:
    """A run this worker holds: how to stop it, and what it has produced so far."""

    run: ClaimedRun
    events: RunEvents
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    lost: bool = False
    kill: Callable[[], None] = lambda: None
    #: the run's process id once it has one (its kernel's, its runner's): its memory is watched from here
    pid: Callable[[], int | None] = lambda: None
    notebook: dict[str, Any] | None = None
    #: the organization's default model integration (framework runs)
    default_model: str | None = None
    #: the run's process being let go or kept (:meth:`.forked.ForkedRunner.discard`): under way while the
    #: worker records the run's end, awaited before its slot is given back
    letting_go: asyncio.Task[None] | None = None

    def cancel(self, *, lost: bool = False) -> None:
        self.lost = self.lost or lost
        self.cancelled.set()

    async def let_go(self) -> None:
        """Wait until the run's process is ended or kept for the next run (its folder removed)."""
        if self.letting_go is not None:
            try:
                await self.letting_go
            except Exception:  # said, and the run's slot is free again all the same (worker.py)
                log.exception("could not let go of the process of run %s", self.run.id)


class Attempts:
    """Runs attempts on the worker's pools."""

    def __init__(
        self,
        kernels: KernelPool,
        runners: RunnerPool,
        limits: Limits,
        *,
        state_url: str | None = None,
        files_root: str | None = None,
    ) -> None:
        self.kernels = kernels
        self.runners = runners
        self.limits = limits
        self.state_url = state_url
        self.files_root = files_root

    async def run(self, active: ActiveRun, integrations: dict[str, dict[str, Any]]) -> Outcome:
        """The attempt's outcome; its own failures become outcomes, never exceptions."""
        try:
            return await self._attempt(active, integrations)
        finally:
            active.events.finish()  # a log cut at its cap says by how much

    async def _attempt(self, active: ActiveRun, integrations: dict[str, dict[str, Any]]) -> Outcome:
        if active.run.cancel_requested:
            return _cancelled()
        timeout = active.run.timeout_seconds or self.limits.default_timeout_seconds
        work = asyncio.create_task(self._body(active, integrations))
        stop = asyncio.create_task(active.cancelled.wait())
        memory = asyncio.create_task(MemoryGuard(self.limits.memory_mib, lambda: active.pid()).wait())
        done, _ = await asyncio.wait({work, stop, memory}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if work in done and memory not in done:  # a run killed at its limit may end its work in the same turn
            memory.cancel()
            return work.result()
        active.kill()
        work.cancel()
        with contextlib.suppress(BaseException):
            await work
        if memory in done:
            return Outcome(FAILED, error=memory.result(), notebook=active.notebook)
        memory.cancel()
        if stop in done:
            return Outcome(
                CANCELLED, error=RunError(ErrorKind.CANCELLED, "cancelled while running"), notebook=active.notebook
            )
        message = f"the run took longer than its timeout of {timeout:g} s and was stopped"
        return Outcome(TIMED_OUT, error=RunError(ErrorKind.TIMEOUT, message), notebook=active.notebook)

    async def _body(self, active: ActiveRun, integrations: dict[str, dict[str, Any]]) -> Outcome:
        try:
            if active.run.framework == "notebook":
                return await self._notebook(active, integrations)
            if active.run.framework == "n8n" and n8n_inline.enabled():  # no user code: the worker drives n8n
                step, model = active.events.step, active.default_model
                return Outcome(SUCCEEDED, outputs=await n8n_inline.run_in_worker(active.run, integrations, model, step))
            return await self._framework(active, integrations)
        except RunError as exc:
            return Outcome(FAILED, error=exc, notebook=active.notebook)
        except Exception as exc:
            # not an infrastructure fault (those are RunErrors marked retryable): the same run would fail
            # the same way, so it ends now, with the traceback where its owner looks
            log.exception("attempt %s of %s failed inside the worker", active.run.attempt, active.run.id)
            trace = traceback.format_exception(exc)
            active.events.log("stderr", "".join(trace))
            message = f"the worker failed: {type(exc).__name__}: {exc}"
            error = RunError(ErrorKind.INTERNAL, message, traceback="".join(trace).splitlines()[-30:])
            return Outcome(FAILED, error=error, notebook=active.notebook)

    # ---- notebooks -----------------------------------------------------------

    async def _notebook(self, active: ActiveRun, integrations: dict[str, dict[str, Any]]) -> Outcome:
        run = active.run
        source = run.spec.get("notebook") or {}
        document = source.get("content") or run.notebook_snapshot
        if not isinstance(document, dict):
            raise RunError(ErrorKind.CONFIGURATION, "the workflow version has no notebook to run")
        _check_inputs(document, run.inputs, inputs_mode(run.spec))
        kernel_name = (document.get("metadata", {}).get("kernelspec") or {}).get("name") or DEFAULT_KERNEL
        # prepared before a kernel is taken: a run that fails to start still has its notebook to show
        prepared = prepare(document, run.inputs, kernel_name, source.get("path") or "inline notebook")
        active.notebook = prepared.notebook
        kernel = await self._take_kernel(kernel_name)
        active.kill = kernel.kill_now
        active.pid = lambda: process_id(kernel)
        try:
            if integrations:
                await _hand_over(kernel.client, integrations)
            try:
                result = await run_notebook(
                    prepared, kernel, active.events, max_output_bytes=self.limits.max_output_bytes
                )
            except DeadKernelError as exc:
                raise RunError(
                    ErrorKind.RESOURCES,
                    f"the kernel died while running the notebook ({exc}); it may have exceeded its memory "
                    f"limit of {self.limits.memory_mib} MiB",
                    retryable=True,
                ) from exc
        finally:
            asyncio.get_running_loop().create_task(discard(kernel))
        if result.error is not None:
            if result.error.details.get("ename") == "MemoryError":
                result.error.kind = ErrorKind.RESOURCES
                result.error.message += f" (the run's memory limit is {self.limits.memory_mib} MiB)"
            return Outcome(FAILED, error=result.error, notebook=result.notebook, outputs=result.outputs)
        return Outcome(SUCCEEDED, outputs=result.outputs, notebook=result.notebook)

    async def _take_kernel(self, kernel_name: str) -> Kernel:
        """A warm kernel: a kernelspec not installed is the workflow's fault; any other failure is the machine's."""
        try:
            return await self.kernels.take(kernel_name)
        except NoSuchKernel as exc:
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"the notebook's kernel '{kernel_name}' is not installed where this worker runs "
                "(its metadata.kernelspec.name); install it there or use the python3 kernel",
            ) from exc
        except Exception as exc:  # worth another attempt
            raise RunError(
                ErrorKind.INTERNAL, f"the kernel could not start: {type(exc).__name__}: {exc}", retryable=True
            ) from exc

    # ---- framework runtimes --------------------------------------------------

    async def _framework(self, active: ActiveRun, integrations: dict[str, dict[str, Any]]) -> Outcome:
        run = active.run
        try:
            # n8n's runner path gets a process of its own each run, whatever the setting (docs/executions.md)
            runs = 1 if run.framework == "n8n" else run.runs_per_process
            runner = await self.runners.take(str(run.org_id), run.tier_name, runs)
        except Exception as exc:  # the machine, not the workflow: worth another attempt
            raise RunError(
                ErrorKind.INTERNAL, f"the run's process could not start: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        active.kill = runner.killer()  # a no-op once the process is released for another run
        active.pid = lambda: process_id(runner)
        logs = asyncio.create_task(_forward_logs(runner.stderr_lines(), active.events))
        job = {
            "framework": run.framework,
            "spec": run.spec,
            "inputs": run.inputs,
            "execution_id": str(run.id),
            "attempt": run.attempt,
            "integrations": integrations,
            "default_model": active.default_model,
            "state_url": self.state_url,
            "resume": run.resume,
            "files_root": self.files_root,
            "org_id": str(run.org_id),
            "agent_id": str(run.agent_id),
            "workflow_id": str(run.workflow_id),
            # tracing on: the run's process continues the execution's trace (orchestrator_runtimes.tracing)
            "trace": tracing.job_trace(),
        }
        try:
            async for message in runner.messages(job):
                if "event" in message:
                    if message["event"] == "log":
                        active.events.log(str(message["data"].get("stream", "stdout")), str(message["data"]["text"]))
                    else:
                        active.events.step(message.get("data") or {})
                elif "result" in message:
                    return Outcome(SUCCEEDED, outputs=message["result"].get("outputs") or {})
                elif "waiting" in message:
                    waiting = message["waiting"]
                    asked = {"node": waiting.get("node"), **(waiting.get("request") or {})}
                    return Outcome(WAITING, outputs=waiting.get("outputs") or {}, waiting_for=asked)
                elif "error" in message:
                    return Outcome(FAILED, error=_run_error(message["error"]))
            raise RunnerGone("the runner ended without a result")
        except RunnerGone as exc:
            raise RunError(
                ErrorKind.RESOURCES,
                f"the run's process died ({exc}); it may have exceeded its memory limit of "
                f"{self.limits.memory_mib} MiB",
                retryable=True,
            ) from exc
        finally:
            if getattr(runner, "keep", None) is not None:
                # kept for the organization's next run (runs_per_process): parked before the end is recorded, so
                # a run its client starts as soon as it sees the end finds it (let go meanwhile, that run would
                # get a fresh fork: +4 ms p50 back to back, measured)
                await runner.discard()
            else:  # used once: ended while the worker records the run's end (awaited before the slot is free)
                active.letting_go = asyncio.get_running_loop().create_task(runner.discard())
            await asyncio.gather(logs, return_exceptions=True)


def _check_inputs(document: dict[str, Any], inputs: dict[str, Any], mode: str) -> None:
    try:
        problems = notebook_input_problems(document, inputs, mode)
    except ParametersCellError as exc:
        raise RunError(ErrorKind.CONFIGURATION, str(exc)) from exc
    if problems:
        detail = "; ".join(f"inputs.{name}: {problem}" for name, problem in sorted(problems.items()))
        raise RunError(ErrorKind.INPUT, f"the inputs do not fit the notebook's parameters: {detail}")


async def _hand_over(client: Any, integrations: dict[str, dict[str, Any]]) -> None:
    """Give this run's kernel its integrations, out of the notebook's history and outputs."""
    code = f"import os as _o; _o.environ[{INTEGRATIONS_ENV!r}] = {json.dumps(json.dumps(integrations))}; del _o"
    reply = await client.execute(code, silent=True, store_history=False, reply=True, timeout=10)
    if reply["content"].get("status") != "ok":
        raise RunError(ErrorKind.INTERNAL, "could not hand the integrations to the kernel", retryable=True)


async def _forward_logs(lines: Any, events: RunEvents) -> None:
    async for line in lines:
        events.log("stderr", line)


def _run_error(data: dict[str, Any]) -> RunError:
    try:
        kind = ErrorKind(data.get("kind", "internal"))
    except ValueError:
        kind = ErrorKind.INTERNAL
    details = {k: v for k, v in data.items() if k not in ("kind", "message", "retryable")}
    return RunError(kind, str(data.get("message", "the run failed")), retryable=bool(data.get("retryable")), **details)


def _cancelled() -> Outcome:
    return Outcome(CANCELLED, error=RunError(ErrorKind.CANCELLED, "cancelled before it started"))
