"""The two-step CrewAI and Agno work of ``bench/runtimes.py --model fake``: code-first builders on instant models.

``build_crew`` (a sequential ``crewai.Crew``: two agents, two tasks, the second receiving the first one's
output) and ``build_team`` (an ``agno.team.Team`` in ``route`` mode whose leader hands the message to its one
member ``Agent``, whose answer is the team's) are the same functions for both sides of the comparison: the
baseline calls them in the benchmark's process and runs what they return; ours names them in a workflow spec
(``{"options": {"callable": "fake_agents:build_crew"}}``), and the worker's runner imports this module from
its files root (``--OrchestratorApp.files_root`` = this directory) and calls them with no arguments (they take
none, so the runtime hands them no model: nothing resolves an integration).

Each agent has its own deterministic model, answering in the calling thread with no I/O and no sleep:

* CrewAI: a ``crewai.llms.base_llm.BaseLLM`` whose ``call`` returns :data:`CREW_ANSWERS` for the task it is
  asked about (CrewAI takes a text without a tool call as the task's final answer);
* Agno: an ``agno.models.base.Model`` whose answer is a call of the delegation tool when it is offered one and
  has not called it yet (the team's leader), else :data:`AGNO_ANSWER` (the member).

Every model call reports :data:`PROMPT_TOKENS` and :data:`COMPLETION_TOKENS`, counted by the framework (CrewAI's
``token_usage``, Agno's metrics) as a remote model's would be: the model calls and tokens of a run are the
same on both sides when the work is. The classes are made on first use, so this module imports without
CrewAI or Agno installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

#: what each fake model call reports having spent
PROMPT_TOKENS = 12
COMPLETION_TOKENS = 8

#: the crew: (role, task name, task description, the task's answer); each task receives the previous one
CREW = (
    ("Researcher", "research", "Name one fact about tea.", "Tea is made from the leaves of Camellia sinensis."),
    ("Writer", "write", "Write one sentence about tea from the research.", "Tea comes from Camellia sinensis."),
)
CREW_EXPECTED = "One short sentence."
CREW_ANSWERS = {task: answer for _, task, _, answer in CREW}

#: the team: its leader (id, name) routes the message to its one member (id, name, instructions)
AGNO_TEAM = ("desk", "Desk")
AGNO_MEMBER = ("writer", "Writer", "Answer in one short sentence.")
AGNO_MESSAGE = "Name one fact about tea."
AGNO_ANSWER = "Tea is made from the leaves of Camellia sinensis."
DELEGATION_TOOLS = ("delegate_task_to_member", "delegate_task_to_members")

#: each framework's final answer (the last task's; the member's)
FINAL_ANSWERS = {"crewai": CREW[-1][3], "agno": AGNO_ANSWER}

_TYPES: dict[str, type] = {}


def fake_crewai_llm_type() -> type:
    """A CrewAI ``BaseLLM`` answering each task with its line of :data:`CREW_ANSWERS`, at once."""
    if "crewai" not in _TYPES:
        from crewai.llms.base_llm import BaseLLM

        class FakeCrewLLM(BaseLLM):
            def call(
                self,
                messages: Any,
                tools: Any = None,
                callbacks: Any = None,
                available_functions: Any = None,
                from_task: Any = None,
                from_agent: Any = None,
                response_model: Any = None,
            ) -> Any:
                self._track_token_usage_internal(
                    {
                        "prompt_tokens": PROMPT_TOKENS,
                        "completion_tokens": COMPLETION_TOKENS,
                        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                    }
                )
                return CREW_ANSWERS.get(str(getattr(from_task, "name", "")), CREW[-1][3])

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
                # cannot count: this one is a provider that can
                from crewai.utilities.message_utils import message_content_text

                text = messages if isinstance(messages, str) else "".join(map(message_content_text, messages))
                return (len(text) + 3) // 4

        _TYPES["crewai"] = FakeCrewLLM
    return _TYPES["crewai"]


def fake_agno_model_type() -> type:
    """An Agno ``Model``: a call of the delegation tool when it is offered one it has not called yet, else
    :data:`AGNO_ANSWER`, at once."""
    if "agno" not in _TYPES:
        from dataclasses import dataclass

        from agno.metrics import MessageMetrics
        from agno.models.base import Model
        from agno.models.response import ModelResponse

        @dataclass
        class FakeAgnoModel(Model):
            id: str = "fake"
            name: str = "Fake"
            provider: str = "Fake"

            def _answer(self, messages: Any, tools: Any) -> ModelResponse:
                usage = MessageMetrics(
                    input_tokens=PROMPT_TOKENS,
                    output_tokens=COMPLETION_TOKENS,
                    total_tokens=PROMPT_TOKENS + COMPLETION_TOKENS,
                )
                offered = [str((tool.get("function") or {}).get("name")) for tool in tools or []]
                delegation = next((name for name in offered if name in DELEGATION_TOOLS), None)
                answered = any(getattr(message, "role", None) == "tool" for message in messages or [])
                if delegation is not None and not answered:
                    arguments = {"member_id": AGNO_MEMBER[0], "task": AGNO_MESSAGE}
                    call = {
                        "id": "call_fake_delegation",
                        "type": "function",
                        "function": {"name": delegation, "arguments": json.dumps(arguments)},
                    }
                    return ModelResponse(role="assistant", content="", tool_calls=[call], response_usage=usage)
                return ModelResponse(role="assistant", content=AGNO_ANSWER, response_usage=usage)

            def invoke(self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any) -> ModelResponse:
                return self._answer(messages, tools)

            async def ainvoke(
                self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any
            ) -> ModelResponse:
                return self._answer(messages, tools)

            def invoke_stream(
                self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any
            ) -> Iterator[ModelResponse]:
                yield self._answer(messages, tools)

            async def ainvoke_stream(self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any) -> Any:
                yield self._answer(messages, tools)

            def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
                return response  # type: ignore[no-any-return]

            def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
                return response  # type: ignore[no-any-return]

        _TYPES["agno"] = FakeAgnoModel
    return _TYPES["agno"]


def build_crew() -> Any:
    """A sequential crew of two agents and two tasks (the second task receives the first one's output)."""
    from crewai import Agent, Crew, Task

    llm_type = fake_crewai_llm_type()
    agents: list[Any] = []
    tasks: list[Any] = []
    for role, name, description, _ in CREW:
        agent = Agent(
            role=role,
            goal=f"Help briefly as the {role}.",
            backstory=f"You are a {role}.",
            llm=llm_type(model="fake"),  # one each: the crew's token_usage adds up each agent's LLM, a shared one twice
            allow_delegation=False,
            max_iter=2,
            verbose=False,
        )
        context = {"context": [tasks[-1]]} if tasks else {}
        tasks.append(Task(name=name, description=description, expected_output=CREW_EXPECTED, agent=agent, **context))
        agents.append(agent)
    return Crew(agents=agents, tasks=tasks, verbose=False, memory=False, tracing=False)


def build_team() -> Any:
    """A team in ``route`` mode: the leader's one call delegates the message to its one member, whose answer is
    the team's."""
    from agno.agent import Agent
    from agno.team import Team
    from agno.team.mode import TeamMode

    model_type = fake_agno_model_type()
    member_id, member_name, instructions = AGNO_MEMBER
    member = Agent(
        id=member_id,
        name=member_name,
        instructions=instructions,
        model=model_type(),
        markdown=False,
        telemetry=False,
    )
    return Team(
        id=AGNO_TEAM[0],
        name=AGNO_TEAM[1],
        members=[member],
        mode=TeamMode.route,
        model=model_type(),
        markdown=False,
        telemetry=False,
    )
