"""``/agents`` and ``/agents/{agent_id}``."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..schemas.agents import CreateAgent, DescribeAgent, ListAgentsQuery, ListAgentsResponse, UpdateAgent
from ..security.permissions import Permission
from .base import OrchestratorHandler, operation, route_table

AUTH_RESOURCE = "orchestrator"


class _AgentHandler(OrchestratorHandler):
    auth_resource = AUTH_RESOURCE


class AgentCollectionHandler(_AgentHandler):
    @web.authenticated
    @authorized
    @operation(
        "List agents, newest first",
        query=ListAgentsQuery,
        responses={200: ListAgentsResponse},
        lists="agent_id",
        permission=Permission.AGENTS_READ,
        tags=("agents",),
    )
    async def get(self) -> None:
        query = self.parse_query(ListAgentsQuery)
        self.write_json(await self.services.agents.list(self.identity, query))

    @web.authenticated
    @authorized
    @operation(
        "Create an agent",
        body=CreateAgent,
        responses={201: DescribeAgent},
        creates="agent_id",
        permission=Permission.AGENTS_WRITE,
        tags=("agents",),
    )
    async def post(self) -> None:
        body = self.parse_body(CreateAgent)
        agent = await self.services.agents.create(self.identity, body)
        self.set_header("Location", self.reverse_url_for_agent(str(agent.id)))
        self.write_model(agent, status=201)

    def reverse_url_for_agent(self, agent_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/orchestrator/api/v1/agents/{agent_id}"


class AgentHandler(_AgentHandler):
    @web.authenticated
    @authorized
    @operation("Get an agent", responses={200: DescribeAgent}, permission=Permission.AGENTS_READ, tags=("agents",))
    async def get(self, agent_id: str) -> None:
        agent = await self.services.agents.get(self.identity, self.parse_id(agent_id, "agent"))
        self.write_model(agent)

    @web.authenticated
    @authorized
    @operation(
        "Update an agent's name, description or tags",
        body=UpdateAgent,
        responses={200: DescribeAgent},
        permission=Permission.AGENTS_WRITE,
        tags=("agents",),
    )
    async def put(self, agent_id: str) -> None:
        body = self.parse_body(UpdateAgent)
        agent = await self.services.agents.update(self.identity, self.parse_id(agent_id, "agent"), body)
        self.write_model(agent)

    @web.authenticated
    @authorized
    @operation(
        "Archive an agent (soft delete; its executions stay readable)",
        responses={204: None},
        permission=Permission.AGENTS_DELETE,
        tags=("agents",),
    )
    async def delete(self, agent_id: str) -> None:
        await self.services.agents.delete(self.identity, self.parse_id(agent_id, "agent"))
        self.set_status(204)
        self.finish()


default_handlers = route_table(
    ("/agents", AgentCollectionHandler),
    ("/agents/{agent_id}", AgentHandler),
)
