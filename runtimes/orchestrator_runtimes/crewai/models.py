"""CrewAI's model: a ``crewai.LLM`` on the run's endpoint, its calls and tokens counted in :data:`METER`.

CrewAI calls models through its own HTTP client; a transport interceptor
(:func:`meter_interceptor`) counts each answer's tokens (:func:`..models.usage_in`)
and fixes request bodies some OpenAI-compatible servers refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..models import METER, usage_in

if TYPE_CHECKING:
    from ..models import ModelEndpoint


def compatible_body(body: bytes) -> bytes | None:
    """``body`` with ``null`` assistant contents made ``""``, or None when it needs no change.

    CrewAI sends an assistant turn that called tools with ``"content": null`` (as OpenAI allows); some
    OpenAI-compatible servers (llama-cpp-python's) refuse that with a 500, which would end every crew whose
    agents use tools or delegate.
    """
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    messages = payload.get("messages") if isinstance(payload, dict) else None
    if not isinstance(messages, list):
        return None
    changed = False
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "assistant" and message.get("content") is None:
            message["content"] = ""
            changed = True
    return json.dumps(payload).encode() if changed else None


def meter_interceptor() -> Any:
    """A CrewAI transport interceptor: counts each model call and its tokens in :data:`METER`, and fixes bodies.

    The client it hooks only calls the model (chat completions), so every answer that is no error counts.
    """
    import httpx
    from crewai.llms.hooks.base import BaseInterceptor

    def outbound(request: httpx.Request) -> httpx.Request:
        if request.method != "POST":
            return request
        body = compatible_body(request.read())
        if body is None:
            return request
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        return httpx.Request(request.method, request.url, headers=headers, content=body, extensions=request.extensions)

    class Meter(BaseInterceptor[httpx.Request, httpx.Response]):
        def on_outbound(self, message: httpx.Request) -> httpx.Request:
            return outbound(message)

        def on_inbound(self, message: httpx.Response) -> httpx.Response:
            if message.status_code < 400:
                METER.add(*(usage_in(message.read()) or (0, 0)))
            return message

        async def aon_outbound(self, message: httpx.Request) -> httpx.Request:
            return outbound(message)

        async def aon_inbound(self, message: httpx.Response) -> httpx.Response:
            if message.status_code < 400:
                METER.add(*(usage_in(await message.aread()) or (0, 0)))
            return message

    return Meter()


def crewai_llm(endpoint: ModelEndpoint, options: Mapping[str, Any] | None = None) -> Any:
    """A ``crewai.LLM`` for ``endpoint`` whose calls and tokens :data:`METER` counts (no client retries)."""
    from crewai import LLM

    settings: dict[str, Any] = {}
    for key in ("max_tokens", "temperature"):
        if (options or {}).get(key) is not None:
            settings[key] = (options or {})[key]
    return LLM(
        model=f"openai/{endpoint.model}",
        base_url=endpoint.base_url,
        api_key=endpoint.key,
        max_retries=0,
        interceptor=meter_interceptor(),
        **settings,
    )
