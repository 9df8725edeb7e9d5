"""The workflow spec: the document each workflow version stores and a runtime runs.

A spec is either a graph (``nodes`` joined by ``edges``, run by the langgraph,
crewai, agno and n8n runtimes) or a Jupyter notebook (``notebook``: a path
relative to the server's root directory, or the notebook's content).

:class:`WorkflowSpec` checks the shape and the rules between fields;
:func:`validate_spec` does the same and reports every problem as a
:class:`SpecError` with a dotted location (``spec.edges.1.target``), plus the
rule tying a spec to its agent's framework.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import SpecError as SpecError
from .notebook import notebook_option_problems, notebook_problems

SPEC_SCHEMA_ID = "urn:orchestrator:schema:workflow-spec:1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: frameworks whose workflows are graphs of nodes
GRAPH_FRAMEWORKS = frozenset({"langgraph", "crewai", "agno", "n8n"})
NOTEBOOK_FRAMEWORK = "notebook"
_SKIP_RULES = "skip_rules"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")

NodeId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
NodeRef = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class NodeType(StrEnum):
    INPUT = "input"
    OUTPUT = "output"
    MODEL = "model"
    TOOL = "tool"
    CODE = "code"
    ROUTER = "router"
    CONDITION = "condition"
    HUMAN_APPROVAL = "human_approval"
    AGENT = "agent"
    TASK = "task"
    TEAM = "team"
    KNOWLEDGE = "knowledge"
    MEMORY = "memory"
    N8N_WORKFLOW = "n8n_workflow"
    SUBGRAPH = "subgraph"


class _SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Node(_SpecModel):
    """A step of a graph workflow; its config is read by the framework's runtime."""

    id: NodeId = Field(description="Unique within the spec: letters, digits, '_' and '-' (1-64).")
    type: NodeType
    config: dict[str, Any] = Field(default_factory=dict)
    label: Annotated[str, StringConstraints(max_length=200)] | None = None


class Edge(_SpecModel):
    """A transition between two nodes, taken when its condition holds (always, when it has none)."""

    source: NodeRef
    target: NodeRef
    condition: Annotated[str, StringConstraints(max_length=2000)] | None = None


class NotebookSource(_SpecModel):
    """The notebook a workflow runs: exactly one of path and content."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["path"], "properties": {"path": {"type": "string"}}},
                {"required": ["content"], "properties": {"content": {"type": "object"}}},
            ]
        }
    )

    path: str | None = Field(
        default=None,
        max_length=1024,
        description="Relative to the server's root directory, ending in .ipynb; snapshotted when a version is saved.",
    )
    content: dict[str, Any] | None = Field(
        default=None,
        description="A notebook document as nbformat, JupyterLab and papermill write it (4.0 to 4.5; 3 is upgraded).",
    )

    @field_validator("path")
    @classmethod
    def _relative_notebook_path(cls, path: str | None) -> str | None:
        if path is None:
            return None
        problem = notebook_path_problem(path)
        if problem:
            raise PydanticCustomError("notebook_path", problem)
        return path

    @field_validator("content")
    @classmethod
    def _valid_notebook(cls, content: dict[str, Any] | None) -> dict[str, Any] | None:
        if content is None:
            return None
        problems = notebook_problems(content)
        if problems:
            raise PydanticCustomError("notebook_invalid", "{detail}", {"detail": "; ".join(problems)})
        return content

    @model_validator(mode="after")
    def _exactly_one(self) -> NotebookSource:
        if (self.path is None) == (self.content is None):
            raise PydanticCustomError("notebook_source", "give exactly one of 'path' and 'content'")
        return self


class Position(_SpecModel):
    """Where a node sits on the builder's canvas."""

    x: float = Field(ge=-1e7, le=1e7)
    y: float = Field(ge=-1e7, le=1e7)


class EditorState(_SpecModel):
    """What the visual builder keeps with a version so it opens as it was left; runtimes ignore it."""

    positions: dict[NodeRef, Position] = Field(
        default_factory=dict, max_length=1000, description="Node id -> its position on the canvas."
    )


