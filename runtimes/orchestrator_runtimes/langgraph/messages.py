"""LangGraph values as JSON: chat messages as ``{"role", "content", "tool_calls", ...}`` objects.

A code-first graph's state holds LangChain messages (``MessagesState``,
``create_react_agent``), pydantic models, dataclasses, ``Send`` and
``Command`` objects. The run's outputs and steps are JSON, so each becomes the
object a reader of chat APIs expects, never its ``str()``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

#: LangChain's message types -> the chat roles people know
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function"}


def message_json(message: Any) -> dict[str, Any]:
    """A LangChain message as ``{"role", "content", ...}`` (tool calls, tool call id, name, id when set)."""
    kind = str(getattr(message, "type", "")).removesuffix("MessageChunk").removesuffix("Chunk")
    found: dict[str, Any] = {
        "role": ROLES.get(kind, getattr(message, "role", None) or kind),
        "content": to_json(message.content),
    }
    calls = getattr(message, "tool_calls", None)
    if calls:
        found["tool_calls"] = [
            {"id": call.get("id"), "name": call.get("name"), "args": to_json(call.get("args") or {})} for call in calls
        ]
    for key in ("tool_call_id", "name", "id"):
        value = getattr(message, key, None)
        if value:
            found[key] = value
    if getattr(message, "status", None) == "error":
        found["status"] = "error"
    return found


def _is_message(value: Any) -> bool:
    try:
        from langchain_core.messages import BaseMessage
    except ImportError:  # pragma: no cover - langgraph depends on langchain-core
        return False
    return isinstance(value, BaseMessage)


def to_json(value: Any) -> Any:
    """``value`` as JSON values (messages, pydantic models, dataclasses, Send and Command included)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if _is_message(value):
        return message_json(value)
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    kind = type(value).__name__
    if kind == "Send":
        return {"send": value.node, "arg": to_json(value.arg)}
    if kind == "Interrupt":
        return to_json(getattr(value, "value", None))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return to_json(dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json({field.name: getattr(value, field.name) for field in dataclasses.fields(value)})
    return str(value)
