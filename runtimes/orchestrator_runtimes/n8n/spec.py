"""What an n8n agent's workflow spec holds: one ``n8n_workflow`` node carrying an n8n workflow.

The node's ``config`` has either ``workflow`` (the JSON n8n exports: ``name``,
``nodes``, ``connections``, ``settings``) or ``workflow_id`` (a workflow already
on the instance). A run calls the workflow through its Webhook trigger, so an
exported workflow must have exactly one Webhook node with a path.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

WEBHOOK_TYPE = "n8n-nodes-base.webhook"
RESPOND_TYPE = "n8n-nodes-base.respondToWebhook"


class N8nOptions(BaseModel):
    """An n8n agent's options (none yet: the n8n workflow carries its own settings)."""

    model_config = ConfigDict(extra="forbid")


def webhook_nodes(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in workflow.get("nodes") or [] if isinstance(node, dict) and node.get("type") == WEBHOOK_TYPE]


def workflow_problem(workflow: dict[str, Any]) -> str | None:
    """Why ``workflow`` (as n8n exports it) cannot run from here, or None (said of the workflow: "has no nodes")."""
    nodes = workflow.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return "has no nodes: give the JSON n8n exports (a non-empty 'nodes' list)"
    if not isinstance(workflow.get("connections", {}), dict):
        return "has 'connections' that are not an object, as n8n exports them"
    names = [node.get("name") for node in nodes if isinstance(node, dict)]
    if len(names) != len(nodes) or not all(isinstance(name, str) and name for name in names):
        return "has a node without a 'name'"
    if len(set(names)) != len(names):
        return "has two nodes of the same name"
    hooks = webhook_nodes(workflow)
    if len(hooks) != 1:
        return f"needs exactly one webhook node ({WEBHOOK_TYPE}) to be run from here, it has {len(hooks)}"
    path = (hooks[0].get("parameters") or {}).get("path")
    if not isinstance(path, str) or not path.strip("/"):
        return "has a webhook node without a path"
    return None


class N8nWorkflowConfig(BaseModel):
    """An n8n workflow to run: the JSON n8n exports, or the id of a workflow on the instance."""

    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] | None = Field(
        default=None, description="The workflow as n8n exports it (name, nodes, connections, settings)."
    )
    workflow_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="The id of a workflow already on the n8n instance."
    )
    instance: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The n8n integration to run on (default: the one n8n integration the run receives).",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The OpenAI-compatible integration the workflow's OpenAI Chat Model nodes use "
        "(default: the run's default model).",
    )

    @field_validator("workflow")
    @classmethod
    def _runnable(cls, workflow: dict[str, Any] | None) -> dict[str, Any] | None:
        if workflow is not None:
            problem = workflow_problem(workflow)
            if problem:
                raise PydanticCustomError("n8n_workflow", problem)
        return workflow

    @model_validator(mode="after")
    def _exactly_one(self) -> N8nWorkflowConfig:
        if (self.workflow is None) == (self.workflow_id is None):
            raise PydanticCustomError("n8n_source", "give exactly one of 'workflow' (n8n's JSON) and 'workflow_id'")
        return self
