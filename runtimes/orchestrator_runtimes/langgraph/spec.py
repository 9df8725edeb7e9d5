"""What a ``langgraph`` spec may say: its options and each node type's ``config``, as pydantic models.

The models check a spec when it is saved (their JSON schemas are in
``/schemas/workflow-spec.json`` for the builder's forms); :func:`graph_problems`
adds what only the whole graph shows: conditions that do not parse, a graph
with no first node, a loop nothing can leave, ``wait_for`` naming a node that
does not lead here, and subgraphs (checked like a graph of their own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..code import check_reference
from ..expressions import ExpressionError, parse_condition
from ..tools import tool_problem

if TYPE_CHECKING:
    from ..spec import Edge, Node

Problems = list[tuple[str, str]]
DEFAULT_MAX_TOKENS = 256
#: how deep subgraphs may nest
MAX_DEPTH = 5


def _nonempty(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must be a non-empty text")
    return value


def _reference(value: str) -> str:
    problem = check_reference(value)
    if problem:
        raise PydanticCustomError("reference", "{problem}", {"problem": problem})
    return value


def _tool(value: str) -> str:
    problem = tool_problem(value)
    if problem:
        raise PydanticCustomError("tool", "{problem}", {"problem": problem})
    return value


Text = Annotated[str, AfterValidator(_nonempty)]
Reference = Annotated[str, AfterValidator(_reference)]
Integration = Annotated[str, AfterValidator(_nonempty), Field(description="A model integration's name.")]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NodeConfig(_Config):
    """What every node may say."""

    wait_for: list[str] = Field(
        default_factory=list,
        description=(
            "Ids of nodes with an edge to this one that must all have run before it runs (the branches of a "
            "fan-out of different lengths); without it, a node runs after any one of its predecessors."
        ),
    )


class InputConfig(NodeConfig):
    """The run's inputs: this node's output is the inputs object."""


class OutputConfig(NodeConfig):
    """The run's final output."""

    from_: str | None = Field(default=None, alias="from", description="A node id whose output is the run's output.")


class ModelConfig(NodeConfig):
    """One chat completion: its answer is the node's output."""

    prompt: Text = Field(description="The user message: a template, {name} inserts an input or a node's output.")
    system: str | None = Field(default=None, description="The system message (a template).")
    model: Integration | None = Field(default=None, description="The model integration (default: options.model).")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1, le=1_000_000, description="The answer's length bound.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature, 0 to 2.")


class ToolConfig(NodeConfig):
    """One tool call: what the tool returns is the node's output."""

    tool: Annotated[str, AfterValidator(_tool)] = Field(
        description="A built-in tool (calculator, word_count) or 'module:function'."
    )
    args: dict[str, Any] = Field(default_factory=dict, description="Argument values; strings are templates.")


class CodeConfig(NodeConfig):
    """Python: called with every value so far; what it returns is the node's output."""

    callable: Reference | None = Field(default=None, description="'module:function' taking the values.")
    source: str | None = Field(default=None, description="Python source defining run(values).")

    @field_validator("source")
    @classmethod
    def _defines_run(cls, source: str | None) -> str | None:
        if source is None:
            return None
        try:
            compile(source, "<code node>", "exec")
        except SyntaxError as exc:
            raise PydanticCustomError("source", "line {line}: {msg}", {"line": exc.lineno, "msg": exc.msg}) from None
        if "def run(" not in source:
            raise PydanticCustomError("source", "must define run(values)")
        return source

    @model_validator(mode="after")
    def _exactly_one(self) -> CodeConfig:
        if (self.callable is None) == (self.source is None):
            raise PydanticCustomError("code", "a code node needs exactly one of 'callable' and 'source'")
        return self


class RouterConfig(NodeConfig):
    """Passes the latest output on; its outgoing edges carry the conditions."""


class HumanApprovalConfig(NodeConfig):
    """Stops the run (status waiting) until POST /executions/{id}/resume answers; the answer is the output."""

    question: str = Field(default="Approve?", description="What the human is asked (a template).")


class SubgraphConfig(NodeConfig):
    """A graph run as one node: it sees every value so far; its output is the node's output."""

    nodes: list[dict[str, Any]] = Field(min_length=1, description="The subgraph's nodes (as a spec's).")
    edges: list[dict[str, Any]] = Field(default_factory=list, description="The subgraph's edges (as a spec's).")


