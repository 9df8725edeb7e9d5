"""What a ``crewai`` spec may say: its options and its ``agent`` and ``task`` nodes, as pydantic models.

The models check each node on its own (their JSON schemas are in
``/schemas/workflow-spec.json``); :func:`crew_problems` adds what only the
crew shows: tasks naming agents, context from earlier tasks, the manager of a
hierarchical crew, edges between tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from ..agents import AgentsOptions, StrictConfig, Text, ToolReference, callable_check

if TYPE_CHECKING:
    from ..spec import WorkflowSpec

Problems = list[tuple[str, str]]
#: an agent's default bound on its reasoning iterations (each tool call is one)
DEFAULT_MAX_ITER = 2
MAX_ITER_LIMIT = 50


CrewCallable = Annotated[str, AfterValidator(callable_check("a function that builds and returns a crewai.Crew"))]


class AgentConfig(StrictConfig):
    """A crew member: a role, a goal and a backstory, on a model, with tools."""

    role: Text = Field(description="The agent's role ({placeholders} are filled from the run's inputs).")
    goal: Text = Field(description="What the agent is after.")
    backstory: Text = Field(description="Who the agent is.")
    model: Text | None = Field(default=None, description="A model integration (default: options.model).")
    tools: list[ToolReference] = Field(
        default_factory=list, description="Built-in tools (calculator, word_count) or 'module:function'."
    )
    allow_delegation: bool = Field(default=False, description="The agent may hand work to its crew mates.")
    max_iter: int = Field(default=DEFAULT_MAX_ITER, ge=1, le=MAX_ITER_LIMIT, description="Reasoning iterations.")


class TaskConfig(StrictConfig):
    """A piece of work, run in node order."""

    description: Text = Field(description="What to do ({placeholders} are filled from the run's inputs).")
    expected_output: Text = Field(description="What the answer looks like.")
    agent: str | None = Field(
        default=None, description="The agent node doing it (not needed in a hierarchical crew: the manager picks)."
    )
    context: list[str] = Field(default_factory=list, description="Earlier task nodes whose outputs it receives.")


class CrewAIOptions(AgentsOptions):
    """Options of a crewai workflow."""

    process: Literal["sequential", "hierarchical"] = Field(
        default="sequential", description="Tasks in order, or a manager delegating them."
    )
    manager_model: Text | None = Field(default=None, description="The hierarchical manager's model integration.")
    manager_max_iter: int = Field(default=DEFAULT_MAX_ITER, ge=1, le=MAX_ITER_LIMIT, description="The manager's.")
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000, description="Every model call's bound.")
    tool_failure: Literal["raise", "warn"] = Field(
        default="raise", description="raise: a failing tool fails the run; warn: the agent reads the error."
    )
    callable: CrewCallable | None = Field(
        default=None, description="Code first: 'module:function' returning a crewai.Crew (no nodes then)."
    )


NODE_MODELS: dict[str, type[BaseModel]] = {"agent": AgentConfig, "task": TaskConfig}


def _task_problems(
    where: str, config: dict[str, Any], agents: set[str], earlier: set[str], hierarchical: bool
) -> Problems:
    problems: Problems = []
    agent = config.get("agent")
    if agent is None:
        if not hierarchical:
            problems.append((f"{where}.agent", "a task needs the id of the agent node that does it"))
    elif not isinstance(agent, str) or agent not in agents:
        known = ", ".join(sorted(agents)) or "none"
        problems.append((f"{where}.agent", f"no agent node {agent!r} (agent nodes: {known})"))
    context = config.get("context", [])
    for position, name in enumerate(context if isinstance(context, list) else []):
        if not isinstance(name, str) or name not in earlier:
            problems.append(
                (f"{where}.context.{position}", f"{name!r} is no task node before this one (tasks run in node order)")
            )
    return problems


def crew_problems(spec: WorkflowSpec, hierarchical: bool) -> Problems:
    """The rules between a crew's nodes (fields relative to the spec)."""
    agents = {node.id for node in spec.nodes if node.type == "agent"}
    tasks: set[str] = set()
    order: dict[str, int] = {}
    problems: Problems = []
    for index, node in enumerate(spec.nodes):
        if node.type == "task":
            problems.extend(_task_problems(f"nodes.{index}.config", node.config, agents, set(tasks), hierarchical))
            tasks.add(node.id)
            order[node.id] = index
    if not tasks:
        problems.append(("nodes", "a crew needs at least one 'task' node (or options.callable for a code-first crew)"))
    if hierarchical and not agents:
        problems.append(("nodes", "a hierarchical crew needs at least one 'agent' node for its manager to delegate to"))
    for index, edge in enumerate(spec.edges):
        if edge.source not in tasks or edge.target not in tasks:
            continue
        if edge.condition is not None:
            problems.append((f"edges.{index}.condition", "the crewai runtime does not support conditional edges"))
        if order[edge.source] >= order[edge.target]:
            problems.append(
                (
                    f"edges.{index}",
                    f"the task '{edge.target}' cannot receive the output of '{edge.source}', which runs after it "
                    "(tasks run in node order)",
                )
            )
    return problems
