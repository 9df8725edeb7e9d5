"""Models for framework runs: the organization's OpenAI-compatible integrations, and what calls to them cost.

Every framework runtime reaches its model the same way: an integration of kind
``openai-compatible`` (``config.base_url``, ``config.model``, the API key as its
secret) that the worker hands to the run. :func:`model_endpoint` picks it (the
one a node or the spec's ``options.model`` names, else the organization's
default) and :meth:`ModelEndpoint.http_client` gives an ``httpx`` client that
counts every call and its tokens in :data:`METER`, whatever framework makes it.

:func:`model_failure` turns what a framework raised into the taxonomy's kind
``model`` when it came from the model endpoint (unreachable, refused, wrong
model name), so a user reads "the model server at ... is unreachable" rather
than a framework's traceback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .runtime import ErrorKind, RunContext, RunError
from .tracing import model_call

if TYPE_CHECKING:
    import httpx

MODEL_KIND = "openai-compatible"
#: an API key for servers that want none (the local model server): the OpenAI clients insist on one
NO_KEY = "not-needed"


@dataclass(frozen=True)
class Usage:
    """Model calls and tokens: a total, or what one step added."""

    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.model_calls - other.model_calls,
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
        )

    def as_json(self) -> dict[str, int]:
        return {
            "model_calls": self.model_calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


class UsageMeter:
    """The running total of one run's model calls (a runner process runs one job)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage = Usage()

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            u = self._usage
            self._usage = Usage(
                u.model_calls + 1, u.prompt_tokens + prompt_tokens, u.completion_tokens + completion_tokens
            )

    def snapshot(self) -> Usage:
        with self._lock:
            return self._usage


METER = UsageMeter()


def _count(body: bytes) -> None:
    """Count one completion from its response body (JSON, or the chunks of a stream)."""
    prompt = completion = 0
    text = body.decode("utf-8", "replace")
    documents = [text]
    if text.lstrip().startswith("data:"):
        documents = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    for document in documents:
        try:
            usage = json.loads(document).get("usage") or {}
        except (ValueError, AttributeError):
            continue
        prompt = int(usage.get("prompt_tokens") or usage.get("input_tokens") or prompt)
        completion = int(usage.get("completion_tokens") or usage.get("output_tokens") or completion)
    METER.add(prompt, completion)


def _is_model_call(path: str) -> bool:
    return path.endswith(("/chat/completions", "/completions", "/responses", "/embeddings"))


def http_library() -> Any:
    """The httpx flavour the installed ``openai`` package takes as ``http_client`` (``httpx2`` since openai 2.5x)."""
    import openai._base_client as base

    return getattr(base, "httpx2", None) or getattr(base, "httpx")  # noqa: B009 - not exported by name


def metered_transport() -> httpx.BaseTransport:
    httpx = http_library()

    class MeteredTransport(httpx.HTTPTransport):  # type: ignore[misc,name-defined]
        def handle_request(self, request: Any) -> Any:
            if not _is_model_call(request.url.path):
                return super().handle_request(request)
            with model_call(request) as call:  # a span with the tokens, when the run is traced
                response = super().handle_request(request)
                if response.status_code < 400:
                    body = response.read()
                    _count(body)
                    call.tokens(body)
            return response

    return MeteredTransport()


@dataclass(frozen=True)
class ModelEndpoint:
    """An OpenAI-compatible model, as one integration describes it."""

    integration: str
    base_url: str
    model: str
    api_key: str | None = None

    @property
    def key(self) -> str:
        return self.api_key or NO_KEY

    def http_client(self, timeout: float = 120.0) -> httpx.Client:
        """An httpx client (the flavour openai takes) that counts this run's model calls and tokens."""
        client: httpx.Client = http_library().Client(transport=metered_transport(), timeout=timeout)
        return client

    def openai_client(self, timeout: float = 120.0) -> Any:
        """An ``openai.OpenAI`` client for this endpoint, metered, with the frameworks' retries off."""
        import openai

        return openai.OpenAI(
            base_url=self.base_url,
            api_key=self.key,
            http_client=self.http_client(timeout),
            max_retries=0,
        )


