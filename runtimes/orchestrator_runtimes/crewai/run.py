"""A crew's run: it works in a thread; each finished task reports a ``step`` as soon as it ends.

CrewAI calls a module-level task callback (:func:`task_finished`) from its own
threads; a context variable finds the run's :class:`Sink` there. What the crew
raises is mapped into the error taxonomy by :func:`failure`.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ErrorKind, RunError
from ..framework import endpoint_of, run_in_thread
from ..models import METER, ModelEndpoint, Usage, model_failure
from ..tracking import StepTracker

if TYPE_CHECKING:
    from ..runtime import RunContext, RunEvent, RunResult

NAME = "crewai"


@dataclass
class Sink:
    """Where a run's finishing tasks report (read by :func:`task_finished` in the crew's threads)."""

    tracker: StepTracker
    events: queue.Queue[tuple[str, Any]]
    chained: Callable[[Any], Any] | None = None
    finished: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SINK: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("orchestrator_crewai_sink", default=None)


def task_finished(output: Any) -> Any:
    """CrewAI's task callback (a module-level function, as CrewAI wants): a ``step`` event for the task."""
    sink = _SINK.get()
    if sink is None:
        return None
    with sink.lock:
        node = str(getattr(output, "name", None) or "task")
        raw = str(getattr(output, "raw", "") or "")
        agent = str(getattr(output, "agent", "") or "") or None
        event = sink.tracker.step(node, "task", raw, agent=agent)
        sink.finished.append({"node": node, "agent": agent, "output": raw})
    sink.events.put(("step", event))
    if sink.chained is not None:
        return sink.chained(output)
    return None


#: tool failures that are the model's mistakes (a tool that does not exist, arguments that do not fit)
_MODEL_TOOL_MISTAKES = frozenset({"invalid_input", "unknown_tool", "repeated_call"})


def failure(exc: BaseException, endpoints: list[ModelEndpoint], what: str = "the crew failed") -> RunError:
    """The taxonomy's error for what a crew raised: model, tool, input, or the code's own failure."""
    from crewai.tools.tool_failure import ToolExecutionFailedError

    model = model_failure(exc, endpoint_of(exc, endpoints))
    if model is not None:
        return model
    if isinstance(exc, ToolExecutionFailedError):
        record = exc.record
        where = f" in the task '{record.task_name}'" if record.task_name else ""
        agent = f" (agent '{record.agent_role}')" if record.agent_role else ""
        if getattr(record.failure.reason, "value", record.failure.reason) in _MODEL_TOOL_MISTAKES:
            return RunError(
                ErrorKind.MODEL,
                f"the model called the tool '{record.tool_name}' wrongly{where}{agent}: "
                f"{record.failure.as_agent_message()}",
                tool=record.tool_name,
                node=record.task_name,
            )
        return RunError(
            ErrorKind.TOOL,
            f"the tool '{record.tool_name}' failed{where}{agent}: {record.failure.as_agent_message()}",
            tool=record.tool_name,
            node=record.task_name,
        )
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError) and message.startswith("Invalid response from LLM call"):
        return RunError(ErrorKind.MODEL, f"the model gave an empty answer: {message}", retryable=True)
    if isinstance(exc, ValueError) and "template variable" in message:
        return RunError(ErrorKind.INPUT, f"{what}: {message} (pass it in the run's inputs)")
    return RunError(
        ErrorKind.CODE,
        f"{what}: {type(exc).__name__}: {message}",
        traceback="".join(traceback.format_exception(exc)[-20:]),
    )


def run_crew(
    crew: Any, inputs: Mapping[str, Any], endpoints: list[ModelEndpoint], context: RunContext
) -> Iterator[RunEvent | RunResult]:
    """Kick the crew off in a thread: each task's step as it ends, then the crew's result."""
    tracker = StepTracker(NAME)
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    sink = Sink(tracker=tracker, events=events, chained=crew.task_callback)
    crew.task_callback = task_finished
    start = METER.snapshot()

    def kickoff() -> Any:
        _SINK.set(sink)
        return crew.kickoff(inputs=dict(inputs))

    tracker.begin()
    yield from run_in_thread(
        kickoff,
        events,
        f"crewai-{context.execution_id}",
        lambda output: _result(tracker, sink, output, METER.snapshot() - start),
        lambda exc: failure(exc, endpoints),
    )


def _result(tracker: StepTracker, sink: Sink, output: Any, metered: Usage) -> RunResult:
    with sink.lock:
        tasks = list(sink.finished)
    final = str(getattr(output, "raw", "") or "")
    extra: dict[str, Any] = {"tasks": tasks}
    usage = getattr(output, "token_usage", None)
    requests = int(getattr(usage, "successful_requests", 0) or 0)
    if metered.model_calls == 0 and usage is not None and requests > 0:
        # the crew used models of its own (a code-first crew): CrewAI's own count is all there is
        prompt, completion = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
        extra["usage"] = Usage(requests, prompt, completion).as_json()
    return tracker.result(final, **extra)
