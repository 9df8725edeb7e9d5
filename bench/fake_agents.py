"""The two-step CrewAI and Agno work of ``bench/runtimes.py --model fake``: code-first builders on instant models.

``build_crew`` (a sequential ``crewai.Crew``: two agents, two tasks, the second receiving the first one's
output) and ``build_team`` (an ``agno.team.Team`` in ``route`` mode whose leader hands the message to its one
member ``Agent``, whose answer is the team's) are the same functions for both sides of the comparison: the
baseline calls them in the benchmark's process and runs what they return; ours names them in a workflow spec
(``{"options": {"callable": "fake_agents:build_crew"}}``), and the worker's runner imports this module from
its files root (``--OrchestratorApp.files_root`` = this directory) and calls them with no arguments (they take
none, so the runtime hands them no model: nothing resolves an integration).

Each agent has its own deterministic model, answering in the calling thread with no I/O and no sleep: the
runtimes' own scripted models, which the fork server's warm-ups run (one class each, made once per process):

* CrewAI (``orchestrator_runtimes.crewai.warm.scripted_llm_type``): a ``crewai.llms.base_llm.BaseLLM`` whose
  ``call`` returns :data:`CREW_ANSWERS` for the task it is asked about (CrewAI takes a text without a tool
  call as the task's final answer);
* Agno (``orchestrator_runtimes.agno.warm.scripted_model_type``): an ``agno.models.base.Model`` whose answer is
  a call of the delegation tool when it is offered one and has not called it yet (the team's leader), else
  :data:`AGNO_ANSWER` (the member).

Every model call reports :data:`PROMPT_TOKENS` and :data:`COMPLETION_TOKENS`, counted by the framework (CrewAI's
``token_usage``, Agno's metrics) as a remote model's would be: the model calls and tokens of a run are the
same on both sides when the work is. :func:`crew` and :func:`team` build the same work on any model: the
``--model local`` baseline runs them on the local model server. This module imports without CrewAI or Agno
installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: what each fake model call reports having spent
PROMPT_TOKENS = 12
COMPLETION_TOKENS = 8
TOKENS = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}

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

#: each framework's final answer (the last task's; the member's)
FINAL_ANSWERS = {"crewai": CREW[-1][3], "agno": AGNO_ANSWER}


def build_crew() -> Any:
    """A sequential crew of two agents and two tasks (the second task receives the first one's output)."""
    from orchestrator_runtimes.crewai.warm import scripted_llm_type

    llm_type = scripted_llm_type()
    return crew(lambda: llm_type(model="fake", answers=CREW_ANSWERS, answer=CREW[-1][3], **TOKENS))


def crew(llm: Callable[[], Any]) -> Any:
    """The crew of :data:`CREW`, each agent on a model of its own from ``llm``: :func:`build_crew`'s on the
    fake model, and ``bench/runtimes.py --model local``'s baseline on the local model server."""
    from crewai import Agent, Crew, Task

    agents: list[Any] = []
    tasks: list[Any] = []
    for role, name, description, _ in CREW:
        agent = Agent(
            role=role,
            goal=f"Help briefly as the {role}.",
            backstory=f"You are a {role}.",
            llm=llm(),  # one each: the crew's token_usage adds up each agent's LLM, a shared one twice
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
    from orchestrator_runtimes.agno.warm import scripted_model_type

    model_type = scripted_model_type()
    script = {"id": "fake", "name": "Fake", "provider": "Fake", "answer": AGNO_ANSWER, **TOKENS}

    def model() -> Any:
        return model_type(member_id=AGNO_MEMBER[0], task=AGNO_MESSAGE, **script)

    return team(model(), model())


def team(member_model: Any, leader_model: Any) -> Any:
    """The team of :data:`AGNO_TEAM` routing to :data:`AGNO_MEMBER`, on these models: :func:`build_team`'s fake
    ones, and ``bench/runtimes.py --model local``'s baseline's local ones."""
    from agno.agent import Agent
    from agno.team import Team
    from agno.team.mode import TeamMode

    member_id, member_name, instructions = AGNO_MEMBER
    member = Agent(
        id=member_id,
        name=member_name,
        instructions=instructions,
        model=member_model,
        markdown=False,
        telemetry=False,
    )
    return Team(
        id=AGNO_TEAM[0],
        name=AGNO_TEAM[1],
        members=[member],
        mode=TeamMode.route,
        model=leader_model,
        markdown=False,
        telemetry=False,
    )
