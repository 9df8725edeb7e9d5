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


def scripted_llm_type() -> type:
    """A CrewAI model answering at once, in the calling thread: ``answers[<the task's name>]``, else ``answer``
    (CrewAI takes a text without a tool call as the task's final answer); each call reports
    ``prompt_tokens`` and ``completion_tokens`` to CrewAI's own count when they are set. Made on first use
    (CrewAI is imported then), once per process: ``bench/fake_agents.py`` scripts its crew with it too."""
    if "llm" not in _TYPES:
        from crewai.llms.base_llm import BaseLLM
        from crewai.utilities.message_utils import message_content_text
        from pydantic import Field

        class ScriptedLLM(BaseLLM):
            answer: str = ANSWER
            answers: dict[str, str] = Field(default_factory=dict)
            prompt_tokens: int = 0
            completion_tokens: int = 0

            def call(self, messages: Any, *args: Any, from_task: Any = None, **kwargs: Any) -> Any:
                if self.prompt_tokens or self.completion_tokens:
                    total = self.prompt_tokens + self.completion_tokens
                    usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
                    self._track_token_usage_internal({**usage, "total_tokens": total})
                return self.answers.get(str(getattr(from_task, "name", "")), self.answer)

            async def acall(self, *args: Any, **kwargs: Any) -> Any:
                return self.call(*args, **kwargs)

            def supports_function_calling(self) -> bool:
                return True

            def supports_stop_words(self) -> bool:
                return False

            def get_context_window_size(self) -> int:
                return 8192

            def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
                # CrewAI's own estimate (a character in four), without the warning it logs for a provider that
                # cannot count: this one can
                text = messages if isinstance(messages, str) else "".join(map(message_content_text, messages))
                return (len(text) + 3) // 4

        _TYPES["llm"] = ScriptedLLM
    return _TYPES["llm"]


def build() -> Any:
    """Two tasks of one agent, the second receiving the first one's output."""
    from crewai import Agent, Crew, Task

    agent = Agent(
        role="Warm-up",
        goal="Answer at once.",
        backstory="A warm-up.",
        llm=scripted_llm_type()(model="warm-up"),
        allow_delegation=False,
        max_iter=1,
        verbose=False,
    )
    first = Task(name="first", description="Say ready.", expected_output=ANSWER, agent=agent)
    second = Task(name="second", description="Say it again.", expected_output=ANSWER, agent=agent, context=[first])
    return Crew(agents=[agent], tasks=[first, second], verbose=False, memory=False, tracing=False)


#: what a kickoff starts in CrewAI's event bus (1.15) and :func:`stop_event_threads` stops again
EVENT_BUS_PARTS = ("_executor_initialized", "_sync_executor", "_loop", "_loop_thread", "_instance_lock")


def stop_event_threads() -> bool:
    """Stop the threads a kickoff started in CrewAI's event bus (its event loop's thread and its handlers'
    pool), keeping everything else it built (handlers, caches): the bus starts them again on its next event,
    in the process that emits it. So a fork server can run a whole crew before it forks and stay
    single-threaded. True when the bus has no thread left (False: a CrewAI whose bus is built otherwise;
    nothing is touched then)."""
    from crewai.events.event_bus import crewai_event_bus as bus

    if not all(hasattr(bus, part) for part in EVENT_BUS_PARTS):
        return False
    if not bus._executor_initialized:
        return True
    bus.flush()  # the warm crew's last events are handled before their threads go
    with bus._instance_lock:
        loop, thread, pool = bus._loop, bus._loop_thread, bus._sync_executor
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        pool.shutdown(wait=True)
        bus._executor_initialized = False
    return not thread.is_alive()
