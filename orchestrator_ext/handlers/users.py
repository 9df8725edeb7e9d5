"""``/users/me``: the caller's profile and memberships."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.users import DescribeUser, UpdateUser
from .base import OrchestratorHandler, operation, route_table


class CurrentUserHandler(OrchestratorHandler):
    """The caller, as the orchestrator knows them (created on their first request)."""

    @web.authenticated
    @authorized
    @operation("Get the caller's profile and memberships", responses={200: DescribeUser}, tags=("users",))
    async def get(self) -> None:
        self.write_model(await self.services.users.me(self.identity))

    @web.authenticated
    @authorized
    @operation(
        "Update the caller's display name or email (omitted: unchanged; null: cleared)",
        body=UpdateUser,
        responses={200: DescribeUser},
        tags=("users",),
    )
    async def put(self) -> None:
        body = self.parse_body(UpdateUser)
        self.write_model(await self.services.users.update(self.identity, body))


default_handlers = route_table(
    ("/users/me", CurrentUserHandler),
)
