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
    openapi,
    organizations,
    runtimes,
    schedules,
    schemas,
    users,
    workflows,
)

RESOURCE_MODULES = (
    health,
    users,
    organizations,
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
    for module in (*RESOURCE_MODULES, openapi, metrics):
        table.extend(module.default_handlers)
    from ..n8n import editor  # n8n's editor behind the server's authentication (not an API resource)

    table.extend(editor.default_handlers)
    return table
