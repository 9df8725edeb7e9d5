"""An agno run: the Agent or Team (from the spec, or code first) runs in a thread; member runs,
delegations and knowledge lookups report steps as they happen; the end is the answer, or the failure
Agno swallowed into a run status, mapped into the error taxonomy."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..agents import build_code_first
from ..errors import ErrorKind, RunError
from ..framework import run_in_thread
from ..models import METER, ModelEndpoint, Usage
from . import models
from .build import content_of, sqlalchemy_url
from .models import DELEGATION_TOOLS, Failures, Sink, failure

if TYPE_CHECKING:
    from ..runtime import RunContext, RunEvent, RunResult
    from ..spec import WorkflowSpec
    from .inputs import Inputs


def code_first(
    spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext, failures: Failures
) -> tuple[Any, list[ModelEndpoint]]:
    """The Agent or Team a code-first spec's callable builds, and the endpoint handed to it (if any)."""
    from agno.agent import Agent
    from agno.team import Team

    def offered(endpoint: Callable[[], ModelEndpoint]) -> dict[str, Callable[[], Any]]:
        return {
            "model": lambda: models.agno_model(endpoint(), spec.options, failures=failures),
            "endpoint": endpoint,
            "inputs": lambda: dict(inputs),
            "db_url": lambda: sqlalchemy_url(context.state_url) if context.state_url else None,
        }

    return build_code_first(spec, context, offered, (Agent, Team), "an agno Agent or Team", failure)


def hook_code_first(built: Any, sink: Sink) -> None:
    """Report the steps of a code-first Agent or Team: each member's run, each delegation, the answer."""
    from agno.team import Team

    def finished(node_type: str) -> Callable[..., None]:
        def hook(run_output: Any, agent: Any = None, team: Any = None) -> None:
            who = agent if agent is not None else team
            node = str(getattr(who, "id", None) or getattr(who, "name", None) or node_type)
            sink.step(node, node_type, content_of(run_output), agent=getattr(who, "name", None))

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


def run_agno(
    runnable: Any,
    read: Inputs,
    session_id: str | None,
    sink: Sink,
    failures: Failures,
    endpoints: list[ModelEndpoint],
    start: Usage,
    context: RunContext,
) -> Iterator[RunEvent | RunResult]:
    """Run the Agent or Team on the message in a thread; its steps as they come, then its result."""
    settings: dict[str, Any] = {"stream": False, "user_id": read.user_id}
    if session_id is not None:
        settings["session_id"] = session_id
    if read.images:
        settings["images"] = read.images
    if read.files:
        settings["files"] = read.files
    yield from run_in_thread(
        lambda: runnable.run(read.message, **settings),
        sink.events,
        f"agno-{context.execution_id}",
        lambda output: _result(output, sink, failures, METER.snapshot() - start, read, session_id, runnable),
        lambda exc: failures.error() or failure(exc, endpoints),
    )


def _result(
    output: Any,
    sink: Sink,
    failures: Failures,
    metered: Usage,
    read: Inputs,
    session_id: str | None,
    runnable: Any,
) -> RunResult:
    failed = failures.error()
    if failed is not None:
        raise failed
    status = str(getattr(getattr(output, "status", None), "value", getattr(output, "status", "")) or "")
    content = content_of(output)
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
    counted = agno_usage(output)
    if metered.model_calls == 0 and counted.total_tokens > 0:
        # the agent used models of its own (code first): Agno's count is all there is
        extra["usage"] = counted.as_json()
    with sink.lock:
        return sink.tracker.result(content, **extra)


def agno_usage(output: Any) -> Usage:
    """The model calls and tokens of an Agno run output, its team members' included.

    A team's ``metrics`` hold only the leader's own calls (Agno adds members' in for its session totals
    only), and its ``details`` hold one entry per model, not per call: so calls are counted from the
    run's own assistant messages, and each member response is added, recursively.
    """
    metrics = getattr(output, "metrics", None)
    calls = sum(
        1
        for message in getattr(output, "messages", None) or []
        if getattr(message, "role", None) == "assistant" and not getattr(message, "from_history", False)
    )
    usage = Usage(
        calls,
        int(getattr(metrics, "input_tokens", 0) or 0),
        int(getattr(metrics, "output_tokens", 0) or 0),
    )
    for member in getattr(output, "member_responses", None) or []:
        inner = agno_usage(member)
        usage = Usage(
            usage.model_calls + inner.model_calls,
            usage.prompt_tokens + inner.prompt_tokens,
            usage.completion_tokens + inner.completion_tokens,
        )
    return usage