def model_endpoint(context: RunContext, name: str | None = None) -> ModelEndpoint:
    """The model integration ``name`` names, or the run's default one; a configuration error when missing."""
    wanted = name or context.default_model
    models = {n: i for n, i in context.integrations.items() if i.get("kind") == MODEL_KIND}
    if wanted is None:
        raise RunError(
            ErrorKind.CONFIGURATION,
            "no model integration: add an integration of kind 'openai-compatible' to the organization "
            "(or run 'jupyter orchestrator model serve' for the local model) and name it in the spec's options.model",
        )
    found = models.get(wanted)
    if found is None:
        if wanted in context.integrations:
            kind = context.integrations[wanted].get("kind")
            message = f"the integration '{wanted}' is of kind '{kind}', not 'openai-compatible': it is no model"
        else:
            message = (
                f"no model integration named '{wanted}' in this organization (add one of kind 'openai-compatible')"
            )
        raise RunError(ErrorKind.CONFIGURATION, message, integration=wanted)
    return endpoint_from(wanted, found)


def endpoint_from(name: str, integration: Mapping[str, Any]) -> ModelEndpoint:
    config = integration.get("config") or {}
    return ModelEndpoint(
        integration=name,
        base_url=str(config.get("base_url", "")).rstrip("/"),
        model=str(config.get("model", "")),
        api_key=integration.get("secret") or None,
    )


_HTTP_MODULES = ("openai", "httpx", "httpcore", "httpx2", "httpcore2")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def model_failure(exc: BaseException, endpoint: ModelEndpoint | None) -> RunError | None:
    """A ``model`` RunError when ``exc`` (or what caused it) came from the model endpoint, else None."""
    where = (
        f"the model server at {endpoint.base_url} (integration '{endpoint.integration}')" if endpoint else "the model"
    )
    for cause in _chain(exc):
        module = type(cause).__module__.split(".")[0]
        name = type(cause).__name__
        if module in ("openai", "httpx", "httpcore", "httpx2", "httpcore2") or name in (
            "APIConnectionError",
            "APIStatusError",
        ):
            status = getattr(cause, "status_code", None)
            if name in ("APIConnectionError", "ConnectError", "ConnectTimeout") or "Connect" in name:
                return RunError(ErrorKind.MODEL, f"{where} is unreachable: {cause}", retryable=True)
            if name in ("APITimeoutError", "ReadTimeout", "TimeoutException"):
                return RunError(ErrorKind.MODEL, f"{where} did not answer in time: {cause}", retryable=True)
            if status in (401, 403):
                return RunError(ErrorKind.MODEL, f"{where} refused the API key ({status}): check the secret")
            if status == 404:
                model = endpoint.model if endpoint else "the model"
                return RunError(ErrorKind.MODEL, f"{where} has no model '{model}' or no such API path (404)")
            if status is not None:
                return RunError(
                    ErrorKind.MODEL, f"{where} answered {status}: {cause}", retryable=status >= 500 or status == 429
                )
            return RunError(ErrorKind.MODEL, f"{where} failed: {type(cause).__name__}: {cause}", retryable=True)
    return None


def usage_in(body: bytes) -> tuple[int, int] | None:
    """(prompt, completion) tokens of a completion's response body (JSON, or a stream's chunks), else None."""
    text = body.decode("utf-8", "replace")
    documents = [text]
    if text.lstrip().startswith("data:"):
        documents = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    found: tuple[int, int] | None = None
    for document in documents:
        try:
            usage = json.loads(document).get("usage")
        except (ValueError, AttributeError):
            continue
        if isinstance(usage, dict):
            found = (
                int(usage.get("prompt_tokens") or usage.get("input_tokens") or 0),
                int(usage.get("completion_tokens") or usage.get("output_tokens") or 0),
            )
    return found
