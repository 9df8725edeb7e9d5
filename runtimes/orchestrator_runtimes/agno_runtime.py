"""The Agno runtime: an agent, or a team of agents, with memory and knowledge in PostgreSQL.

Entry point ``orchestrator.runtimes: agno``. A spec describes the agents with nodes:

- ``agent``: ``config`` = ``name`` (required), ``role``, ``instructions`` (a string or a list of strings),
  ``model`` (a model integration's name; else ``options.model``, else the organization's default), ``tools``
  (built-in tool names such as ``calculator``, or ``module:function`` references), ``memory`` (true: the
  conversation and the user's memories are kept in the runs' database, so a later run of the same agent
  remembers; ``"history"``: the conversation only, without the extra model call that picks what to remember
  about the user) and ``knowledge`` (the id of a ``knowledge`` node whose documents are looked up for each message);
- ``team``: ``config`` = ``name`` (required), ``members`` (ids of agent or team nodes, at least one),
  ``instructions``, ``model``, ``mode`` (``coordinate``: the leader delegates and writes the answer from what
  the members said, the default; ``route``: the leader hands the message to one member, whose answer is the
  team's; ``collaborate``: the leader gives the task to every member and sums up), ``memory``,
  ``max_delegations`` (how many times the leader may delegate) and ``force_delegation`` (default true: the
  leader's first answer is a delegation, so a team always puts its members to work);
- ``knowledge``: ``config`` = ``documents`` (required: strings, or ``{"name", "content"}``), ``table`` (the
  pgvector table; default from the workflow's id, the node's and its documents), ``embedder_model`` (the model
  integration that embeds; default the agent's), ``dimensions`` (the embeddings' size; default: asked of the
  embedder) and ``limit`` (documents found per lookup, 3);
- ``input`` and ``output`` nodes may be there for the editor; they are ignored.

The run starts at the entry: ``options.entry``, else the team that is no other team's member, else the only
agent. ``inputs``: ``message`` (or ``input``, ``prompt``), ``images`` (URLs or ``data:`` URIs; the model
integration must declare ``"modalities": ["text", "image"]`` in its config), ``files`` (text files as
``{"name", "content"}``, or URLs), ``session_id`` and ``user_id`` (whose memory; default the agent's id and
``default``).

``options``: ``model``, ``entry``, ``max_tokens`` (256) and ``temperature`` for every model call,
``history_runs`` (earlier runs a remembering agent reads, 3), and ``callable`` for code first: a
``module:function`` (or ``notebook.ipynb:function``) returning an ``agno.agent.Agent`` or ``agno.team.Team``,
called with those of ``model`` (an Agno model for the run's model integration, whose calls are counted),
``endpoint``, ``inputs`` and ``db_url`` (the runs' database, as a SQLAlchemy URL) it accepts.

Each member run, each delegation by a team's leader, each knowledge lookup and the leader's answer is a
``step`` event, reported as it happens (the run goes on in a thread).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import importlib
import inspect
import json
import os
import queue
import re
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .checks import nonempty, positive_int, temperature_problems, tool_list_problems
from .code import check_reference, load_callable
from .models import METER, ModelEndpoint, Usage, model_endpoint, model_failure
from .runtime import ErrorKind, RunContext, RunError, RunEvent, RunResult, RunWaiting, invalid_spec
from .tools import load_tool
from .tracking import StepTracker

if TYPE_CHECKING:
    from .spec import Node, SpecError, WorkflowSpec

NAME = "agno"
AGENT_KEYS = frozenset({"name", "role", "instructions", "model", "tools", "memory", "knowledge"})
TEAM_KEYS = frozenset(
    {"name", "members", "instructions", "model", "mode", "memory", "max_delegations", "force_delegation"}
)
KNOWLEDGE_KEYS = frozenset({"documents", "table", "embedder_model", "dimensions", "limit"})
OPTION_KEYS = frozenset({"model", "entry", "callable", "max_tokens", "temperature", "history_runs"})
#: a team's ``mode`` -> Agno's ``TeamMode``
MODES = {"coordinate": "coordinate", "route": "route", "collaborate": "broadcast", "broadcast": "broadcast"}
IGNORED_TYPES = frozenset({"input", "output"})
#: the keyword arguments a code-first callable may take
CALLABLE_ARGUMENTS = ("model", "endpoint", "inputs", "db_url")
MESSAGE_KEYS = ("message", "input", "prompt")
#: ``memory``: the conversation only, without the user's memories (and the model call that keeps them)
HISTORY_ONLY = "history"
DEFAULT_MAX_TOKENS = 256
DEFAULT_HISTORY_RUNS = 3
DEFAULT_LIMIT = 3
MAX_DOCUMENTS = 1000
#: Agno's tables (sessions, memories, knowledge) live in this schema of the runs' database
SCHEMA = "agno"
#: PgVector adds idx_..._content_hash (17 characters) to a table's name; PostgreSQL names stop at 63
TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,45}$")
#: the tools through which a team's leader delegates
DELEGATION_TOOLS = ("delegate_task_to_member", "delegate_task_to_members")
#: a forced delegation gets at least this many tokens (its arguments must be whole JSON) ...
FORCED_MIN_TOKENS = 160
#: ... and a task this long at most
FORCED_TASK_CHARS = 120
FORCE_ATTEMPTS = 2
#: how long the run's thread is given to end after the run's consumer went away
_JOIN_SECONDS = 1.0
_DIMENSIONS: dict[tuple[str, str], int] = {}
#: what a warm runner imports ahead of an agno job
PRELOADED = (
    "agno.agent",
    "agno.team",
    "agno.models.openai.like",
    "agno.db.postgres",
    "agno.knowledge.knowledge",
    "agno.vectordb.pgvector",
    "sqlalchemy",
)


# ---- validation ----------------------------------------------------------------------------


def _instructions_problem(value: Any) -> str | None:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value)):
        return None
    return "must be a string or a list of strings"


def _memory_problem(value: Any) -> str | None:
    if isinstance(value, bool) or value == HISTORY_ONLY:
        return None
    return f"must be true (history and the user's memories), '{HISTORY_ONLY}' (history only) or false"


def _option_problems(options: Mapping[str, Any], entries: Mapping[str, str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in sorted(set(options) - OPTION_KEYS):
        problems.append(
            (f"options.{key}", f"unknown option (the agno runtime knows: {', '.join(sorted(OPTION_KEYS))})")
        )
    if "model" in options and not nonempty(options["model"]):
        problems.append(("options.model", "must name a model integration (a non-empty string)"))
    if "max_tokens" in options and not positive_int(options["max_tokens"]):
        problems.append(("options.max_tokens", "must be a positive integer"))
    if "history_runs" in options and not positive_int(options["history_runs"], 100):
        problems.append(("options.history_runs", "must be an integer from 1 to 100"))
    problems.extend(temperature_problems(options))
    if "callable" in options:
        reference = options["callable"]
        problem = check_reference(reference) if isinstance(reference, str) else "must be a string"
        if problem:
            problems.append(("options.callable", f"{problem} (a function returning an agno Agent or Team)"))
    if "entry" in options and "callable" not in options:
        entry = options["entry"]
        if not isinstance(entry, str) or entry not in entries:
            known = ", ".join(sorted(entries)) or "none"
            problems.append(("options.entry", f"no agent or team node {entry!r} (agent and team nodes: {known})"))
    return problems


def _agent_problems(where: str, config: Mapping[str, Any], knowledge: set[str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in sorted(set(config) - AGENT_KEYS):
        problems.append((f"{where}.{key}", f"unknown agent setting (known: {', '.join(sorted(AGENT_KEYS))})"))
    if not nonempty(config.get("name")):
        problems.append((f"{where}.name", "an agent needs a name (a non-empty string)"))
    if "role" in config and not isinstance(config["role"], str):
        problems.append((f"{where}.role", "must be a string"))
    if "instructions" in config and (problem := _instructions_problem(config["instructions"])):
        problems.append((f"{where}.instructions", problem))
    if "model" in config and not nonempty(config["model"]):
        problems.append((f"{where}.model", "must name a model integration (a non-empty string)"))
    if "memory" in config and (problem := _memory_problem(config["memory"])):
        problems.append((f"{where}.memory", problem))
    if "knowledge" in config and (not isinstance(config["knowledge"], str) or config["knowledge"] not in knowledge):
        known = ", ".join(sorted(knowledge)) or "none"
        problems.append((f"{where}.knowledge", f"no knowledge node {config['knowledge']!r} (knowledge nodes: {known})"))
    problems.extend(tool_list_problems(where, config.get("tools", [])))
    return problems


def _team_problems(
    where: str, node_id: str, config: Mapping[str, Any], agents: set[str], teams: set[str]
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in sorted(set(config) - TEAM_KEYS):
        problems.append((f"{where}.{key}", f"unknown team setting (known: {', '.join(sorted(TEAM_KEYS))})"))
    if not nonempty(config.get("name")):
        problems.append((f"{where}.name", "a team needs a name (a non-empty string)"))
    members = config.get("members")
    if not isinstance(members, list) or not members:
        problems.append((f"{where}.members", "a team needs members: a list of agent node ids (at least one)"))
    else:
        known = ", ".join(sorted(agents | teams)) or "none"
        for position, member in enumerate(members):
            if member == node_id:
                problems.append((f"{where}.members.{position}", "a team cannot be its own member"))
            elif not isinstance(member, str) or member not in agents | teams:
                problems.append(
                    (f"{where}.members.{position}", f"no agent node {member!r} (agent and team nodes: {known})")
                )
        if len(set(map(str, members))) != len(members):
            problems.append((f"{where}.members", "a member is named twice"))
    if "instructions" in config and (problem := _instructions_problem(config["instructions"])):
        problems.append((f"{where}.instructions", problem))
    if "model" in config and not nonempty(config["model"]):
        problems.append((f"{where}.model", "must name a model integration (a non-empty string)"))
    if "mode" in config and config["mode"] not in MODES:
        problems.append((f"{where}.mode", "must be 'coordinate', 'route' or 'collaborate'"))
    if "memory" in config and (problem := _memory_problem(config["memory"])):
        problems.append((f"{where}.memory", problem))
    if "force_delegation" in config and not isinstance(config["force_delegation"], bool):
        problems.append((f"{where}.force_delegation", "must be true or false"))
    if "max_delegations" in config and not positive_int(config["max_delegations"], 100):
        problems.append((f"{where}.max_delegations", "must be an integer from 1 to 100"))
    return problems


def _document_problem(document: Any) -> str | None:
    if isinstance(document, str):
        return None if document.strip() else "an empty document"
    if isinstance(document, Mapping):
        extra = set(document) - {"name", "content"}
        if extra:
            return f"unknown document keys {sorted(extra)} (a document is a string or {{'name', 'content'}})"
        if not nonempty(document.get("content")):
            return "a document needs its content (a non-empty string)"
        if "name" in document and not nonempty(document["name"]):
            return "a document's name must be a non-empty string"
        return None
    return "must be a string or {'name', 'content'}"


def _knowledge_problems(where: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key in sorted(set(config) - KNOWLEDGE_KEYS):
        problems.append((f"{where}.{key}", f"unknown knowledge setting (known: {', '.join(sorted(KNOWLEDGE_KEYS))})"))
    documents = config.get("documents")
    if not isinstance(documents, list) or not documents:
        problems.append((f"{where}.documents", "knowledge needs documents: a list of strings or {'name', 'content'}"))
    elif len(documents) > MAX_DOCUMENTS:
        problems.append((f"{where}.documents", f"at most {MAX_DOCUMENTS} documents"))
    else:
        for position, document in enumerate(documents):
            if problem := _document_problem(document):
                problems.append((f"{where}.documents.{position}", problem))
    if "table" in config and (not isinstance(config["table"], str) or not TABLE.match(config["table"])):
        problems.append(
            (f"{where}.table", "must be a table name: a letter or '_', then letters, digits, '_' (46 at most)")
        )
    if "embedder_model" in config and not nonempty(config["embedder_model"]):
        problems.append((f"{where}.embedder_model", "must name a model integration (a non-empty string)"))
    if "dimensions" in config and not positive_int(config["dimensions"], 16_000):
        problems.append((f"{where}.dimensions", "must be an integer from 1 to 16000"))
    if "limit" in config and not positive_int(config["limit"], 100):
        problems.append((f"{where}.limit", "must be an integer from 1 to 100"))
    return problems


def _members(node: Node) -> list[str]:
    members = node.config.get("members")
    return [m for m in members if isinstance(m, str)] if isinstance(members, list) else []


def _cycle(teams: Mapping[str, list[str]]) -> str | None:
    """A team that is (through other teams) its own member, or None."""
    for start in teams:
        seen: set[str] = set()
        stack = list(teams[start])
        while stack:
            current = stack.pop()
            if current == start:
                return start
            if current in seen or current not in teams:
                continue
            seen.add(current)
            stack.extend(teams[current])
    return None


def find_entry(spec: WorkflowSpec) -> tuple[str | None, str | None]:
    """The node the run starts at, or why there is none: ``(node id, None)`` or ``(None, problem)``."""
    entry = spec.options.get("entry")
    if isinstance(entry, str):
        return entry, None
    teams = {node.id: _members(node) for node in spec.nodes if node.type == "team"}
    members = {member for names in teams.values() for member in names}
    top = [name for name in teams if name not in members]
    if len(top) == 1:
        return top[0], None
    if len(top) > 1:
        return (
            None,
            f"several teams are no other team's member ({', '.join(top)}): name the one to run in options.entry",
        )
    agents = [node.id for node in spec.nodes if node.type == "agent"]
    if len(agents) == 1:
        return agents[0], None
    if agents:
        return None, f"several agents and no team ({', '.join(agents)}): add a team or name one in options.entry"
    return None, "an agno workflow needs at least one 'agent' node (or options.callable for code first)"


def spec_problems(spec: WorkflowSpec) -> list[tuple[str, str]]:
    """(field, message) for each problem keeping ``spec`` from running on Agno; fields relative to the spec."""
    options = spec.options
    code_first = "callable" in options
    agents = {node.id for node in spec.nodes if node.type == "agent"}
    teams = {node.id for node in spec.nodes if node.type == "team"}
    knowledge = {node.id for node in spec.nodes if node.type == "knowledge"}
    problems = _option_problems(options, {name: "" for name in agents | teams})
    for index, node in enumerate(spec.nodes):
        kind = str(node.type)
        where = f"nodes.{index}.config"
        if kind in IGNORED_TYPES:
            continue
        if code_first:
            problems.append(
                (
                    f"nodes.{index}",
                    "a code-first workflow (options.callable) is built by its callable: it takes no nodes",
                )
            )
        elif kind == "agent":
            problems.extend(_agent_problems(where, node.config, knowledge))
        elif kind == "team":
            problems.extend(_team_problems(where, node.id, node.config, agents, teams))
        elif kind == "knowledge":
            problems.extend(_knowledge_problems(where, node.config))
        else:
            problems.append(
                (f"nodes.{index}.type", f"the agno runtime runs 'agent', 'team' and 'knowledge' nodes, not '{kind}'")
            )
    if code_first:
        return problems
    if not agents:
        problems.append(
            ("nodes", "an agno workflow needs at least one 'agent' node (or options.callable for code first)")
        )
        return problems
    cycle = _cycle({node.id: _members(node) for node in spec.nodes if node.type == "team"})
    if cycle is not None:
        index = next(i for i, node in enumerate(spec.nodes) if node.id == cycle)
        problems.append(
            (f"nodes.{index}.config.members", f"the team '{cycle}' is (through other teams) its own member")
        )
    elif "entry" not in options:
        _, problem = find_entry(spec)
        if problem:
            problems.append(("options.entry" if teams or len(agents) > 1 else "nodes", problem))
    return problems


# ---- what a run records from the threads Agno runs in ------------------------------------------


class _Shared:
    """State the models, tools and hooks of a run share: Agno deep-copies models, this survives it."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


