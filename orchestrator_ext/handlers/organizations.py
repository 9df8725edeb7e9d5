"""``/organizations``, ``/organizations/{org_id}`` and their ``/members``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.common import Problem
from ..schemas.organizations import (
    AddMember,
    CreateOrganization,
    DescribeMember,
    DescribeOrganization,
    ListMembersQuery,
    ListMembersResponse,
    ListOrganizationsQuery,
    ListOrganizationsResponse,
    UpdateMember,
    UpdateOrganization,
)
from ..security.permissions import Permission
from .base import API_PREFIX, OrchestratorHandler, operation, route_table

TAGS = ("organizations",)


class OrganizationLinks(OrchestratorHandler):
    """Handlers that link to organizations and their members (``Location`` headers)."""

    def url_of(self, *parts: str) -> str:
        return "/".join((self.base_url.rstrip("/"), API_PREFIX, "organizations", *parts))


class OrganizationCollectionHandler(OrganizationLinks):
    @web.authenticated
    @authorized
    @operation(
        "List the caller's organizations with their role, tier and limits",
        query=ListOrganizationsQuery,
        responses={200: ListOrganizationsResponse},
        lists="org_id",
        permission=Permission.ORG_READ,
        tags=TAGS,
    )
    async def get(self) -> None:
        query = self.parse_query(ListOrganizationsQuery)
        self.write_model(await self.services.organizations.list(self.identity, query))

    @web.authenticated
    @authorized
    @operation(
        "Create an organization (tier free or team); the caller becomes its owner",
        body=CreateOrganization,
        responses={201: DescribeOrganization},
        creates="org_id",
        tags=TAGS,
    )
    async def post(self) -> None:
        body = self.parse_body(CreateOrganization)
        org = await self.services.organizations.create(self.identity, body)
        self.set_header("Location", self.url_of(str(org.id)))
        self.write_model(org, status=201)


class OrganizationHandler(OrganizationLinks):
    @web.authenticated
    @authorized
    @operation(
        "Get an organization with its tier and effective limits",
        responses={200: DescribeOrganization},
        permission=Permission.ORG_READ,
        tags=TAGS,
    )
    async def get(self, org_id: str) -> None:
        org = await self.services.organizations.get(self.identity, self.parse_id(org_id, "organization"))
        self.write_model(org)

    @web.authenticated
    @authorized
    @operation(
        "Rename an organization (org:update) or change its tier (org:change_tier)",
        body=UpdateOrganization,
        responses={200: DescribeOrganization},
        permission=Permission.ORG_UPDATE,
        tags=TAGS,
    )
    async def patch(self, org_id: str) -> None:
        body = self.parse_body(UpdateOrganization)
        org_uuid = self.parse_id(org_id, "organization")
        self.write_model(await self.services.organizations.update(self.identity, org_uuid, body))


class MemberCollectionHandler(OrganizationLinks):
    @web.authenticated
    @authorized
    @operation(
        "List an organization's members, newest first",
        query=ListMembersQuery,
        responses={200: ListMembersResponse},
        lists="user_id",
        listed_id="user_id",
        permission=Permission.MEMBERS_READ,
        tags=TAGS,
    )
    async def get(self, org_id: str) -> None:
        query = self.parse_query(ListMembersQuery)
        org_uuid = self.parse_id(org_id, "organization")
        self.write_model(await self.services.organizations.list_members(self.identity, org_uuid, query))

    @web.authenticated
    @authorized
    @operation(
        "Add an existing user (members:manage; members:manage_owners to add an owner)",
        body=AddMember,
        responses={201: DescribeMember},
        creates="user_id",
        created_id="user_id",
        permission=Permission.MEMBERS_MANAGE,
        tags=TAGS,
    )
    async def post(self, org_id: str) -> None:
        body = self.parse_body(AddMember)
        org_uuid = self.parse_id(org_id, "organization")
        member = await self.services.organizations.add_member(self.identity, org_uuid, body)
        self.set_header("Location", self.url_of(str(org_uuid), "members", str(member.user_id)))
        self.write_model(member, status=201)


class MemberHandler(OrganizationLinks):
    @web.authenticated
    @authorized
    @operation(
        "Change a member's role (members:manage_owners when an owner is involved; the last owner stays)",
        body=UpdateMember,
        responses={200: DescribeMember},
        permission=Permission.MEMBERS_MANAGE,
        tags=TAGS,
    )
    async def patch(self, org_id: str, user_id: str) -> None:
        body = self.parse_body(UpdateMember)
        org_uuid = self.parse_id(org_id, "organization")
        user_uuid = self.parse_id(user_id, "member")
        self.write_model(await self.services.organizations.update_member(self.identity, org_uuid, user_uuid, body))

    @web.authenticated
    @authorized
    @operation(
        "Remove a member, or leave (the last owner cannot)",
        responses={204: None, 409: Problem},
        permission=Permission.MEMBERS_MANAGE,
        tags=TAGS,
    )
    async def delete(self, org_id: str, user_id: str) -> None:
        org_uuid = self.parse_id(org_id, "organization")
        user_uuid = self.parse_id(user_id, "member")
        await self.services.organizations.remove_member(self.identity, org_uuid, user_uuid)
        self.set_status(204)
        self.finish()


default_handlers = route_table(
    ("/organizations", OrganizationCollectionHandler),
    ("/organizations/{org_id}", OrganizationHandler),
    ("/organizations/{org_id}/members", MemberCollectionHandler),
    ("/organizations/{org_id}/members/{user_id}", MemberHandler),
)
