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


def scripted_model_type() -> type:
    """An Agno model answering at once, in the calling thread: a call of the delegation tool (to its
    ``member_id``, with its ``task``) when offered one it has not called yet, else its ``answer``; each
    answer reports ``prompt_tokens`` and ``completion_tokens`` when they are set. Made on first use (Agno
    is imported then), once per process: ``bench/fake_agents.py`` scripts its team with it too."""
    if "model" not in _TYPES:
        from dataclasses import dataclass

        from agno.metrics import MessageMetrics
        from agno.models.base import Model
        from agno.models.response import ModelResponse

        @dataclass
        class ScriptedModel(Model):
            id: str = "warm-up"
            name: str = "WarmUp"
            provider: str = "WarmUp"
            answer: str = ANSWER
            member_id: str = MEMBER
            task: str = ANSWER
            prompt_tokens: int = 0
            completion_tokens: int = 0

            def _answer(self, messages: Any, tools: Any) -> ModelResponse:
                usage = None
                if self.prompt_tokens or self.completion_tokens:
                    total = self.prompt_tokens + self.completion_tokens
                    usage = MessageMetrics(
                        input_tokens=self.prompt_tokens, output_tokens=self.completion_tokens, total_tokens=total
                    )
                offered = [str((tool.get("function") or {}).get("name")) for tool in tools or []]
                delegation = next((name for name in offered if name in DELEGATION_TOOLS), None)
                answered = any(getattr(message, "role", None) == "tool" for message in messages or [])
                if delegation is not None and not answered:
                    arguments = json.dumps({"member_id": self.member_id, "task": self.task})
                    call = {
                        "id": "scripted",
                        "type": "function",
                        "function": {"name": delegation, "arguments": arguments},
                    }
                    return ModelResponse(role="assistant", content="", tool_calls=[call], response_usage=usage)
                return ModelResponse(role="assistant", content=self.answer, response_usage=usage)

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

        _TYPES["model"] = ScriptedModel
    return _TYPES["model"]


def build() -> Any:
    """A team in ``route`` mode whose leader hands the message to its one member."""
    from agno.agent import Agent
    from agno.team import Team
    from agno.team.mode import TeamMode

    model = scripted_model_type()
    member = Agent(id=MEMBER, name="Member", model=model(), markdown=False, telemetry=False)
    return Team(id="warm-up", name="Warm-up", members=[member], mode=TeamMode.route, model=model(), telemetry=False)
