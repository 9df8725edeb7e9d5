"""``GET /models``: the models this server runs itself, with the URL code can reach them at.

In the personal mode the server starts the local model on a free port and
gives it to runs of organizations that configured no model integration; a
notebook or script asks here for its URL instead of guessing a port.
"""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.meta import DescribeServerModel, ListServerModelsResponse
from .base import OrchestratorHandler, operation, route_table


class ServerModelsHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "The models this server provides to runs (the personal mode's local model) and their URLs",
        responses={200: ListServerModelsResponse},
        tags=("runtimes",),
    )
    async def get(self) -> None:
        items = [
            DescribeServerModel(
                name=name,
                kind=str(integration["kind"]),
                model=str(integration["config"].get("model", "")),
                base_url=str(integration["config"]["base_url"]),
            )
            for name, integration in sorted(self.services.server_models.items())
        ]
        self.write_model(ListServerModelsResponse(items=items))


default_handlers = route_table(("/models", ServerModelsHandler))
