"""Integrations: connections to model servers, n8n instances and tools, with a write-only secret.

Each kind has its own ``config`` shape, checked when the integration is
created; the errors name the field at fault (``config.base_url``). The
secret (an API key) goes in ``secret``: it is encrypted at rest and no
response ever contains it, only ``has_secret``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from ..db.models import IntegrationKind
from .common import Name, PageQuery, RequestModel, ResponseModel, Timestamp


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    _ = parts.port  # raises ValueError on a port that is not a number in range
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials: put the API key in 'secret'")
    return value


HttpUrlText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2048),
    AfterValidator(_http_url),
    Field(json_schema_extra={"format": "uri"}),
]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=10_000)]


class OpenAICompatibleConfig(BaseModel):
    """An OpenAI-compatible chat completions server (OpenAI, vLLM, Ollama, LM Studio...)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    base_url: HttpUrlText = Field(description="API root, e.g. 'http://localhost:11434/v1'.")
    model: ModelName = Field(description="Model name the server knows, e.g. 'llama3.1'.")
    modalities: list[Literal["text", "image", "file", "audio"]] = Field(
        default=["text"],
        min_length=1,
        max_length=4,
        description="What the model reads besides text; runs refuse image or file inputs it does not take.",
    )


class N8nConfig(BaseModel):
    """An n8n instance, reached through its REST API."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    base_url: HttpUrlText = Field(description="The n8n instance, e.g. 'https://n8n.example.org'.")


class ToolConfig(BaseModel):
    """A tool: free-form settings (never secrets: those go in ``secret``)."""

    model_config = ConfigDict(extra="allow")

    description: Annotated[str, StringConstraints(max_length=5000)] | None = None


CONFIG_MODELS: dict[IntegrationKind, type[BaseModel]] = {
    IntegrationKind.OPENAI_COMPATIBLE: OpenAICompatibleConfig,
    IntegrationKind.N8N: N8nConfig,
    IntegrationKind.TOOL: ToolConfig,
}
SECRET_REQUIRED: frozenset[IntegrationKind] = frozenset({IntegrationKind.N8N})


class CreateIntegration(RequestModel):
    org_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller's personal organization.")
    kind: IntegrationKind
    name: Name
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Depends on kind. openai-compatible: {base_url, model}; n8n: {base_url}; "
            "tool: {description?, ...any settings}."
        ),
    )
    secret: Secret | None = Field(
        default=None,
        validate_default=True,
        description=(
            "Write-only API key, encrypted at rest and never returned. Required for n8n; "
            "optional for openai-compatible (local servers need none) and tool."
        ),
    )

    @field_validator("config")
    @classmethod
    def _config_fits_kind(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid: that error is reported
            return value
        return CONFIG_MODELS[kind].model_validate(value).model_dump(mode="json", exclude_unset=True)

    @field_validator("secret")
    @classmethod
    def _secret_when_required(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        kind = info.data.get("kind")
        if value is None and kind in SECRET_REQUIRED:
            raise ValueError(f"required for {kind} integrations (the API key)")
        return value


class DescribeIntegration(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    kind: IntegrationKind
    name: str
    config: dict[str, Any]
    has_secret: bool = Field(description="Whether a secret is stored; the secret itself is never returned.")
    secret_key_id: str | None = Field(description="Id of the encryption key that sealed the secret.")
    created_by: uuid.UUID | None
    created_at: Timestamp
    updated_at: Timestamp


class ListIntegrationsQuery(PageQuery):
    org_id: uuid.UUID | None = Field(default=None, description="Default: every organization the caller reads.")
    kind: IntegrationKind | None = None


class ListIntegrationsResponse(ResponseModel):
    items: list[DescribeIntegration]
    next_cursor: str | None
