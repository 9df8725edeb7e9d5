"""``/integrations`` and ``/integrations/{integration_id}``: secrets go in, never come out."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.integrations import (
    CreateIntegration,
    DescribeIntegration,
    ListIntegrationsQuery,
    ListIntegrationsResponse,
)
from ..security.permissions import Permission
from .base import API_PREFIX, OrchestratorHandler, operation, route_table

TAGS = ("integrations",)


class IntegrationCollectionHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "List integrations, newest first (never their secrets)",
        query=ListIntegrationsQuery,
        responses={200: ListIntegrationsResponse},
        lists="integration_id",
        permission=Permission.INTEGRATIONS_READ,
        tags=TAGS,
    )
    async def get(self) -> None:
        query = self.parse_query(ListIntegrationsQuery)
        self.write_model(await self.services.integrations.list(self.identity, query))

    @web.authenticated
    @authorized
    @operation(
        "Create an integration; its secret is encrypted and write-only",
        body=CreateIntegration,
        responses={201: DescribeIntegration},
        creates="integration_id",
        permission=Permission.INTEGRATIONS_MANAGE,
        tags=TAGS,
    )
    async def post(self) -> None:
        body = self.parse_body(CreateIntegration)
        integration = await self.services.integrations.create(self.identity, body)
        self.set_header("Location", f"{self.base_url.rstrip('/')}/{API_PREFIX}/integrations/{integration.id}")
        self.write_model(integration, status=201)


class IntegrationHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Get an integration (never its secret)",
        responses={200: DescribeIntegration},
        permission=Permission.INTEGRATIONS_READ,
        tags=TAGS,
    )
    async def get(self, integration_id: str) -> None:
        integration_uuid = self.parse_id(integration_id, "integration")
        self.write_model(await self.services.integrations.get(self.identity, integration_uuid))

    @web.authenticated
    @authorized
    @operation(
        "Delete an integration and its secret",
        responses={204: None},
        permission=Permission.INTEGRATIONS_MANAGE,
        tags=TAGS,
    )
    async def delete(self, integration_id: str) -> None:
        await self.services.integrations.delete(self.identity, self.parse_id(integration_id, "integration"))
        self.set_status(204)
        self.finish()


default_handlers = route_table(
    ("/integrations", IntegrationCollectionHandler),
    ("/integrations/{integration_id}", IntegrationHandler),
)
