"""Agno's pieces on the run's models: metered models, embedders and guarded tools, and what the run's
threads share (failures Agno would swallow, a team leader's delegations, the step sink)."""

from __future__ import annotations

import functools
import json
import queue
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorKind, RunError
from ..framework import endpoint_of
from ..models import ModelEndpoint, model_failure
from ..tracking import StepTracker
from .spec import DEFAULT_MAX_TOKENS

#: the tools through which a team's leader delegates
DELEGATION_TOOLS = ("delegate_task_to_member", "delegate_task_to_members")
#: a forced delegation gets at least this many tokens (its arguments must be whole JSON) ...
FORCED_MIN_TOKENS = 160
#: ... and a task this long at most
FORCED_TASK_CHARS = 120
FORCE_ATTEMPTS = 2
_DIMENSIONS: dict[tuple[str, str], int] = {}


class Shared:
    """State the models, tools and hooks of a run share: Agno deep-copies models, this survives it."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


@dataclass(eq=False)
class Failures(Shared):
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
class Delegation(Shared):
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
class Sink(Shared):
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
def model_class() -> type[Any]:
    """``OpenAILike`` that counts its calls (the endpoint's metered client), records its failures and lets a
    team's leader be made to delegate (see :class:`Delegation`)."""
    from agno.models.openai.like import OpenAILike

    class MeteredOpenAILike(OpenAILike):
        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            parent: Any = super()
            copied = parent.__deepcopy__(memo)
            copied.http_client = self.http_client  # Agno drops it: its copies would go unmetered
            return copied

        def get_request_params(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            delegation: Delegation | None = getattr(self, "orchestrator_delegation", None)
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
                repair_arguments(call)
            return response

        def _record(self, exc: BaseException) -> None:
            failures: Failures | None = getattr(self, "orchestrator_failures", None)
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


def repair_arguments(call: Any) -> None:
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
    failures: Failures | None = None,
    delegation: Delegation | None = None,
) -> Any:
    """An Agno model for ``endpoint`` whose calls and tokens :data:`METER` counts (no client retries)."""
    options = options or {}
    settings: dict[str, Any] = {"max_tokens": int(options.get("max_tokens", DEFAULT_MAX_TOKENS))}
    if options.get("temperature") is not None:
        settings["temperature"] = float(options["temperature"])
    model = model_class()(
        id=endpoint.model,
        base_url=endpoint.base_url,
        api_key=endpoint.key,
        http_client=endpoint.http_client(),
        max_retries=0,
        **settings,
    )
    model.orchestrator_endpoint = endpoint
    model.orchestrator_failures = failures or Failures()
    model.orchestrator_delegation = delegation
    return model


def pooled(vector: Any) -> list[float]:
    """One vector: servers that do not pool (llama.cpp without pooling) give one per token, averaged here."""
    if isinstance(vector, list) and vector and isinstance(vector[0], list):
        rows = [row for row in vector if isinstance(row, list) and row]
        width = len(rows[0])
        return [sum(float(row[i]) for row in rows) / len(rows) for i in range(width)]
    if isinstance(vector, list):
        return [float(value) for value in vector]
    raise TypeError(f"the embeddings endpoint answered {type(vector).__name__}, not a vector")


def agno_embedder(endpoint: ModelEndpoint, failures: Failures, dimensions: int | None = None) -> Any:
    """An Agno embedder on ``endpoint``'s ``/embeddings`` (metered); its ``dimensions`` asked of it when not given."""
    from agno.knowledge.embedder.base import Embedder

    client = endpoint.openai_client()

    def embed(text: str) -> tuple[list[float], dict[str, Any] | None]:
        try:
            reply = client.embeddings.create(model=endpoint.model, input=text)
            vector = pooled(reply.data[0].embedding)
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


def guarded_tool(name: str, tool: Callable[..., Any], failures: Failures) -> Callable[..., Any]:
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


def failure(exc: BaseException, endpoints: list[ModelEndpoint], what: str = "the Agno run failed") -> RunError:
    """The taxonomy's error for what Agno raised: model when it came from a model endpoint, else code."""
    model = model_failure(exc, endpoint_of(exc, endpoints))
    if model is not None:
        return model
    return RunError(
        ErrorKind.CODE,
        f"{what}: {type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
    )
