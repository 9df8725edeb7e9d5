"""Agents: create, list, read, update, soft-delete, within the caller's organizations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from ..db.models import Agent, Workflow
from ..db.reads import CompiledReads, as_json_page, newest_first_page
from ..errors import Conflict, FieldError, NotFound
from ..schemas.agents import CreateAgent, DescribeAgent, ListAgentsQuery, UpdateAgent
from ..security.permissions import Permission
from . import audit
from .pagination import JsonPage, page_params
from .scope import Identity, Scope, ScopeFactory, resolve_org


async def load_agent(scope: Scope, agent_id: uuid.UUID, permission: Permission) -> Agent:
    """A live agent the caller may act on with ``permission``; 404 when invisible or deleted."""
    agent = (
        await scope.session.execute(select(Agent).where(Agent.id == agent_id, Agent.deleted_at.is_(None)))
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"No agent with id '{agent_id}'.")
    scope.actor.require(agent.org_id, permission, what="agent", resource_id=agent_id)
    return agent


_READS = CompiledReads()


def _agents_page(framework: bool, q: bool, after: bool, all_mine: bool) -> Select[str, bool, Any, Any]:
    """The agents page query for one combination of filters (bound parameters, compiled once)."""

    def conditions(agents: Table) -> list[Any]:
        found: list[Any] = [agents.c.deleted_at.is_(None)]
        if framework:
            found.append(agents.c.framework == bindparam("framework"))
        if q:
            found.append(agents.c.name.ilike(bindparam("q"), escape="\\"))
        return found

    rows = newest_first_page(Agent.__table__, conditions, after=after, all_mine=all_mine)  # type: ignore[arg-type]
    return as_json_page(rows, list(DescribeAgent.model_fields))


def _one_agent() -> Select[Any]:
    """A live agent by id, with the columns its answer shows."""
    agents = Agent.__table__
    columns = [agents.c[name] for name in DescribeAgent.model_fields]
    agent_id = bindparam("agent_id", type_=agents.c.id.type)
    return select(*columns).where(agents.c.id == agent_id, agents.c.deleted_at.is_(None))


def _create_refused(exc: IntegrityError, name: str) -> Conflict:
    diag = getattr(exc.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None)
    if constraint == "agents_within_tier_limit":
        message = getattr(diag, "message_primary", None) or "The organization has reached its agent limit"
        return Conflict(f"{message}. Delete an agent or move the organization to a larger tier.")
    if constraint == "uq_agents_org_live_name":
        return _name_taken(name)
    return Conflict("The agent conflicts with existing data.")


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"An agent named '{name}' already exists in this organization.",
        errors=[FieldError("name", "already taken in this organization", "unique")],
    )


class AgentService:
    def __init__(self, scopes: ScopeFactory) -> None:
        self.scopes = scopes

    async def create(self, identity: Identity, body: CreateAgent) -> DescribeAgent:
        async with self.scopes.enter(identity) as scope:
            org_id = resolve_org(scope, body.org_id)
            scope.actor.require(org_id, Permission.AGENTS_WRITE)
            agent = Agent(
                id=uuid.uuid4(),
                org_id=org_id,
                name=body.name,
                framework=body.framework.value,
                description=body.description,
                tags=body.tags,
                created_by=scope.actor.user_id,
            )
            scope.session.add(agent)
            audit.record(scope, "agent.create", "agent", agent.id, org_id, framework=agent.framework)
            # The database decides both rules atomically: the unique live name (at the
            # INSERT) and the tier's agent limit (a trigger deferred to COMMIT that counts
            # live agents per organization): so commit here, where both can be reported.
            try:
                await scope.session.commit()
            except IntegrityError as exc:
                raise _create_refused(exc, body.name) from exc
            return DescribeAgent.model_validate(agent)

    async def list(self, identity: Identity, query: ListAgentsQuery) -> JsonPage:
        """Newest first, on the fast read path (:mod:`..db.reads`); the page is ``ListAgentsResponse``."""
        params: dict[str, Any] = page_params(query.limit, query.cursor)
        if query.framework is not None:
            params["framework"] = query.framework.value
        if query.q:
            params["q"] = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if query.org_id is not None:
            params["orgs"] = [query.org_id]
        # without org_id: every organization of the caller (every role may read agents)
        shape = ("framework" in params, "q" in params, "after_at" in params, "orgs" not in params)
        page_query = _READS.prepared(shape, lambda: _agents_page(*shape))
        actor, rows = await self.scopes.read(identity, page_query, params)
        if query.org_id is not None:
            actor.require(query.org_id, Permission.AGENTS_READ)
        return JsonPage.of(rows[0])

    async def get(self, identity: Identity, agent_id: uuid.UUID) -> DescribeAgent:
        """On the fast read path: entering the caller's scope and the read in one round trip (one statement).

        Row-level security limits the read to the caller's organizations, as on the ORM's path; a member
        whose role may not read agents is refused by :meth:`Actor.require` before anything is shown.
        """
        query = _READS.prepared("one", _one_agent)
        actor, rows = await self.scopes.read(identity, query, {"agent_id": agent_id})
        if not rows:
            raise NotFound(f"No agent with id '{agent_id}'.")
        actor.require(rows[0]["org_id"], Permission.AGENTS_READ, what="agent", resource_id=agent_id)
        return DescribeAgent.model_validate(rows[0])

    async def update(self, identity: Identity, agent_id: uuid.UUID, body: UpdateAgent) -> DescribeAgent:
        async with self.scopes.enter(identity) as scope:
            agent = await load_agent(scope, agent_id, Permission.AGENTS_WRITE)
            changes = body.model_dump(exclude_unset=True, exclude_none=True)
            if "name" in changes and changes["name"].lower() != agent.name.lower():
                await self._check_name_free(scope, agent.org_id, changes["name"])
            for key, value in changes.items():
                setattr(agent, key, value)
            agent.updated_at = datetime.now(UTC)
            audit.record(scope, "agent.update", "agent", agent.id, agent.org_id, fields=sorted(changes))
            await scope.session.flush()
            return DescribeAgent.model_validate(agent)

    async def delete(self, identity: Identity, agent_id: uuid.UUID) -> None:
        """Soft delete: the agent and its workflows disappear; their executions stay readable."""
        async with self.scopes.enter(identity) as scope:
            agent = await load_agent(scope, agent_id, Permission.AGENTS_DELETE)
            now = datetime.now(UTC)
            agent.deleted_at = now
            await scope.session.execute(
                update(Workflow)
                .where(Workflow.agent_id == agent.id, Workflow.deleted_at.is_(None))
                .values(deleted_at=now)
            )
            audit.record(scope, "agent.delete", "agent", agent.id, agent.org_id)

    async def _check_name_free(self, scope: Scope, org_id: uuid.UUID, name: str) -> None:
        taken = (
            await scope.session.execute(
                select(Agent.id).where(
                    Agent.org_id == org_id, func.lower(Agent.name) == name.lower(), Agent.deleted_at.is_(None)
                )
            )
        ).first()
        if taken is not None:
            raise _name_taken(name)
