"""``/schemas/workflow-spec.json``: the JSON Schema of workflow specs, for editors and clients."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from orchestrator_runtimes import workflow_spec_json_schema
from tornado import web

from ..schemas.workflows import DescribeJsonSchema
from .base import OrchestratorHandler, operation, route_table


class WorkflowSpecSchemaHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "The JSON Schema (2020-12) of workflow specs",
        responses={200: DescribeJsonSchema},
        tags=("schemas",),
    )
    async def get(self) -> None:
        self.finish(json.dumps(workflow_spec_json_schema()), set_content_type="application/schema+json")


default_handlers = route_table(("/schemas/workflow-spec.json", WorkflowSpecSchemaHandler))