class WorkflowSpec(_SpecModel):
    """A workflow version's document: a graph of nodes, or a notebook."""

    schema_version: Literal[1] = 1
    nodes: list[Node] = Field(default_factory=list, max_length=1000)
    edges: list[Edge] = Field(default_factory=list, max_length=5000)
    options: dict[str, Any] = Field(default_factory=dict, description="Options for the agent's framework runtime.")
    notebook: NotebookSource | None = None
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=7 * 24 * 3600, description="Stop a run after this many seconds (ends timed_out)."
    )
    max_attempts: int = Field(
        default=1, ge=1, le=10, description="Attempts for failures worth retrying (a lost worker, a network error)."
    )
    integrations: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=20,
        description="Names of the organization's integrations whose settings and secret each run receives.",
    )

    ui: EditorState | None = Field(
        default=None,
        exclude_if=lambda ui: ui is None,  # absent, not null, in specs saved without it
        description="The visual builder's state (node positions); runtimes ignore it.",
    )

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> WorkflowSpec:
        if isinstance(info.context, Mapping) and info.context.get(_SKIP_RULES):
            return self
        problems = rule_problems(self)
        if problems:
            detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
            raise PydanticCustomError("spec_rules", "{detail}", {"detail": detail})
        return self


def notebook_path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a notebook under the root directory, or None."""
    if not path.strip():
        return "the path is empty"
    if "\x00" in path:
        return "the path contains a NUL character"
    if path.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(path):
        return "the path must be relative to the server's root directory"
    if ".." in re.split(r"[/\\]", path):
        return "the path must not contain '..'"
    if not path.endswith(".ipynb"):
        return "the path must end with .ipynb"
    return None


def rule_problems(spec: WorkflowSpec) -> list[SpecError]:
    """Problems between fields (locations relative to the spec): ids, edge ends, nodes vs notebook."""
    problems: list[SpecError] = []
    first_use: dict[str, int] = {}
    for index, node in enumerate(spec.nodes):
        if node.id in first_use:
            problems.append(
                SpecError(f"nodes.{index}.id", f"duplicate node id '{node.id}' (also nodes.{first_use[node.id]})")
            )
        first_use.setdefault(node.id, index)
    for index, edge in enumerate(spec.edges):
        for end in ("source", "target"):
            name = getattr(edge, end)
            if name not in first_use:
                problems.append(SpecError(f"edges.{index}.{end}", f"no node '{name}'"))
    if spec.notebook is not None:
        if spec.nodes:
            problems.append(SpecError("nodes", "a notebook spec has no nodes"))
        if spec.edges:
            problems.append(SpecError("edges", "a notebook spec has no edges"))
    elif not spec.nodes and not spec.options.get("callable"):
        problems.append(
            SpecError("nodes", "at least one node is required (or a notebook, or options.callable for code-first)")
        )
    return problems


def framework_problems(spec: WorkflowSpec, framework: str) -> list[SpecError]:
    """The rule tying a spec to its agent's framework (locations relative to the spec)."""
    if framework == NOTEBOOK_FRAMEWORK:
        if spec.notebook is None:
            return [SpecError("notebook", "a notebook agent's workflow needs a notebook (a path or its content)")]
        return [SpecError(field, message) for field, message in notebook_option_problems(spec.options)]
    if framework in GRAPH_FRAMEWORKS:
        if spec.notebook is not None:
            return [SpecError("notebook", f"a {framework} agent's workflow is a graph of nodes, not a notebook")]
        return []
    return [SpecError("framework", f"unknown framework '{framework}'")]


def runtime_problems(spec: WorkflowSpec, framework: str) -> list[SpecError]:
    """What the framework's runtime finds wrong in ``spec`` (node by node), where that runtime is installed."""
    from .runtime import RunError, installed_runtimes, load_runtime

    if framework == NOTEBOOK_FRAMEWORK or framework not in installed_runtimes():
        return []
    try:
        runtime = load_runtime(framework)
    except (RunError, ImportError):
        return []
    return [p if not p.field.startswith("spec.") else SpecError(p.field[5:], p.message) for p in runtime.validate(spec)]


def validate_spec(data: Any, framework: str, *, prefix: str = "spec") -> tuple[WorkflowSpec | None, list[SpecError]]:
    """Validate ``data`` as the spec of a ``framework`` workflow: the spec, or every problem found.

    Locations start with ``prefix`` (``spec.nodes.0.id``); an unknown framework is reported at ``framework``.
    """
    try:
        spec = WorkflowSpec.model_validate(data, context={_SKIP_RULES: True})
    except ValidationError as exc:
        return None, [_from_pydantic(err["loc"], err["msg"], prefix) for err in exc.errors(include_url=False)]
    problems = rule_problems(spec)
    if not problems:
        problems = framework_problems(spec, framework)
    if not problems:
        problems = runtime_problems(spec, framework)
    if problems:
        return None, [_prefixed(p, prefix) for p in problems]
    return spec, []


