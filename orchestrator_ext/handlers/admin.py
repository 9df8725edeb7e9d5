"""``/admin``: platform admins (JupyterHub admins) across every organization."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.admin import (
    AdminUpdateOrganization,
    DescribeAdminOrganization,
    ListAdminOrganizationsQuery,
    ListAdminOrganizationsResponse,
)
from ..schemas.organizations import AddMember, DescribeMember
from ..security.permissions import PLATFORM_ADMIN
from .base import OrchestratorHandler, operation, route_table
from .organizations import OrganizationLinks

TAGS = ("admin",)


class AdminOrganizationCollectionHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "List every organization with its tier, limits, slug, members and live agents",
        query=ListAdminOrganizationsQuery,
        responses={200: ListAdminOrganizationsResponse},
        lists="org_id",
        permission=PLATFORM_ADMIN,
        tags=TAGS,
    )
    async def get(self) -> None:
        query = self.parse_query(ListAdminOrganizationsQuery)
        self.write_model(await self.services.admin.list_organizations(self.identity, query))


class AdminOrganizationHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Move an organization to any tier, set its limit overrides, slug or name",
        body=AdminUpdateOrganization,
        responses={200: DescribeAdminOrganization},
        permission=PLATFORM_ADMIN,
        tags=TAGS,
    )
    async def patch(self, org_id: str) -> None:
        body = self.parse_body(AdminUpdateOrganization)
        org_uuid = self.parse_id(org_id, "organization")
        self.write_model(await self.services.admin.update_organization(self.identity, org_uuid, body))


class AdminMemberCollectionHandler(OrganizationLinks):
    @web.authenticated
    @authorized
    @operation(
        "Make a user a member of a shared organization with a role, or change their role",
        body=AddMember,
        responses={200: DescribeMember, 201: DescribeMember},
        permission=PLATFORM_ADMIN,
        tags=TAGS,
    )
    async def post(self, org_id: str) -> None:
        body = self.parse_body(AddMember)
        org_uuid = self.parse_id(org_id, "organization")
        member, added = await self.services.admin.set_member(self.identity, org_uuid, body)
        if added:
            self.set_header("Location", self.url_of(str(org_uuid), "members", str(member.user_id)))
        self.write_model(member, status=201 if added else 200)


default_handlers = route_table(
    ("/admin/organizations", AdminOrganizationCollectionHandler),
    ("/admin/organizations/{org_id}", AdminOrganizationHandler),
    ("/admin/organizations/{org_id}/members", AdminMemberCollectionHandler),
)
