"""What an ``agno`` spec may say: options and ``agent``, ``team`` and ``knowledge`` configs, as pydantic models.

The models check each node on its own (their JSON schemas are in
``/schemas/workflow-spec.json``); :func:`team_problems` adds what only the
whole shows: members and knowledge that name nodes, teams that contain
themselves, and where the run starts (:func:`find_entry`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from ..agents import AgentsOptions, Integration, StrictConfig, Text, ToolReference, callable_check

if TYPE_CHECKING:
    from ..spec import Node, WorkflowSpec

Problems = list[tuple[str, str]]
#: a team's ``mode`` -> Agno's ``TeamMode``
MODES = {"coordinate": "coordinate", "route": "route", "collaborate": "broadcast", "broadcast": "broadcast"}
#: ``memory``: the conversation only, without the user's memories (and the model call that keeps them)
HISTORY_ONLY = "history"
DEFAULT_MAX_TOKENS = 256
DEFAULT_HISTORY_RUNS = 3
DEFAULT_LIMIT = 3
MAX_DOCUMENTS = 1000
#: PgVector adds idx_..._content_hash (17 characters) to a table's name; PostgreSQL names stop at 63
TABLE = r"^[A-Za-z_][A-Za-z0-9_]{0,45}$"


AgnoCallable = Annotated[str, AfterValidator(callable_check("a function returning an agno Agent or Team"))]
Memory = bool | Literal["history"]
MEMORY_HELP = (
    "true: the conversation and the user's memories are kept in the runs' database (a later run remembers); "
    "'history': the conversation only; false: nothing."
)


class AgentConfig(StrictConfig):
    """An Agno agent."""

    name: Text = Field(description="The agent's name.")
    role: str | None = Field(default=None, description="Its role in a team.")
    instructions: str | list[str] | None = Field(default=None, description="A text or a list of texts.")
    model: Integration | None = Field(default=None, description="A model integration (default: options.model).")
    tools: list[ToolReference] = Field(
        default_factory=list, description="Built-in tools (calculator, word_count) or 'module:function'."
    )
    memory: Memory = Field(default=False, description=MEMORY_HELP)
    knowledge: str | None = Field(default=None, description="The id of a knowledge node looked up for each message.")


class TeamConfig(StrictConfig):
    """A team of agents (or teams) led by a model."""

    name: Text = Field(description="The team's name.")
    members: list[str] = Field(min_length=1, description="Ids of agent or team nodes.")
    instructions: str | list[str] | None = Field(default=None, description="A text or a list of texts.")
    model: Integration | None = Field(default=None, description="The leader's model integration.")
    mode: Literal["coordinate", "route", "collaborate", "broadcast"] = Field(
        default="coordinate",
        description="coordinate: the leader delegates and answers; route: one member answers; collaborate: all do.",
    )
    memory: Memory = Field(default=False, description=MEMORY_HELP)
    max_delegations: int | None = Field(default=None, ge=1, le=100, description="Delegations the leader may make.")
    force_delegation: bool = Field(default=True, description="The leader's first answer is a delegation.")


class Document(StrictConfig):
    name: Text | None = None
    content: Text


class KnowledgeConfig(StrictConfig):
    """Documents in a pgvector table, looked up for each message of the agents that use it."""

    documents: list[Text | Document] = Field(
        min_length=1, max_length=MAX_DOCUMENTS, description="Texts, or {'name', 'content'}."
    )
    table: Annotated[str, Field(pattern=TABLE)] | None = Field(
        default=None, description="The pgvector table (default: from the workflow, the node and its documents)."
    )
    embedder_model: Integration | None = Field(default=None, description="The integration that embeds.")
    dimensions: int | None = Field(default=None, ge=1, le=16_000, description="Embeddings' size (default: asked).")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=100, description="Documents found per lookup.")


class AgnoOptions(AgentsOptions):
    """Options of an agno workflow."""

    entry: str | None = Field(default=None, description="The agent or team the run starts at.")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1, le=1_000_000, description="Every model call's bound.")
    history_runs: int = Field(default=DEFAULT_HISTORY_RUNS, ge=1, le=100, description="Earlier runs remembered.")
    callable: AgnoCallable | None = Field(
        default=None, description="Code first: 'module:function' returning an agno Agent or Team (no nodes then)."
    )


NODE_MODELS: dict[str, type[BaseModel]] = {"agent": AgentConfig, "team": TeamConfig, "knowledge": KnowledgeConfig}


def members_of(node: Node) -> list[str]:
    members = node.config.get("members")
    return [m for m in members if isinstance(m, str)] if isinstance(members, list) else []


def _cycle(teams: Mapping[str, list[str]]) -> str | None:
    """A team that is (through other teams) its own member, or None."""
    for start in teams:
        seen: set[str] = set()
        stack = list(teams[start])
        while stack:
            current = stack.pop()
            if current == start:
                return start
            if current in seen or current not in teams:
                continue
            seen.add(current)
            stack.extend(teams[current])
    return None


def find_entry(spec: WorkflowSpec) -> tuple[str | None, str | None]:
    """The node the run starts at, or why there is none: ``(node id, None)`` or ``(None, problem)``."""
    entry = spec.options.get("entry")
    if isinstance(entry, str):
        return entry, None
    teams = {node.id: members_of(node) for node in spec.nodes if node.type == "team"}
    members = {member for names in teams.values() for member in names}
    top = [name for name in teams if name not in members]
    if len(top) == 1:
        return top[0], None
    if len(top) > 1:
        return (
            None,
            f"several teams are no other team's member ({', '.join(top)}): name the one to run in options.entry",
        )
    agents = [node.id for node in spec.nodes if node.type == "agent"]
    if len(agents) == 1:
        return agents[0], None
    if agents:
        return None, f"several agents and no team ({', '.join(agents)}): add a team or name one in options.entry"
    return None, "an agno workflow needs at least one 'agent' node (or options.callable for code first)"


def _reference_problems(spec: WorkflowSpec, agents: set[str], teams: set[str]) -> Problems:
    knowledge = {node.id for node in spec.nodes if node.type == "knowledge"}
    problems: Problems = []
    for index, node in enumerate(spec.nodes):
        where = f"nodes.{index}.config"
        config: dict[str, Any] = node.config
        if node.type == "agent" and config.get("knowledge") is not None and config["knowledge"] not in knowledge:
            known = ", ".join(sorted(knowledge)) or "none"
            problems.append(
                (f"{where}.knowledge", f"no knowledge node {config['knowledge']!r} (knowledge nodes: {known})")
            )
        if node.type != "team":
            continue
        members = members_of(node)
        known = ", ".join(sorted(agents | teams)) or "none"
        for position, member in enumerate(members):
            if member == node.id:
                problems.append((f"{where}.members.{position}", "a team cannot be its own member"))
            elif member not in agents | teams:
                problems.append(
                    (f"{where}.members.{position}", f"no agent node {member!r} (agent and team nodes: {known})")
                )
        if len(set(members)) != len(members):
            problems.append((f"{where}.members", "a member is named twice"))
    return problems


def team_problems(spec: WorkflowSpec) -> Problems:
    """The rules between an agno spec's nodes (fields relative to the spec)."""
    agents = {node.id for node in spec.nodes if node.type == "agent"}
    teams = {node.id for node in spec.nodes if node.type == "team"}
    problems = _reference_problems(spec, agents, teams)
    entry = spec.options.get("entry")
    if entry is not None and entry not in agents | teams:
        known = ", ".join(sorted(agents | teams)) or "none"
        problems.append(("options.entry", f"no agent or team node {entry!r} (agent and team nodes: {known})"))
    if not agents:
        problems.append(
            ("nodes", "an agno workflow needs at least one 'agent' node (or options.callable for code first)")
        )
        return problems
    cycle = _cycle({node.id: members_of(node) for node in spec.nodes if node.type == "team"})
    if cycle is not None:
        index = next(i for i, node in enumerate(spec.nodes) if node.id == cycle)
        problems.append(
            (f"nodes.{index}.config.members", f"the team '{cycle}' is (through other teams) its own member")
        )
    elif entry is None:
        _, problem = find_entry(spec)
        if problem:
            problems.append(("options.entry" if teams or len(agents) > 1 else "nodes", problem))
    return problems
