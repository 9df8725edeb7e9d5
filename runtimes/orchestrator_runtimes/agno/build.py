"""An agno spec as Agno objects: the agents and teams from its entry down, their models, tools, memory
(in the runs' database) and knowledge (pgvector tables), with hooks that report each step."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ErrorKind, RunError
from ..models import ModelEndpoint, model_endpoint
from ..tools import load_tool
from . import models
from .models import DELEGATION_TOOLS, Delegation, Failures, Sink, agno_embedder, failure, guarded_tool
from .spec import DEFAULT_HISTORY_RUNS, DEFAULT_LIMIT, MODES, members_of

if TYPE_CHECKING:
    from ..runtime import RunContext
    from ..spec import Node, WorkflowSpec
    from .inputs import Inputs

#: Agno's tables (sessions, memories, knowledge) live in this schema of the runs' database
SCHEMA = "agno"


def sqlalchemy_url(state_url: str) -> str:
    """The runs' database URL for SQLAlchemy with psycopg 3 (what Agno's PostgresDb and PgVector take)."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if state_url.startswith(prefix):
            return "postgresql+psycopg://" + state_url[len(prefix) :]
    return state_url


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_") or "x"


def content_of(output: Any) -> Any:
    content = getattr(output, "content", output)
    if content is None or isinstance(content, str | int | float | bool | list | dict):
        return content
    dump = getattr(content, "model_dump", None)
    return dump() if callable(dump) else str(content)


