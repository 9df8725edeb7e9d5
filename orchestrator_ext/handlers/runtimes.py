"""``GET /runtimes``: the agent frameworks installed here (entry points ``orchestrator.runtimes``)."""

from __future__ import annotations

import functools

from jupyter_server.auth.decorator import authorized
from orchestrator_runtimes.runtime import installed_runtimes, load_runtime, runtime_capabilities
from tornado import web

from ..schemas.runtimes import DescribeRuntime, ListRuntimesResponse, RuntimeCapabilities
from .base import OrchestratorHandler, operation, route_table


@functools.cache
def describe_runtimes() -> ListRuntimesResponse:
    """Every installed runtime, loaded once (runtimes import their frameworks only when they run)."""
    items = []
    for name, where in sorted(installed_runtimes().items()):
        try:
            runtime = load_runtime(name)
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is listed as such, not a 500
            none = RuntimeCapabilities.model_validate(dict.fromkeys(RuntimeCapabilities.model_fields, False))
            items.append(
                DescribeRuntime(
                    name=name,
                    entry_point=where,
                    available=False,
                    error=f"{type(exc).__name__}: {exc}",
                    capabilities=none,
                )
            )
            continue
        capabilities = RuntimeCapabilities.model_validate(runtime_capabilities(runtime))
        missing = getattr(runtime, "missing", None)
        problem = missing() if callable(missing) else None  # the framework itself: absent without its extra
        node_models = getattr(runtime, "node_models", None) or {}
        node_types = [*node_models, *sorted(getattr(runtime, "ignored_types", ()))]
        items.append(
            DescribeRuntime(
                name=name,
                entry_point=where,
                available=problem is None,
                error=problem,
                capabilities=capabilities,
                node_types=node_types,
            )
        )
    return ListRuntimesResponse(items=items)


class RuntimesHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "The agent frameworks installed here and their capabilities",
        responses={200: ListRuntimesResponse},
        tags=("runtimes",),
    )
    async def get(self) -> None:
        self.write_model(describe_runtimes())


default_handlers = route_table(("/runtimes", RuntimesHandler))
