"""A tiny crew, run by a fork server's spare before its run comes, so that the run does not pay CrewAI's
first-call costs (lazy imports, prompt files, pydantic validators built on first use) nor the copy-on-write
faults of the pages a crew writes to.

The crew is ours and fixed (never another run's code): two tasks of one agent whose model answers in this
process at once (no network, no key). It goes through the runtime itself (a code-first spec naming
:func:`build`), so the runtime's own path (spec, crew, the run's thread, its step events) is warm too.
"""

from __future__ import annotations

from typing import Any

ANSWER = "ready"
SPEC = {"options": {"callable": "orchestrator_runtimes.crewai.warm:build"}}
_TYPES: dict[str, type] = {}


def _model_type() -> type:
    """A CrewAI model that answers :data:`ANSWER` at once (made on first use: CrewAI is imported then)."""
    if "llm" not in _TYPES:
        from crewai.llms.base_llm import BaseLLM

        class WarmUpLLM(BaseLLM):
            def call(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
                return ANSWER

            async def acall(self, *args: Any, **kwargs: Any) -> Any:
                return ANSWER

            def supports_function_calling(self) -> bool:
                return True

            def supports_stop_words(self) -> bool:
                return False

            def get_context_window_size(self) -> int:
                return 8192

            def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
                return 1

        _TYPES["llm"] = WarmUpLLM
    return _TYPES["llm"]


def build() -> Any:
    """Two tasks of one agent, the second receiving the first one's output."""
    from crewai import Agent, Crew, Task

    agent = Agent(
        role="Warm-up",
        goal="Answer at once.",
        backstory="A warm-up.",
        llm=_model_type()(model="warm-up"),
        allow_delegation=False,
        max_iter=1,
        verbose=False,
    )
    first = Task(name="first", description="Say ready.", expected_output=ANSWER, agent=agent)
    second = Task(name="second", description="Say it again.", expected_output=ANSWER, agent=agent, context=[first])
    return Crew(agents=[agent], tasks=[first, second], verbose=False, memory=False, tracing=False)
