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
        now = time.perf_counter()
        spent = METER.snapshot() - self._mark
        record: dict[str, Any] = {
            "node": node,
            "type": node_type,
            "agent": agent,
            "output": output,
            "latency_ms": round((now - self._mark_time) * 1000, 2),
            **spent.as_json(),
            **extra,
        }
        self.steps.append(record)
        self.begin()
        return RunEvent("step", {**record, "framework": self.framework, "output": _short(output)})

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
