"""Runtimes: the agent frameworks installed where this server runs, and what each can do."""

from __future__ import annotations

from pydantic import Field

from .common import ResponseModel


class RuntimeCapabilities(ResponseModel):
    streaming: bool = Field(description="Steps are reported as they happen (GET /executions/{id}/events).")
    checkpoints: bool = Field(description="State is checkpointed; a run can stop and resume.")
    multi_agent: bool = Field(description="Several agents (a crew, a team, a graph of agents) in one run.")
    tools: bool = Field(description="Agents call tools (built-in or module:function).")
    human_in_the_loop: bool = Field(description="A run can wait for a human's answer (status waiting, then resume).")
    multi_modal: bool = Field(description="Image and file inputs reach models that take them.")
    gpu: bool = Field(description="Runs need or use a GPU worker.")


class DescribeRuntime(ResponseModel):
    name: str = Field(description="The framework name agents use (langgraph, crewai, agno, notebook...).")
    entry_point: str = Field(description="Where it is implemented ('module:attribute').")
    available: bool = Field(
        description="False when it is declared but cannot run here: it does not load, or its framework is not "
        "installed (see error)."
    )
    error: str | None = Field(default=None, description="Why it cannot run here, and what to install.")
    capabilities: RuntimeCapabilities
    node_types: list[str] = Field(
        default_factory=list,
        description="The node types its specs may have (their configs: GET /schemas/workflow-spec.json, "
        "x-frameworks.<name>.nodes); empty for notebooks.",
    )


class ListRuntimesResponse(ResponseModel):
    items: list[DescribeRuntime]
