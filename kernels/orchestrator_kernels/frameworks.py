"""The frameworks that get a kernel: what each kernel is called and what its start-up puts at hand.

One row per framework, as data (like JupyterHub's scopes table): the kernelspec,
the shared-data files, ``jupyter orchestrator kernels install`` and the kernels'
start-up all read this table, so a framework is added in one place.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

#: set in a framework kernel's environment (kernel.json ``env``): which start-up the extension runs
FRAMEWORK_ENV = "ORCHESTRATOR_KERNEL_FRAMEWORK"
#: the frameworks must not phone home or wait on a network from a notebook either
QUIET_ENV = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "AGNO_TELEMETRY": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}


@dataclass(frozen=True)
class Framework:
    """A framework with a kernel of its own."""

    #: the agent framework's name in the API (``agents.framework``)
    key: str
    #: how people write it
    title: str
    #: the module whose presence means the framework is installed
    module: str
    #: the start-up's imports: the names a notebook's first cell uses without importing them
    imports: tuple[str, ...]

    @property
    def kernel_name(self) -> str:
        return f"orchestrator-{self.key}"

    @property
    def display_name(self) -> str:
        return f"Orchestrator · {self.title}"

    @property
    def extra(self) -> str:
        """The pip extra that installs the framework."""
        return f"orchestrator[{self.key}]"

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


FRAMEWORKS: dict[str, Framework] = {
    framework.key: framework
    for framework in (
        Framework(
            key="langgraph",
            title="LangGraph",
            module="langgraph",
            imports=(
                "from typing import Annotated, TypedDict",
                "from langgraph.graph import END, START, MessagesState, StateGraph",
                "from langgraph.checkpoint.memory import InMemorySaver",
            ),
        ),
        Framework(
            key="crewai",
            title="CrewAI",
            module="crewai",
            imports=("from crewai import LLM, Agent, Crew, Process, Task",),
        ),
        Framework(
            key="agno",
            title="Agno",
            module="agno",
            imports=("from agno.agent import Agent", "from agno.team import Team"),
        ),
    )
}


def framework_named(key: str) -> Framework:
    """The framework ``key`` names; a ValueError listing the known ones otherwise."""
    try:
        return FRAMEWORKS[key]
    except KeyError:
        known = ", ".join(FRAMEWORKS)
        raise ValueError(f"no framework kernel '{key}' (known: {known})") from None
