"""The LangGraph kernel's chat model: LangChain's chat model interface on an OpenAI-compatible client.

LangGraph itself has no model classes; graphs call LangChain chat models
(``model.invoke(messages)`` → ``AIMessage``, ``bind_tools`` for tool-calling
agents such as ``langgraph.prebuilt.create_react_agent``). ``langchain-core`` comes
with LangGraph, ``langchain-openai`` does not, so this is that interface on the
``openai`` client the runtimes already use, metered the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field


def _arguments(text: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(text or "{}")
    except ValueError:
        return {"input": text}
    return parsed if isinstance(parsed, dict) else {"input": parsed}


class OrchestratorChatModel(BaseChatModel):
    """A chat model on an OpenAI-compatible server (``client`` is an ``openai.OpenAI``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: Any = Field(exclude=True, repr=False)
    model_name: str
    max_tokens: int | None = None
    temperature: float | None = None

    @property
    def _llm_type(self) -> str:
        return "orchestrator-openai-compatible"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "base_url": str(getattr(self.client, "base_url", ""))}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params: dict[str, Any] = {"model": self.model_name, "messages": convert_to_openai_messages(messages)}
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if stop:
            params["stop"] = stop
        params.update(kwargs)
        response = self.client.chat.completions.create(**params)
        reply = response.choices[0].message
        calls = [
            {"name": c.function.name, "args": _arguments(c.function.arguments), "id": c.id, "type": "tool_call"}
            for c in reply.tool_calls or []
        ]
        usage = response.usage
        message = AIMessage(
            content=reply.content or "",
            tool_calls=calls,
            response_metadata={"model_name": response.model, "finish_reason": response.choices[0].finish_reason},
            usage_metadata=(
                {
                    "input_tokens": usage.prompt_tokens,
                    "output_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                }
                if usage is not None
                else None
            ),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """The model with tools offered to it (OpenAI's tool format), as LangGraph's prebuilt agents ask."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = (
                tool_choice
                if tool_choice in ("auto", "none", "required")
                else {"type": "function", "function": {"name": tool_choice}}
            )
        return self.bind(tools=formatted, **kwargs)
