"""``/organizations/{org_id}/usage``: the month's runs, tokens and GPU-seconds and the runs going now,
against the organization's tier (owners and admins; platform admins for any organization)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.usage import DescribeUsage, UsageQuery
from ..security.permissions import Permission
from .base import OrchestratorHandler, operation, route_table

TAGS = ("organizations",)


class UsageHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "An organization's usage in a month against its tier: runs, concurrency, tokens, GPU-seconds "
        "(owners and admins; platform admins for any organization)",
        query=UsageQuery,
        responses={200: DescribeUsage},
        permission=Permission.USAGE_READ,
        tags=TAGS,
    )
    async def get(self, org_id: str) -> None:
        query = self.parse_query(UsageQuery)
        org_uuid = self.parse_id(org_id, "organization")
        self.write_model(await self.services.usage.get(self.identity, org_uuid, query))


default_handlers = route_table(("/organizations/{org_id}/usage", UsageHandler))
