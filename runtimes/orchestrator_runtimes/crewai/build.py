"""A crewai spec as a ``crewai.Crew``: its LLMs (one per model integration), agents, tools and tasks.

Or, code first, the crew ``options.callable`` builds, called with those of
``llm``, ``endpoint`` and ``inputs`` it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..agents import build_code_first
from ..errors import ErrorKind, RunError
from ..models import ModelEndpoint, model_endpoint
from ..tools import load_tool
from . import models
from .spec import DEFAULT_MAX_ITER

if TYPE_CHECKING:
    from ..runtime import RunContext
    from ..spec import WorkflowSpec

#: CrewAI's own placeholder syntax (``{topic}``), to check the inputs before the crew starts
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)}")


def missing_inputs(spec: WorkflowSpec, inputs: Mapping[str, Any]) -> RunError | None:
    """An ``input`` error naming the first placeholder no input fills, or None."""
    keys = {"agent": ("role", "goal", "backstory"), "task": ("description", "expected_output")}
    for node in spec.nodes:
        for key in keys.get(str(node.type), ()):
            for name in PLACEHOLDER.findall(str(node.config.get(key, ""))):
                if name not in inputs:
                    return RunError(
                        ErrorKind.INPUT,
                        f"the input '{name}' is missing: the {node.type} '{node.id}' uses {{{name}}} in its {key}",
                        node=node.id,
                        input=name,
                    )
    return None


class CrewBuilder:
    """Builds the ``crewai.Crew`` of a spec: its LLMs (one per model integration), agents, tools and tasks."""

    def __init__(self, spec: WorkflowSpec, context: RunContext) -> None:
        self.spec = spec
        self.context = context
        self.options = spec.options
        self.endpoints: dict[str | None, ModelEndpoint] = {}
        self.llms: dict[str, Any] = {}

    def endpoint(self, name: str | None) -> ModelEndpoint:
        wanted = name or self.options.get("model") or None
        if wanted not in self.endpoints:
            self.endpoints[wanted] = model_endpoint(self.context, wanted)
        return self.endpoints[wanted]

    def llm(self, name: str | None) -> Any:
        endpoint = self.endpoint(name)
        if endpoint.integration not in self.llms:
            self.llms[endpoint.integration] = models.crewai_llm(endpoint, self.options)
        return self.llms[endpoint.integration]

    def tool(self, node: str, reference: str) -> Any:
        from crewai.tools import BaseTool, tool

        target: Any = load_tool(reference, self.context.files_root)
        if isinstance(target, BaseTool):
            return self.guarded(target.model_copy())
        name = getattr(target, "__name__", reference.rsplit(":", 1)[-1])
        if not (getattr(target, "__doc__", None) or "").strip():
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"the tool '{reference}' of the agent '{node}' has no docstring: CrewAI shows it to the model "
                "as the tool's description",
                node=node,
                tool=reference,
            )
        try:
            return self.guarded(tool(name)(target))
        except (TypeError, ValueError) as exc:
            raise RunError(
                ErrorKind.CONFIGURATION, f"the tool '{reference}' of the agent '{node}' is unusable: {exc}", node=node
            ) from exc

    def guarded(self, tool: Any) -> Any:
        """``tool``, failing the run when it fails (unless ``options.tool_failure`` is ``warn``).

        The policy is the tool's own, not the crew's: a model asking for a tool that does not exist, or a
        hierarchical manager fumbling its delegation tools, is told so and goes on.
        """
        from crewai.tools.tool_failure import ToolFailurePolicy

        if self.options.get("tool_failure", "raise") == "raise":
            tool.tool_failure_policy = ToolFailurePolicy.RAISE
        return tool

    def crew(self) -> Any:
        from crewai import Agent, Crew, Process, Task
        from crewai.tools.tool_failure import ToolFailurePolicy

        agents: dict[str, Any] = {}
        for node in self.spec.nodes:
            if node.type != "agent":
                continue
            config = node.config
            agents[node.id] = Agent(
                role=config["role"],
                goal=config["goal"],
                backstory=config["backstory"],
                llm=self.llm(config.get("model")),
                tools=[self.tool(node.id, reference) for reference in config.get("tools", [])],
                allow_delegation=bool(config.get("allow_delegation", False)),
                max_iter=int(config.get("max_iter", DEFAULT_MAX_ITER)),
                verbose=False,
            )
        receives: dict[str, list[str]] = {}
        for edge in self.spec.edges:
            receives.setdefault(edge.target, []).append(edge.source)
        tasks: dict[str, Any] = {}
        for node in self.spec.nodes:
            if node.type != "task":
                continue
            config = node.config
            sources = [*config.get("context", []), *receives.get(node.id, [])]
            context = [tasks[name] for name in dict.fromkeys(sources) if name in tasks]
            settings: dict[str, Any] = {"context": context} if context else {}
            if config.get("agent"):
                settings["agent"] = agents[config["agent"]]
            tasks[node.id] = Task(
                name=node.id, description=config["description"], expected_output=config["expected_output"], **settings
            )
        crew_settings: dict[str, Any] = {}
        if self.options.get("process") == "hierarchical":
            crew_settings = {"process": Process.hierarchical, "manager_agent": self.manager()}
        return Crew(
            agents=list(agents.values()),
            tasks=list(tasks.values()),
            tool_failure_policy=ToolFailurePolicy.WARN,
            verbose=False,
            tracing=False,
            memory=False,
            **crew_settings,
        )

    def manager(self) -> Any:
        """The hierarchical crew's manager: CrewAI's own manager persona, on the manager model, bounded."""
        from crewai import Agent
        from crewai.utilities.i18n import get_i18n

        i18n = get_i18n()
        return Agent(
            role=i18n.retrieve("hierarchical_manager_agent", "role"),
            goal=i18n.retrieve("hierarchical_manager_agent", "goal"),
            backstory=i18n.retrieve("hierarchical_manager_agent", "backstory"),
            llm=self.llm(self.options.get("manager_model")),
            allow_delegation=True,
            max_iter=int(self.options.get("manager_max_iter", DEFAULT_MAX_ITER)),
            verbose=False,
        )


def code_first_crew(
    spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext, fail: Callable[..., RunError]
) -> tuple[Any, ModelEndpoint | None]:
    """The crew a code-first spec's callable builds, and the endpoint handed to it (if it asked for one)."""
    from crewai import Crew

    def offered(endpoint: Callable[[], ModelEndpoint]) -> dict[str, Callable[[], Any]]:
        return {
            "llm": lambda: models.crewai_llm(endpoint(), spec.options),
            "endpoint": endpoint,
            "inputs": lambda: dict(inputs),
        }

    crew, endpoints = build_code_first(spec, context, offered, (Crew,), "a crewai.Crew", fail)
    return crew, endpoints[0] if endpoints else None
