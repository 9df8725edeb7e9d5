"""REST handlers, one module per resource, each ending in a ``default_handlers`` route table."""

from __future__ import annotations

from typing import Any

from . import (
    admin,
    agents,
    executions,
    health,
    index,
    integrations,
    metrics,
    models,
    n8n,
    n8n_editor,
    openapi,
    organizations,
    runtimes,
    schedules,
    schemas,
    usage,
    users,
    workflows,
)

RESOURCE_MODULES = (
    health,
    users,
    organizations,
    usage,
    agents,
    workflows,
    n8n,
    executions,
    schedules,
    integrations,
    schemas,
    runtimes,
    models,
    admin,
    index,
)


def all_handlers() -> list[tuple[str, Any]]:
    """Every route: the API resources, then the OpenAPI document, docs page and metrics."""
    table: list[tuple[str, Any]] = []
    # n8n_editor: n8n's editor behind the server's authentication (not an API resource)
    for module in (*RESOURCE_MODULES, openapi, metrics, n8n_editor):
        table.extend(module.default_handlers)
    return table
