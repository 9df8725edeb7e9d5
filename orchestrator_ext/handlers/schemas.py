"""``/schemas/workflow-spec.json``: the JSON Schema of workflow specs, for editors and clients."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from orchestrator_runtimes import workflow_spec_json_schema
from tornado import web

from ..errors import FieldError, ValidationFailed
from ..schemas.workflows import DescribeJsonSchema, SpecSchemaQuery
from .base import OrchestratorHandler, operation, route_table


class WorkflowSpecSchemaHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "The JSON Schema (2020-12) of workflow specs; ?framework= narrows nodes and options to one framework's",
        query=SpecSchemaQuery,
        responses={200: DescribeJsonSchema},
        tags=("schemas",),
        media={200: ("application/schema+json",)},
    )
    async def get(self) -> None:
        framework = self.parse_query(SpecSchemaQuery).framework
        schema = workflow_spec_json_schema(framework)
        if framework is not None and framework not in schema["x-frameworks"]:
            known = ", ".join(sorted(schema["x-frameworks"])) or "none"
            raise ValidationFailed(
                "The query string is invalid.",
                errors=[FieldError("framework", f"no framework runtime '{framework}' here (known: {known})", "enum")],
            )
        self.finish(json.dumps(schema), set_content_type="application/schema+json")


default_handlers = route_table(("/schemas/workflow-spec.json", WorkflowSpecSchemaHandler))