@dataclass(eq=False)
class _Failures(_Shared):
    """What failed inside Agno (which swallows exceptions into a run status): the first of each kind."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    model: tuple[BaseException, ModelEndpoint] | None = None
    tool: tuple[str, BaseException] | None = None

    def model_failed(self, exc: BaseException, endpoint: ModelEndpoint) -> None:
        with self.lock:
            if self.model is None:
                self.model = (exc, endpoint)

    def tool_failed(self, name: str, exc: BaseException) -> None:
        with self.lock:
            if self.tool is None:
                self.tool = (name, exc)

    def error(self) -> RunError | None:
        """The run's error from what failed (a tool first: a model failing after it is its consequence)."""
        if self.tool is not None:
            name, exc = self.tool
            return RunError(
                ErrorKind.TOOL,
                f"the tool '{name}' failed: {type(exc).__name__}: {exc}",
                tool=name,
                traceback="".join(traceback.format_exception(exc)),
            )
        if self.model is not None:
            exc, endpoint = self.model
            return model_failure(exc, endpoint) or RunError(
                ErrorKind.MODEL,
                f"the model of the integration '{endpoint.integration}' failed: {type(exc).__name__}: {exc}",
                retryable=True,
            )
        return None


@dataclass(eq=False)
class _Delegation(_Shared):
    """A team leader's delegations: how many were made, and whether the next answer must be one."""

    member_ids: list[str]
    force: bool
    limit: int
    done: int = 0
    forced: int = 0

    def adjust(self, tools: list[dict[str, Any]], tool_choice: Any) -> tuple[list[dict[str, Any]], Any, bool]:
        """The tools (members' ids as an enum), the tool choice, and whether this call is a forced delegation."""
        names = [str((tool.get("function") or {}).get("name")) for tool in tools]
        delegation = next((name for name in DELEGATION_TOOLS if name in names), None)
        if delegation is None:
            return tools, tool_choice, False
        if self.done >= self.limit:
            return tools, "none", False
        forced = self.force and self.done == 0 and self.forced < FORCE_ATTEMPTS
        tools = json.loads(json.dumps(tools))  # Agno keeps its own copy unchanged
        for tool in tools:
            function = tool.get("function") or {}
            if function.get("name") not in DELEGATION_TOOLS:
                continue
            properties = (function.get("parameters") or {}).get("properties") or {}
            if "member_id" in properties and self.member_ids:
                properties["member_id"]["enum"] = list(self.member_ids)
            if forced and isinstance(properties.get("task"), dict):
                properties["task"]["maxLength"] = FORCED_TASK_CHARS
        if not forced:
            return tools, tool_choice, False
        self.forced += 1
        return tools, {"type": "function", "function": {"name": delegation}}, True