class TeamBuilder:
    """The Agno agents and teams of a spec, from its entry down, on the run's models and database."""

    def __init__(self, spec: WorkflowSpec, context: RunContext, read: Inputs, sink: Sink, failures: Failures) -> None:
        self.spec = spec
        self.context = context
        self.options = spec.options
        self.read = read
        self.sink = sink
        self.failures = failures
        self.nodes = {node.id: node for node in spec.nodes}
        self.endpoints: dict[str, ModelEndpoint] = {}
        self.engine: Any = None
        self._db: Any = None
        self.knowledge: dict[str, Any] = {}
        self.session_id = read.session_id or context.agent_id or context.workflow_id or context.execution_id

    # endpoints and the runs' database

    def endpoint(self, name: str | None) -> ModelEndpoint:
        wanted = name or self.options.get("model") or None
        endpoint = model_endpoint(self.context, wanted)
        self.endpoints.setdefault(endpoint.integration, endpoint)
        return endpoint

    def database_engine(self, needed_by: str) -> Any:
        if self.context.state_url is None:
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"{needed_by} needs the runs' database, and this worker has none: configure "
                "--OrchestratorApp.runs_database_admin_url (each organization's own, env "
                "ORCHESTRATOR_RUNS_DATABASE_ADMIN_URL) or --OrchestratorApp.runs_database_url (one for all, env "
                "ORCHESTRATOR_RUNS_DATABASE_URL), on a PostgreSQL server with pgvector",
            )
        if self.engine is None:
            from sqlalchemy import create_engine

            self.engine = create_engine(sqlalchemy_url(self.context.state_url), pool_pre_ping=True)
        return self.engine

    def db(self, node: Node) -> Any:
        engine = self.database_engine(f"the memory of the {node.type} '{node.id}'")
        if self._db is None:
            from agno.db.postgres import PostgresDb

            self._db = PostgresDb(db_engine=engine, db_schema=SCHEMA)
        return self._db

    # the pieces

    def plan(self, entry: str) -> list[str]:
        """The nodes the run uses: the entry, its members (depth first), their knowledge."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name in order:
                return
            order.append(name)
            node = self.nodes[name]
            if node.type == "team":
                for member in members_of(node):
                    visit(member)
            elif node.config.get("knowledge"):
                visit(str(node.config["knowledge"]))

        visit(entry)
        return order

    def table(self, node: Node) -> str:
        """The node's ``table``, else one of the workflow's named after its documents (changed ones: a new table)."""
        if node.config.get("table"):
            return str(node.config["table"])
        owner = self.context.workflow_id or self.context.agent_id or "default"
        documents = json.dumps(node.config.get("documents"), sort_keys=True, ensure_ascii=False)
        digest = hashlib.sha256(f"{owner}\n{node.id}\n{documents}".encode()).hexdigest()[:16]
        # PgVector names its indexes idx_<table>_content_hash: the table name stays under 46 characters
        return f"kb_{_slug(node.id)[:20]}_{digest}"

    def load_knowledge(self, node: Node, user_model: str | None) -> None:
        from agno.knowledge.knowledge import Knowledge
        from agno.vectordb.pgvector import PgVector

        engine = self.database_engine(f"the knowledge node '{node.id}'")
        config = node.config
        endpoint = self.endpoint(config.get("embedder_model") or user_model)
        dimensions = int(config["dimensions"]) if config.get("dimensions") else None
        try:
            embedder = agno_embedder(endpoint, self.failures, dimensions)
            vector_db = PgVector(table_name=self.table(node), schema=SCHEMA, db_engine=engine, embedder=embedder)
            knowledge = Knowledge(
                name=node.id, vector_db=vector_db, max_results=int(config.get("limit", DEFAULT_LIMIT))
            )
            for position, document in enumerate(config["documents"]):
                if isinstance(document, str):
                    name, content = f"{node.id}-{position}", document
                else:
                    name, content = str(document.get("name") or f"{node.id}-{position}"), str(document["content"])
                knowledge.insert(name=name, text_content=content, skip_if_exists=True)
        except RunError:
            raise
        except Exception as exc:
            raise self.failures.error() or failure(
                exc, [endpoint], f"the knowledge '{node.id}' could not load"
            ) from exc
        if (failed := self.failures.error()) is not None:
            raise failed
        self.knowledge[node.id] = knowledge

    def retriever(self, knowledge_id: str, agent_name: str) -> Callable[..., Any]:
        knowledge = self.knowledge[knowledge_id]
        limit = int(self.nodes[knowledge_id].config.get("limit", DEFAULT_LIMIT))
        sink = self.sink

        def look_up(query: str, num_documents: int | None = None, **_: Any) -> list[dict[str, Any]]:
            documents = knowledge.search(query=query, max_results=num_documents or limit)
            found = [{"name": doc.name, "content": doc.content} for doc in documents]
            sink.step(
                knowledge_id,
                "knowledge",
                {"query": query, "found": [doc["name"] for doc in found], "documents": found},
                agent=agent_name,
            )
            return [doc.to_dict() for doc in documents]

        return look_up

    def step_hook(self, node_id: str, node_type: str) -> Callable[..., None]:
        sink = self.sink

        def finished(run_output: Any, agent: Any = None, team: Any = None) -> None:
            who = agent if agent is not None else team
            sink.step(node_id, node_type, content_of(run_output), agent=getattr(who, "name", None))

        return finished

    def memory_settings(self, node: Node) -> dict[str, Any]:
        memory = node.config.get("memory")
        if not memory:
            return {}
        settings: dict[str, Any] = {
            "db": self.db(node),
            "session_id": self.session_id,
            "user_id": self.read.user_id,
            "add_history_to_context": True,
            "num_history_runs": int(self.options.get("history_runs", DEFAULT_HISTORY_RUNS)),
        }
        if memory is True:  # the user's memories: one more model call after each run decides what to keep
            settings.update(update_memory_on_run=True, add_memories_to_context=True)
        return settings

    def agent(self, node: Node) -> Any:
        from agno.agent import Agent

        config = node.config
        endpoint = self.endpoint(config.get("model"))
        tools = []
        for reference in config.get("tools", []):
            tool = load_tool(reference, self.context.files_root)
            tools.append(guarded_tool(getattr(tool, "__name__", reference), tool, self.failures))
        settings: dict[str, Any] = self.memory_settings(node)
        knowledge_id = config.get("knowledge")
        if knowledge_id:
            settings.update(
                knowledge=self.knowledge[knowledge_id],
                search_knowledge=False,
                add_knowledge_to_context=True,
                knowledge_retriever=self.retriever(knowledge_id, str(config["name"])),
            )
        return Agent(
            id=node.id,
            name=str(config["name"]),
            role=config.get("role") or None,
            instructions=config.get("instructions") or None,
            model=models.agno_model(endpoint, self.options, failures=self.failures),
            tools=tools or None,
            post_hooks=[self.step_hook(node.id, "agent")],
            markdown=False,
            telemetry=False,
            **settings,
        )

    def team(self, node: Node, members: list[Any]) -> Any:
        from agno.team import Team
        from agno.team.mode import TeamMode

        config = node.config
        mode = str(config.get("mode", "coordinate"))
        endpoint = self.endpoint(config.get("model"))
        broadcast = MODES[mode] == "broadcast"
        delegation = Delegation(
            member_ids=[member.id for member in members],
            force=bool(config.get("force_delegation", True)),
            limit=int(config.get("max_delegations", 1 if mode == "route" or broadcast else len(members))),
        )
        sink = self.sink
        name = str(config["name"])

        def delegating(function_name: str, function_call: Callable[..., Any], arguments: dict[str, Any]) -> Any:
            if function_name in DELEGATION_TOOLS:
                delegation.done += 1
                to = arguments.get("member_id") or "all members"
                sink.step(node.id, "team", {"delegated_to": to, "task": arguments.get("task")}, agent=name)
            return function_call(**arguments)

        return Team(
            id=node.id,
            name=name,
            members=members,
            mode=TeamMode(MODES[mode]),
            instructions=config.get("instructions") or None,
            model=models.agno_model(endpoint, self.options, failures=self.failures, delegation=delegation),
            tool_hooks=[delegating],
            post_hooks=[self.step_hook(node.id, "team")],
            markdown=False,
            telemetry=False,
            **self.memory_settings(node),
        )

    def build(self, entry: str) -> Any:
        """The entry's Agno Agent or Team, everything it uses built (knowledge loaded)."""
        plan = self.plan(entry)
        for name in plan:
            node = self.nodes[name]
            if node.type == "knowledge":
                users = [self.nodes[n] for n in plan if self.nodes[n].config.get("knowledge") == name]
                self.load_knowledge(node, users[0].config.get("model") if users else None)
        built: dict[str, Any] = {}
        for name in reversed(plan):
            node = self.nodes[name]
            if node.type == "agent":
                built[name] = self.agent(node)
            elif node.type == "team":
                built[name] = self.team(node, [built[member] for member in members_of(node)])
        return built[entry]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