def _from_pydantic(loc: tuple[int | str, ...], message: str, prefix: str) -> SpecError:
    where = ".".join(str(part) for part in loc)
    return SpecError(f"{prefix}.{where}" if where else prefix, message)


def _prefixed(problem: SpecError, prefix: str) -> SpecError:
    if problem.field == "framework":
        return problem
    return SpecError(f"{prefix}.{problem.field}", problem.message)


def framework_runtimes() -> dict[str, Any]:
    """The installed runtimes whose node configs and options are pydantic models (the framework runtimes)."""
    from .runtime import RunError, installed_runtimes, load_runtime

    found: dict[str, Any] = {}
    for name in sorted(installed_runtimes()):
        try:
            runtime = load_runtime(name)
        except (RunError, ImportError):
            continue
        if callable(getattr(runtime, "json_schemas", None)):
            found[name] = runtime
    return found


def _hoisted(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its own ``$defs`` moved into ``defs`` under ``prefix`` (names stay unique)."""
    inner = schema.pop("$defs", {})
    text = json.dumps(schema)
    for name in inner:
        text = text.replace(f'"#/$defs/{name}"', f'"#/$defs/{prefix}{name}"')
    for name, sub in inner.items():
        defs[f"{prefix}{name}"] = json.loads(json.dumps(sub).replace('"#/$defs/', f'"#/$defs/{prefix}'))
    return dict(json.loads(text))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _framework_defs(name: str, runtime: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """Put a framework's options and node schemas in ``defs``; its entry of ``x-frameworks``."""
    title = _camel(name) if not getattr(runtime, "title", None) else str(runtime.title).replace(" ", "")
    parts = runtime.json_schemas()
    defs[f"{title}Options"] = _hoisted(parts["options"], title, defs)
    nodes: dict[str, Any] = {}
    for kind, config in [*parts["nodes"].items(), *((kind, None) for kind in parts["ignored"])]:
        node_name = f"{title}{_camel(kind)}Node"
        if config is not None:
            defs[f"{title}{_camel(kind)}Config"] = _hoisted(config, title, defs)
            config_schema: dict[str, Any] = {"$ref": f"#/$defs/{title}{_camel(kind)}Config"}
        else:
            config_schema = {"type": "object", "description": f"Ignored by the {name} runtime (for the editor)."}
        defs[node_name] = {
            "type": "object",
            "title": f"{runtime.title} {kind} node",
            "description": (config or {}).get("description", f"A '{kind}' node."),
            "properties": {
                "id": {"$ref": "#/$defs/Node/properties/id"},
                "type": {"const": kind},
                "config": config_schema,
                "label": {"$ref": "#/$defs/Node/properties/label"},
            },
            "required": ["id", "type"],
            "additionalProperties": False,
        }
        nodes[kind] = {"$ref": f"#/$defs/{node_name}"}
    return {"title": runtime.title, "options": {"$ref": f"#/$defs/{title}Options"}, "nodes": nodes}


def workflow_spec_json_schema(framework: str | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of :class:`WorkflowSpec`; the rules between fields are in the descriptions.

    Every installed framework runtime's options and node configs are in ``$defs``
    (``LangGraphOptions``, ``LangGraphModelNode`` -> ``LangGraphModelConfig``...) and listed under
    ``x-frameworks.<framework>``. With ``framework``, ``nodes`` items are that framework's node schemas
    (``oneOf``, with an OpenAPI-style ``discriminator`` on ``type``) and ``options`` its options.
    """
    schema = WorkflowSpec.model_json_schema()
    schema["description"] = (
        "A workflow spec: a graph of nodes joined by edges (langgraph, crewai, agno and n8n agents), "
        "or a notebook (notebook agents). Node ids are unique; edges name existing nodes; "
        "a notebook spec has no nodes, any other spec has at least one. Each framework's node configs "
        "and options: x-frameworks.<framework>."
    )
    defs = schema.setdefault("$defs", {})
    frameworks = {name: _framework_defs(name, runtime, defs) for name, runtime in framework_runtimes().items()}
    schema["x-frameworks"] = frameworks
    chosen = frameworks.get(framework or "")
    if chosen is not None:
        nodes = chosen["nodes"]
        schema["properties"]["nodes"]["items"] = {
            "oneOf": list(nodes.values()),
            "discriminator": {"propertyName": "type", "mapping": {k: v["$ref"] for k, v in nodes.items()}},
        }
        schema["properties"]["options"] = {**chosen["options"], "description": f"Options of the {framework} runtime."}
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": SPEC_SCHEMA_ID, **schema}
