"""Steps of a framework run: what each did, how long it took, the model calls and tokens it spent.

Every framework runtime reports the same way. :class:`StepTracker` turns
"node ``draft`` ran, its output was ..." into a ``step`` :class:`RunEvent`
(streamed to ``GET /executions/{id}/events`` as the run goes) and collects the
steps into the run's outputs::

    {"output": <final output>, "steps": [{"node", "type", "agent", "output", "latency_ms",
     "model_calls", "prompt_tokens", "completion_tokens", "total_tokens"}, ...],
     "usage": {"model_calls", "prompt_tokens", "completion_tokens", "total_tokens"},
     "framework": "langgraph"}

Tokens come from :data:`.models.METER`, which counts every call made through a
:meth:`.models.ModelEndpoint.http_client`: a step's tokens are what the meter
gained while the step ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .models import METER, Usage
from .runtime import RunEvent, RunResult

#: a step's output is cut to this many characters in its event (the full value stays in the outputs)
EVENT_OUTPUT_CHARS = 4000


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EVENT_OUTPUT_CHARS:
        return value[:EVENT_OUTPUT_CHARS] + "… [cut]"
    return value


def step_record(
    node: str, node_type: str, output: Any, mark: Usage, started: float, *, agent: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A step that began at (``mark``, ``started``) and ended now: its latency and the tokens it spent."""
    spent = METER.snapshot() - mark
    return {
        "node": node,
        "type": node_type,
        "agent": agent,
        "output": output,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        **spent.as_json(),
        **extra,
    }


def step_event(record: dict[str, Any], framework: str) -> RunEvent:
    """The ``step`` event of a step record (its output cut for the stream; the outputs keep all of it)."""
    return RunEvent("step", {**record, "framework": framework, "output": _short(record.get("output"))})


def total_usage(steps: list[dict[str, Any]]) -> dict[str, int]:
    """The usage of a run from its steps (a resumed run's earlier steps included)."""
    keys = ("model_calls", "prompt_tokens", "completion_tokens", "total_tokens")
    return {key: sum(int(step.get(key, 0)) for step in steps) for key in keys}


@dataclass
class StepTracker:
    """Collects a run's steps; :meth:`step` gives the event to yield, :meth:`result` the outputs."""

    framework: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    _start: Usage = field(default_factory=METER.snapshot)
    _mark: Usage = field(default_factory=METER.snapshot)
    _mark_time: float = field(default_factory=time.perf_counter)

    def begin(self) -> None:
        """Start timing the next step (and counting its tokens) now."""
        self._mark = METER.snapshot()
        self._mark_time = time.perf_counter()

    def step(self, node: str, node_type: str, output: Any, *, agent: str | None = None, **extra: Any) -> RunEvent:
        """Record the step that began at the last :meth:`begin` (or step) and ended now; its event."""
        record = step_record(node, node_type, output, self._mark, self._mark_time, agent=agent, **extra)
        self.steps.append(record)
        self.begin()
        return step_event(record, self.framework)

    def usage(self) -> Usage:
        return METER.snapshot() - self._start

    def outputs(self, output: Any, **extra: Any) -> dict[str, Any]:
        return {
            "output": output,
            "steps": self.steps,
            "usage": self.usage().as_json(),
            "framework": self.framework,
            **extra,
        }

    def result(self, output: Any, **extra: Any) -> RunResult:
        """The run's result: the final output, every step and the total usage."""
        return RunResult(outputs=self.outputs(output, **extra))