@dataclass(eq=False)
class _Sink(_Shared):
    """Where the run's hooks report its steps (from Agno's threads) for the run's generator to yield."""

    tracker: StepTracker
    events: queue.Queue[tuple[str, Any]]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step(self, node: str, node_type: str, output: Any, *, agent: str | None, **extra: Any) -> None:
        with self.lock:
            event = self.tracker.step(node, node_type, output, agent=agent, **extra)
        self.events.put(("step", event))


# ---- Agno objects: models, embedders, tools --------------------------------------------------


@functools.cache
def _model_class() -> type[Any]:
    """``OpenAILike`` that counts its calls (the endpoint's metered client), records its failures and lets a
    team's leader be made to delegate (see :class:`_Delegation`)."""
    from agno.models.openai.like import OpenAILike

    class MeteredOpenAILike(OpenAILike):
        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            parent: Any = super()
            copied = parent.__deepcopy__(memo)
            copied.http_client = self.http_client  # Agno drops it: its copies would go unmetered
            return copied

        def get_request_params(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            delegation: _Delegation | None = getattr(self, "orchestrator_delegation", None)
            forced = False
            if delegation is not None and kwargs.get("tools"):
                kwargs["tools"], kwargs["tool_choice"], forced = delegation.adjust(
                    kwargs["tools"], kwargs.get("tool_choice")
                )
            params: dict[str, Any] = super().get_request_params(*args, **kwargs)
            if forced:
                params["max_tokens"] = max(int(params.get("max_tokens") or 0), FORCED_MIN_TOKENS)
            return params

        def _parse_provider_response(self, *args: Any, **kwargs: Any) -> Any:
            response = super()._parse_provider_response(*args, **kwargs)
            for call in getattr(response, "tool_calls", None) or []:
                _repair_arguments(call)
            return response

        def _record(self, exc: BaseException) -> None:
            failures: _Failures | None = getattr(self, "orchestrator_failures", None)
            endpoint: ModelEndpoint | None = getattr(self, "orchestrator_endpoint", None)
            if failures is not None and endpoint is not None:
                failures.model_failed(exc, endpoint)

        def invoke(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().invoke(*args, **kwargs)
            except Exception as exc:
                self._record(exc)
                raise

        def invoke_stream(self, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from super().invoke_stream(*args, **kwargs)
            except Exception as exc:
                self._record(exc)
                raise

        async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().ainvoke(*args, **kwargs)
            except Exception as exc:
                self._record(exc)
                raise

    return MeteredOpenAILike


def _repair_arguments(call: Any) -> None:
    """A tool call's arguments as strict JSON, when a small model's are not quite: raw newlines in strings
    (which Agno rejects), or an object cut off at the token limit (closed here: the last string is cut short)."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(arguments := function.get("arguments"), str):
        return
    try:
        json.loads(arguments)
        return
    except ValueError:
        pass
    for ending in ("", '"}', "}"):
        try:
            repaired = json.loads(arguments.rstrip() + ending, strict=False)
        except ValueError:
            continue
        if isinstance(repaired, dict):
            function["arguments"] = json.dumps(repaired)
            return


def agno_model(
    endpoint: ModelEndpoint,
    options: Mapping[str, Any] | None = None,
    *,
    failures: _Failures | None = None,
    delegation: _Delegation | None = None,
) -> Any:
    """An Agno model for ``endpoint`` whose calls and tokens :data:`METER` counts (no client retries)."""
    options = options or {}
    settings: dict[str, Any] = {"max_tokens": int(options.get("max_tokens", DEFAULT_MAX_TOKENS))}
    if options.get("temperature") is not None:
        settings["temperature"] = float(options["temperature"])
    model = _model_class()(
        id=endpoint.model,
        base_url=endpoint.base_url,
        api_key=endpoint.key,
        http_client=endpoint.http_client(),
        max_retries=0,
        **settings,
    )
    model.orchestrator_endpoint = endpoint
    model.orchestrator_failures = failures or _Failures()
    model.orchestrator_delegation = delegation
    return model


def _pooled(vector: Any) -> list[float]:
    """One vector: servers that do not pool (llama.cpp without pooling) give one per token, averaged here."""
    if isinstance(vector, list) and vector and isinstance(vector[0], list):
        rows = [row for row in vector if isinstance(row, list) and row]
        width = len(rows[0])
        return [sum(float(row[i]) for row in rows) / len(rows) for i in range(width)]
    if isinstance(vector, list):
        return [float(value) for value in vector]
    raise TypeError(f"the embeddings endpoint answered {type(vector).__name__}, not a vector")


def agno_embedder(endpoint: ModelEndpoint, failures: _Failures, dimensions: int | None = None) -> Any:
    """An Agno embedder on ``endpoint``'s ``/embeddings`` (metered); its ``dimensions`` asked of it when not given."""
    from agno.knowledge.embedder.base import Embedder

    client = endpoint.openai_client()

    def embed(text: str) -> tuple[list[float], dict[str, Any] | None]:
        try:
            reply = client.embeddings.create(model=endpoint.model, input=text)
            vector = _pooled(reply.data[0].embedding)
        except Exception as exc:
            failures.model_failed(exc, endpoint)
            raise
        usage = reply.usage.model_dump() if getattr(reply, "usage", None) is not None else None
        return vector, usage

    class MeteredEmbedder(Embedder):
        def get_embedding(self, text: str) -> list[float]:
            return embed(text)[0]

        def get_embedding_and_usage(self, text: str) -> tuple[list[float], dict[str, Any] | None]:
            return embed(text)

        async def async_get_embedding(self, text: str) -> list[float]:
            return embed(text)[0]

        async def async_get_embedding_and_usage(self, text: str) -> tuple[list[float], dict[str, Any] | None]:
            return embed(text)

    if dimensions is None:
        key = (endpoint.base_url, endpoint.model)
        if key not in _DIMENSIONS:
            _DIMENSIONS[key] = len(embed("How many dimensions do your embeddings have?")[0])
        dimensions = _DIMENSIONS[key]
    return MeteredEmbedder(dimensions=dimensions)


def guarded_tool(name: str, tool: Callable[..., Any], failures: _Failures) -> Callable[..., Any]:
    """``tool``, stopping the agent and failing the run (kind ``tool``, naming it) when it raises."""
    from agno.exceptions import AgentRunException, StopAgentRun

    @functools.wraps(tool)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return tool(*args, **kwargs)
        except AgentRunException:
            raise
        except Exception as exc:
            failures.tool_failed(name, exc)
            raise StopAgentRun(f"the tool '{name}' failed: {type(exc).__name__}: {exc}") from exc

    return guarded


def sqlalchemy_url(state_url: str) -> str:
    """The runs' database URL for SQLAlchemy with psycopg 3 (what Agno's PostgresDb and PgVector take)."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://", "postgres://"):
        if state_url.startswith(prefix):
            return "postgresql+psycopg://" + state_url[len(prefix) :]
    return state_url


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_") or "x"


def _content(output: Any) -> Any:
    content = getattr(output, "content", output)
    if content is None or isinstance(content, str | int | float | bool | list | dict):
        return content
    dump = getattr(content, "model_dump", None)
    return dump() if callable(dump) else str(content)


# ---- inputs ----------------------------------------------------------------------------------


@dataclass
class _Inputs:
    message: str
    images: list[Any]
    files: list[Any]
    session_id: str | None
    user_id: str


def _data_uri(value: str, what: str) -> tuple[bytes, str]:
    match = re.match(r"^data:([\w.+-]+/[\w.+-]+)?(;[^,]*)?,(.*)$", value, re.DOTALL)
    if match is None:
        raise RunError(ErrorKind.INPUT, f"{what} is not a data: URI")
    mime = match[1] or "application/octet-stream"
    try:
        if ";base64" in (match[2] or ""):
            return base64.b64decode(match[3], validate=True), mime
        from urllib.parse import unquote_to_bytes

        return unquote_to_bytes(match[3]), mime
    except (binascii.Error, ValueError) as exc:
        raise RunError(ErrorKind.INPUT, f"{what} is not valid base64: {exc}") from exc


def _read_inputs(inputs: Mapping[str, Any], context: RunContext) -> _Inputs:
    message: Any = next((inputs[key] for key in MESSAGE_KEYS if inputs.get(key) not in (None, "")), None)
    if message is None:
        raise RunError(ErrorKind.INPUT, "no message: give the agent's message as inputs.message (a string)")
    if not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False, default=str)
    images: list[Any] = []
    raw_images = inputs.get("images") or []
    if not isinstance(raw_images, list):
        raise RunError(ErrorKind.INPUT, "inputs.images must be a list of image URLs or data: URIs")
    from agno.media import File, Image

    for position, image in enumerate(raw_images):
        what = f"inputs.images.{position}"
        if not isinstance(image, str):
            raise RunError(ErrorKind.INPUT, f"{what} must be an image URL or a data: URI")
        if image.startswith("data:"):
            content, mime = _data_uri(image, what)
            images.append(Image(content=content, mime_type=mime, format=mime.rsplit("/", 1)[-1]))
        elif image.startswith(("http://", "https://")):
            images.append(Image(url=image))
        else:
            raise RunError(ErrorKind.INPUT, f"{what} must be an http(s) URL or a data: URI")
    files: list[Any] = []
    raw_files = inputs.get("files") or []
    if not isinstance(raw_files, list):
        raise RunError(ErrorKind.INPUT, "inputs.files must be a list of files ({'name', 'content'} or URLs)")
    attached: list[str] = []
    for position, item in enumerate(raw_files):
        what = f"inputs.files.{position}"
        if isinstance(item, Mapping) and isinstance(item.get("content"), str):
            name = str(item.get("name") or f"file-{position}")
            attached.append(f'<file name="{name}">\n{item["content"]}\n</file>')
        elif isinstance(item, str) and item.startswith(("http://", "https://")):
            files.append(File(url=item))
        elif isinstance(item, str) and item.startswith("data:"):
            content, mime = _data_uri(item, what)
            files.append(File(content=content, mime_type=mime))
        else:
            raise RunError(ErrorKind.INPUT, f"{what} must be {{'name', 'content'}} (text), a URL or a data: URI")
    if attached:
        message = message + "\n\nAttached files:\n" + "\n".join(attached)
    session = inputs.get("session_id")
    user = inputs.get("user_id")
    return _Inputs(
        message=message,
        images=images,
        files=files,
        session_id=str(session) if session not in (None, "") else None,
        user_id=str(user) if user not in (None, "") else "default",
    )


def _modalities(context: RunContext, endpoint: ModelEndpoint) -> list[str]:
    config = (context.integrations.get(endpoint.integration) or {}).get("config") or {}
    modalities = config.get("modalities", ["text"])
    return [str(m) for m in modalities] if isinstance(modalities, list) else ["text"]


def _check_media(context: RunContext, endpoints: list[ModelEndpoint], read: _Inputs) -> None:
    for endpoint in endpoints:
        modalities = _modalities(context, endpoint)
        if read.images and "image" not in modalities:
            raise RunError(
                ErrorKind.INPUT,
                f"the model of the integration '{endpoint.integration}' ({endpoint.model}) takes text only, and "
                f"this run has {len(read.images)} image(s): use a model that reads images and declare it in the "
                'integration\'s config: "modalities": ["text", "image"]',
                integration=endpoint.integration,
            )
        if read.files and "file" not in modalities:
            raise RunError(
                ErrorKind.INPUT,
                f"the model of the integration '{endpoint.integration}' ({endpoint.model}) takes no files: give "
                'text files as {\'name\', \'content\'}, or declare "modalities": ["text", "file"] in the '
                "integration's config for a model that reads them",
                integration=endpoint.integration,
            )


# ---- building the agents from the spec --------------------------------------------------------


class _Builder:
    """The Agno agents and teams of a spec, from its entry down, on the run's models and database."""

    def __init__(
        self, spec: WorkflowSpec, context: RunContext, read: _Inputs, sink: _Sink, failures: _Failures
    ) -> None:
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
                "--OrchestratorApp.runs_database_url (env ORCHESTRATOR_RUNS_DATABASE_URL), a PostgreSQL "
                "database with the pgvector extension",
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
                for member in _members(node):
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
            raise self.failures.error() or _failure(
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
            sink.step(node_id, node_type, _content(run_output), agent=getattr(who, "name", None))

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
            model=agno_model(endpoint, self.options, failures=self.failures),
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
        delegation = _Delegation(
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
            model=agno_model(endpoint, self.options, failures=self.failures, delegation=delegation),
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
                built[name] = self.team(node, [built[member] for member in _members(node)])
        return built[entry]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


# ---- failures ----------------------------------------------------------------------------------


def _failure(exc: BaseException, endpoints: list[ModelEndpoint], what: str = "the Agno run failed") -> RunError:
    """The taxonomy's error for what Agno raised: model when it came from a model endpoint, else code."""
    endpoint = None
    for cause in _causes(exc):
        url = _request_url(cause)
        endpoint = next((e for e in endpoints if url and url.startswith(e.base_url)), None)
        if endpoint is not None:
            break
    model = model_failure(exc, endpoint or (endpoints[0] if endpoints else None))
    if model is not None:
        return model
    return RunError(
        ErrorKind.CODE,
        f"{what}: {type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
    )


def _causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 20:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _request_url(exc: BaseException) -> str:
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - httpx raises RuntimeError when an error has no request
        return ""


# ---- code first --------------------------------------------------------------------------------


def _code_first(
    spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext, failures: _Failures
) -> tuple[Any, list[ModelEndpoint]]:
    """The Agent or Team a code-first spec's callable builds, and the endpoint handed to it (if any)."""
    from agno.agent import Agent
    from agno.team import Team

    reference = str(spec.options["callable"])
    build = load_callable(reference, context.files_root)
    try:
        parameters = dict(inspect.signature(build).parameters)
    except (TypeError, ValueError):
        parameters = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    wanted = [name for name in CALLABLE_ARGUMENTS if takes_any or name in parameters]
    endpoints: list[ModelEndpoint] = []
    arguments: dict[str, Any] = {}
    if "model" in wanted or "endpoint" in wanted:
        endpoint = model_endpoint(context, spec.options.get("model") or None)
        endpoints.append(endpoint)
        if "model" in wanted:
            arguments["model"] = agno_model(endpoint, spec.options, failures=failures)
        if "endpoint" in wanted:
            arguments["endpoint"] = endpoint
    if "inputs" in wanted:
        arguments["inputs"] = dict(inputs)
    if "db_url" in wanted:
        arguments["db_url"] = sqlalchemy_url(context.state_url) if context.state_url else None
    try:
        built = build(**arguments)
    except RunError:
        raise
    except Exception as exc:
        raise _failure(exc, endpoints, f"the callable '{reference}' raised") from exc
    if not isinstance(built, Agent | Team):
        raise RunError(
            ErrorKind.CONFIGURATION,
            f"the callable '{reference}' returned {type(built).__name__}, not an agno Agent or Team",
            callable=reference,
        )
    return built, endpoints


def _hook_code_first(built: Any, sink: _Sink) -> None:
    """Report the steps of a code-first Agent or Team: each member's run, each delegation, the answer."""
    from agno.team import Team

    def finished(node_type: str) -> Callable[..., None]:
        def hook(run_output: Any, agent: Any = None, team: Any = None) -> None:
            who = agent if agent is not None else team
            node = str(getattr(who, "id", None) or getattr(who, "name", None) or node_type)
            sink.step(node, node_type, _content(run_output), agent=getattr(who, "name", None))

        return hook

    def attach(member: Any) -> None:
        is_team = isinstance(member, Team)
        member.post_hooks = [*(member.post_hooks or []), finished("team" if is_team else "agent")]
        if is_team:
            node = str(member.id or member.name or "team")

            def delegating(function_name: str, function_call: Callable[..., Any], arguments: dict[str, Any]) -> Any:
                if function_name in DELEGATION_TOOLS:
                    to = arguments.get("member_id") or "all members"
                    sink.step(node, "team", {"delegated_to": to, "task": arguments.get("task")}, agent=member.name)
                return function_call(**arguments)

            member.tool_hooks = [*(member.tool_hooks or []), delegating]
            for inner in member.members if isinstance(member.members, list) else []:
                attach(inner)

    attach(built)


# ---- the runtime -------------------------------------------------------------------------------


class AgnoRuntime:
    """Runs agno workflows: an agent or a team from the spec's nodes, or one built by the spec's callable."""

    name = NAME
    capabilities: Mapping[str, bool] = {
        "streaming": True,
        "multi_agent": True,
        "tools": True,
        "checkpoints": False,
        "human_in_the_loop": False,
        "multi_modal": True,
        "gpu": False,
        "memory": True,
        "knowledge": True,
    }

    def preload(self) -> None:
        """Import Agno and the parts a run uses (a warm runner does this before its job).

        Telemetry is off first. Nothing here starts a thread, opens a connection or writes a file, so the
        warm process can fork.
        """
        os.environ.setdefault("AGNO_TELEMETRY", "false")
        for module in PRELOADED:
            importlib.import_module(module)
        _model_class()

    def validate(self, spec: WorkflowSpec) -> list[SpecError]:
        """What keeps ``spec`` from running on Agno (fields relative to the spec, ``nodes.1.config.members.0``)."""
        from .spec import SpecError

        return [SpecError(where, message) for where, message in spec_problems(spec)]

    def run(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        problems = spec_problems(spec)
        if problems:
            raise invalid_spec(problems, "the agno workflow's spec")
        try:
            import agno  # noqa: F401
        except ImportError as exc:
            raise RunError(
                ErrorKind.CONFIGURATION,
                f"Agno is not installed on this worker ({exc}): pip install 'orchestrator[agno]'",
            ) from exc
        read = _read_inputs(inputs, context)
        tracker = StepTracker(NAME)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        sink = _Sink(tracker=tracker, events=events)
        failures = _Failures()
        builder: _Builder | None = None
        start = METER.snapshot()
        try:
            if "callable" in spec.options:
                runnable, endpoints = _code_first(spec, inputs, context, failures)
                _check_media(context, endpoints, read)
                _hook_code_first(runnable, sink)
                session_id = read.session_id
            else:
                entry, _ = find_entry(spec)
                if entry is None:  # pragma: no cover - spec_problems reports it
                    raise RunError(ErrorKind.CONFIGURATION, "the workflow has no entry")
                builder = _Builder(spec, context, read, sink, failures)
                for name in builder.plan(entry):  # the models first: a missing one is a configuration error
                    node = builder.nodes[name]
                    if node.type in ("agent", "team"):
                        builder.endpoint(node.config.get("model"))
                _check_media(context, list(builder.endpoints.values()), read)
                tracker.begin()
                try:
                    runnable = builder.build(entry)
                except RunError:
                    raise
                except Exception as exc:
                    raise _failure(exc, list(builder.endpoints.values()), "Agno could not build the agents") from exc
                endpoints = list(builder.endpoints.values())
                session_id = builder.session_id
            tracker.begin()
            yield from self._go(runnable, read, session_id, sink, failures, endpoints, start, context)
        finally:
            if builder is not None:
                builder.close()

    @staticmethod
    def _go(
        runnable: Any,
        read: _Inputs,
        session_id: str | None,
        sink: _Sink,
        failures: _Failures,
        endpoints: list[ModelEndpoint],
        start: Usage,
        context: RunContext,
    ) -> Iterator[RunEvent | RunResult]:
        settings: dict[str, Any] = {"stream": False, "user_id": read.user_id}
        if session_id is not None:
            settings["session_id"] = session_id
        if read.images:
            settings["images"] = read.images
        if read.files:
            settings["files"] = read.files

        def go() -> None:
            try:
                sink.events.put(("done", runnable.run(read.message, **settings)))
            except BaseException as exc:  # noqa: BLE001 - handed to the run's thread, which maps it
                sink.events.put(("error", exc))

        thread = threading.Thread(target=go, name=f"agno-{context.execution_id}", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = sink.events.get()
                if kind == "step":
                    yield value
                elif kind == "error":
                    if isinstance(value, RunError):
                        raise value
                    raise failures.error() or _failure(value, endpoints) from value
                else:
                    yield _result(value, sink, failures, METER.snapshot() - start, read, session_id, runnable)
                    return
        finally:
            thread.join(timeout=_JOIN_SECONDS)


def _result(
    output: Any,
    sink: _Sink,
    failures: _Failures,
    metered: Usage,
    read: _Inputs,
    session_id: str | None,
    runnable: Any,
) -> RunResult:
    failed = failures.error()
    if failed is not None:
        raise failed
    status = str(getattr(getattr(output, "status", None), "value", getattr(output, "status", "")) or "")
    content = _content(output)
    if status == "error":
        raise RunError(ErrorKind.CODE, f"the Agno run failed: {content}")
    extra: dict[str, Any] = {}
    if getattr(runnable, "db", None) is not None:
        history = sum(
            1 for message in getattr(output, "messages", None) or [] if getattr(message, "from_history", False)
        )
        extra["memory"] = {
            "session_id": getattr(output, "session_id", None) or session_id,
            "user_id": read.user_id,
            "history_messages": history,
        }
    metrics = getattr(output, "metrics", None)
    if metered.model_calls == 0 and metrics is not None and int(getattr(metrics, "total_tokens", 0) or 0) > 0:
        # the agent used models of its own (code first): Agno's count is all there is
        details = getattr(metrics, "details", None) or {}
        calls = sum(len(entries) for entries in details.values() if isinstance(entries, list)) or 1
        extra["usage"] = Usage(calls, int(metrics.input_tokens or 0), int(metrics.output_tokens or 0)).as_json()
    with sink.lock:
        return sink.tracker.result(content, **extra)