class LangGraphOptions(_Config):
    """Options of a langgraph workflow."""

    model: Integration | None = Field(default=None, description="The model integration model nodes use.")
    recursion_limit: int = Field(default=25, ge=1, le=10_000, description="Steps before the run fails.")
    durability: Literal["exit", "async", "sync"] = Field(
        default="exit",
        description="When checkpoints are written: when the run stops (exit), or after every step (sync, async).",
    )
    callable: Reference | None = Field(
        default=None,
        description="Code first: 'module:function' returning a StateGraph or a compiled graph (no nodes then).",
    )


NODE_MODELS: dict[str, type[BaseModel]] = {
    "input": InputConfig,
    "output": OutputConfig,
    "model": ModelConfig,
    "tool": ToolConfig,
    "code": CodeConfig,
    "router": RouterConfig,
    "condition": RouterConfig,
    "human_approval": HumanApprovalConfig,
    "subgraph": SubgraphConfig,
}


def graph_problems(nodes: list[Node], edges: list[Edge], where: str = "", depth: int = 0) -> Problems:
    """The rules between the nodes of a graph (``where`` prefixes locations inside subgraphs)."""
    problems: Problems = []
    for index, edge in enumerate(edges):
        if edge.condition is not None:
            try:
                parse_condition(edge.condition)
            except ExpressionError as exc:
                problems.append((f"{where}edges.{index}.condition", str(exc)))
    targets = {edge.target for edge in edges}
    if nodes and all(node.id in targets for node in nodes):
        problems.append((f"{where}edges", "every node has an incoming edge: the graph has no first node"))
    problems.extend(_wait_problems(nodes, edges, where))
    problems.extend(_loop_problems(nodes, edges, where))
    for index, node in enumerate(nodes):
        if str(node.type) == "subgraph":
            problems.extend(_subgraph_problems(node, f"{where}nodes.{index}.config.", depth + 1))
    return problems


def _wait_problems(nodes: list[Node], edges: list[Edge], where: str) -> Problems:
    routed = {edge.source for edge in edges if edge.condition is not None}
    problems: Problems = []
    for index, node in enumerate(nodes):
        waits = node.config.get("wait_for") or []
        into = {edge.source for edge in edges if edge.target == node.id and edge.source not in routed}
        for position, name in enumerate(waits):
            if name not in into:
                problems.append(
                    (
                        f"{where}nodes.{index}.config.wait_for.{position}",
                        f"node '{node.id}' cannot wait for '{name}': no edge leads from it here, or its edges "
                        "carry conditions (it is a branch, not a fan-out)",
                    )
                )
    return problems


def _loop_problems(nodes: list[Node], edges: list[Edge], where: str) -> Problems:
    """A cycle through nodes none of which has a conditional edge never ends: refuse it, naming a node on it."""
    routed = {edge.source for edge in edges if edge.condition is not None}
    always: dict[str, list[str]] = {}
    for edge in edges:
        if edge.source not in routed:
            always.setdefault(edge.source, []).append(edge.target)
    index_of = {node.id: index for index, node in enumerate(nodes)}
    for start in always:
        stack, seen = list(always[start]), set()
        while stack:
            current = stack.pop()
            if current == start:
                return [
                    (
                        f"{where}nodes.{index_of.get(start, 0)}",
                        f"node '{start}' is on a loop whose edges have no conditions: it would run until the "
                        f"recursion limit; give an edge of the loop a condition (e.g. visits.{start} < 3) to bound it",
                    )
                ]
            if current in seen:
                continue
            seen.add(current)
            stack.extend(always.get(current, []))
    return []


def _subgraph_problems(node: Node, where: str, depth: int) -> Problems:
    """A subgraph's nodes and edges, checked as a spec's (and its own rules), at ``where``."""
    from pydantic import ValidationError

    from ..spec import WorkflowSpec, rule_problems

    if depth > MAX_DEPTH:
        return [(where.rstrip("."), f"subgraphs nest at most {MAX_DEPTH} deep")]
    try:
        inner = WorkflowSpec.model_validate(
            {"nodes": node.config.get("nodes"), "edges": node.config.get("edges") or []},
            context={"skip_rules": True},
        )
    except ValidationError as exc:
        return [(where + ".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors(include_url=False)]
    problems: Problems = [(where + p.field, p.message) for p in rule_problems(inner)]
    from . import LangGraphRuntime

    for index, inner_node in enumerate(inner.nodes):
        if str(inner_node.type) == "human_approval":
            problems.append(
                (
                    f"{where}nodes.{index}.type",
                    f"the subgraph node '{node.id}' cannot wait for a human: put '{inner_node.id}' in the outer graph",
                )
            )
    inner_problems = LangGraphRuntime().node_problems(inner)
    problems.extend((where + field, message) for field, message in inner_problems)
    if not problems:
        problems.extend(graph_problems(inner.nodes, inner.edges, where, depth))
    return problems
