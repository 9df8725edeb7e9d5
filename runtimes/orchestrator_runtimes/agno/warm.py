"""A tiny team, run by a fork server's spare before its run comes, so that the run does not pay Agno's
first-call costs (lazy imports, tool schemas, the team's delegation functions built on first use) nor the
copy-on-write faults of the pages a run writes to.

The team is ours and fixed (never another run's code): a leader in ``route`` mode that hands the message to
its one member, both on a model answering in this process at once (no network, no key, no database). It goes
through the runtime itself (a code-first spec naming :func:`build`), so the runtime's path is warm too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .models import DELEGATION_TOOLS

ANSWER = "ready"
MEMBER = "warm-member"
SPEC = {"options": {"callable": "orchestrator_runtimes.agno.warm:build"}}
_TYPES: dict[str, type] = {}


def _model_type() -> type:
    """An Agno model: a call of the delegation tool when offered one it has not called yet, else
    :data:`ANSWER` (made on first use: Agno is imported then)."""
    if "model" not in _TYPES:
        from dataclasses import dataclass

        from agno.models.base import Model
        from agno.models.response import ModelResponse

        @dataclass
        class WarmUpModel(Model):
            id: str = "warm-up"
            name: str = "WarmUp"
            provider: str = "WarmUp"

            def _answer(self, messages: Any, tools: Any) -> ModelResponse:
                offered = [str((tool.get("function") or {}).get("name")) for tool in tools or []]
                delegation = next((name for name in offered if name in DELEGATION_TOOLS), None)
                answered = any(getattr(message, "role", None) == "tool" for message in messages or [])
                if delegation is not None and not answered:
                    arguments = json.dumps({"member_id": MEMBER, "task": ANSWER})
                    call = {
                        "id": "warm-up",
                        "type": "function",
                        "function": {"name": delegation, "arguments": arguments},
                    }
                    return ModelResponse(role="assistant", content="", tool_calls=[call])
                return ModelResponse(role="assistant", content=ANSWER)

            def invoke(self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any) -> ModelResponse:
                return self._answer(messages, tools)

            async def ainvoke(
                self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any
            ) -> ModelResponse:
                return self._answer(messages, tools)

            def invoke_stream(
                self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any
            ) -> Iterator[ModelResponse]:
                yield self._answer(messages, tools)

            async def ainvoke_stream(self, messages: Any = None, *args: Any, tools: Any = None, **kwargs: Any) -> Any:
                yield self._answer(messages, tools)

            def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
                return response  # type: ignore[no-any-return]

            def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
                return response  # type: ignore[no-any-return]

        _TYPES["model"] = WarmUpModel
    return _TYPES["model"]


def build() -> Any:
    """A team in ``route`` mode whose leader hands the message to its one member."""
    from agno.agent import Agent
    from agno.team import Team
    from agno.team.mode import TeamMode

    model = _model_type()
    member = Agent(id=MEMBER, name="Member", model=model(), markdown=False, telemetry=False)
    return Team(id="warm-up", name="Warm-up", members=[member], mode=TeamMode.route, model=model(), telemetry=False)
