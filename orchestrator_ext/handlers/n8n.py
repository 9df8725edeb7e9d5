"""``POST /workflows/{workflow_id}/sync-from-n8n``: pull the workflow as saved in n8n as its next version."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..n8n.sync import sync_from_n8n
from ..schemas.workflows import DescribeWorkflow
from ..security.permissions import Permission
from .base import OrchestratorHandler, operation, route_table

TAGS = ("workflows",)


class SyncFromN8nHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Save the n8n workflow as edited on the instance (in n8n's editor) as the workflow's next version",
        responses={200: DescribeWorkflow},
        permission=Permission.WORKFLOWS_WRITE,
        tags=TAGS,
    )
    async def post(self, workflow_id: str) -> None:
        target = self.parse_id(workflow_id, "workflow")
        workflow = await sync_from_n8n(self.services, self.identity, target)
        self.set_header("ETag", f'"{workflow.version}"')
        self.write_model(workflow)


default_handlers = route_table(("/workflows/{workflow_id}/sync-from-n8n", SyncFromN8nHandler))
