"""``/agents/{agent_id}/workflows``, ``/workflows/{workflow_id}`` and its versions.

Workflow responses carry ``ETag: "<version>"``; a ``PUT`` with ``If-Match``
naming a version that is no longer current is refused (409).
"""

from __future__ import annotations

import re

from jupyter_server.auth.decorator import authorized
from orchestrator_runtimes import validate_spec
from tornado import web

from ..errors import FieldError, NotFound, ValidationFailed
from ..schemas.workflows import (
    CreateWorkflow,
    DescribeWorkflow,
    DescribeWorkflowVersion,
    ListWorkflowsQuery,
    ListWorkflowsResponse,
    ListWorkflowVersionsQuery,
    ListWorkflowVersionsResponse,
    SpecProblem,
    UpdateWorkflow,
    ValidateSpec,
    ValidateSpecResponse,
)
from ..security.permissions import Permission
from .base import Header, OrchestratorHandler, operation, route_table

TAGS = ("workflows",)
IF_MATCH_HELP = 'The version you edited, as its ETag ("3"): a stale one is refused with 409.'
_ETAG = re.compile(r'^(?:W/)?(?:"([0-9]{1,9})"|([0-9]{1,9}))$')
_ONE = r'(?:W/)?(?:"[0-9]{1,9}"|[0-9]{1,9})'
#: ``*`` or a list of version ETags, as parse_if_match reads it
IF_MATCH_PATTERN = rf"^[ \t]*(?:\*|{_ONE}(?:[ \t]*,[ \t]*{_ONE})*)[ \t]*$"
_VERSION = re.compile(r"^[0-9]{1,9}$")


def parse_if_match(value: str | None) -> frozenset[int] | None:
    """The versions an ``If-Match`` header names; None when absent or ``*`` (no precondition)."""
    if value is None or value.strip() == "*":
        return None
    versions = set()
    for part in value.split(","):
        match = _ETAG.match(part.strip())
        if match is None:
            raise ValidationFailed(
                'If-Match must name a workflow version as its ETag, e.g. "3".',
                errors=[FieldError("If-Match", 'expected a version ETag such as "3"', "if_match_invalid")],
            )
        versions.add(int(match.group(1) or match.group(2)))
    return frozenset(versions)


class _WorkflowHandler(OrchestratorHandler):
    def write_workflow(self, workflow: DescribeWorkflow, status: int = 200) -> None:
        self.set_header("ETag", f'"{workflow.version}"')
        self.write_model(workflow, status)

    def workflow_url(self, workflow_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/orchestrator/api/v1/workflows/{workflow_id}"


class AgentWorkflowsHandler(_WorkflowHandler):
    @web.authenticated
    @authorized
    @operation(
        "List an agent's workflows, newest first",
        query=ListWorkflowsQuery,
        responses={200: ListWorkflowsResponse},
        lists="workflow_id",
        permission=Permission.WORKFLOWS_READ,
        tags=TAGS,
    )
    async def get(self, agent_id: str) -> None:
        query = self.parse_query(ListWorkflowsQuery)
        reply = await self.services.workflows.list(self.identity, self.parse_id(agent_id, "agent"), query)
        self.write_model(reply)

    @web.authenticated
    @authorized
    @operation(
        "Create a workflow (its version 1) for an agent",
        body=CreateWorkflow,
        responses={201: DescribeWorkflow},
        creates="workflow_id",
        permission=Permission.WORKFLOWS_WRITE,
        tags=TAGS,
    )
    async def post(self, agent_id: str) -> None:
        target = self.parse_id(agent_id, "agent")
        body = self.parse_body(CreateWorkflow)
        workflow = await self.services.workflows.create(self.identity, target, body)
        self.set_header("Location", self.workflow_url(str(workflow.id)))
        self.write_workflow(workflow, status=201)


class WorkflowHandler(_WorkflowHandler):
    @web.authenticated
    @authorized
    @operation(
        "Get a workflow at its current version",
        responses={200: DescribeWorkflow},
        permission=Permission.WORKFLOWS_READ,
        tags=TAGS,
    )
    async def get(self, workflow_id: str) -> None:
        workflow = await self.services.workflows.get(self.identity, self.parse_id(workflow_id, "workflow"))
        self.write_workflow(workflow)

    @web.authenticated
    @authorized
    @operation(
        "Save a new version of a workflow (versions are never changed)",
        body=UpdateWorkflow,
        responses={200: DescribeWorkflow},
        permission=Permission.WORKFLOWS_WRITE,
        tags=TAGS,
        headers={"If-Match": Header(IF_MATCH_HELP, IF_MATCH_PATTERN)},
    )
    async def put(self, workflow_id: str) -> None:
        target = self.parse_id(workflow_id, "workflow")
        if_match = parse_if_match(self.request.headers.get("If-Match"))
        body = self.parse_body(UpdateWorkflow)
        workflow = await self.services.workflows.update(self.identity, target, body, if_match)
        self.write_workflow(workflow)


class WorkflowVersionsHandler(_WorkflowHandler):
    @web.authenticated
    @authorized
    @operation(
        "List a workflow's versions, newest first",
        query=ListWorkflowVersionsQuery,
        responses={200: ListWorkflowVersionsResponse},
        lists="version",
        listed_id="version",
        permission=Permission.WORKFLOWS_READ,
        tags=TAGS,
    )
    async def get(self, workflow_id: str) -> None:
        query = self.parse_query(ListWorkflowVersionsQuery)
        reply = await self.services.workflows.versions(self.identity, self.parse_id(workflow_id, "workflow"), query)
        self.write_model(reply)


class WorkflowVersionHandler(_WorkflowHandler):
    @web.authenticated
    @authorized
    @operation(
        "Get one version of a workflow",
        responses={200: DescribeWorkflowVersion},
        permission=Permission.WORKFLOWS_READ,
        tags=TAGS,
    )
    async def get(self, workflow_id: str, version: str) -> None:
        target = self.parse_id(workflow_id, "workflow")
        if not _VERSION.match(version):
            raise NotFound(f"No version '{version[:64]}' (versions are numbers: 1, 2, ...).")
        reply = await self.services.workflows.version(self.identity, target, int(version))
        self.set_header("ETag", f'"{reply.version}"')
        self.write_model(reply)


class ValidateSpecHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Check a workflow spec for a framework without saving it: every problem, with the node at fault",
        body=ValidateSpec,
        responses={200: ValidateSpecResponse},
        tags=TAGS,
    )
    async def post(self) -> None:
        body = self.parse_body(ValidateSpec)
        _, problems = validate_spec(body.spec, body.framework)
        errors = [SpecProblem(field=p.field, message=p.message) for p in problems]
        self.write_model(ValidateSpecResponse(valid=not errors, errors=errors))


default_handlers = route_table(
    ("/workflows/validate", ValidateSpecHandler),
    ("/agents/{agent_id}/workflows", AgentWorkflowsHandler),
    ("/workflows/{workflow_id}", WorkflowHandler),
    ("/workflows/{workflow_id}/versions", WorkflowVersionsHandler),
    ("/workflows/{workflow_id}/versions/{version}", WorkflowVersionHandler),
)
