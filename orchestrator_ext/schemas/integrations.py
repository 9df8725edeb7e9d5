"""Integrations: connections to model servers, n8n instances and tools, with a write-only secret.

Each kind has its own ``config`` shape, checked when the integration is
created; the errors name the field at fault (``config.base_url``). The
secret (an API key) goes in ``secret``: it is encrypted at rest and no
response ever contains it, only ``has_secret``.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    SecretStr,
    StringConstraints,
)

from ..db.models import IntegrationKind
from .common import Name, PageQuery, RequestModel, ResponseModel, Timestamp, as_sent, stripped_text_schema

_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
#: an absolute http(s) URL with a host, an optional port in range, no credentials; the document says the same
HTTP_URL_PATTERN = rf"^https?://[A-Za-z0-9._~%!$&'()*+,;=-]+(?::{_PORT})?(?:[/?#][^\x00-\x20]*)?$"
_HTTP_URL = re.compile(HTTP_URL_PATTERN[1:-1])  # fullmatch: `$` would also match before a final newline


def _http_url(value: str) -> str:
    if "@" in urlsplit(value).netloc:
        raise ValueError("must not contain credentials: put the API key in 'secret'")
    if not _HTTP_URL.fullmatch(value):
        raise ValueError("must be an absolute http:// or https:// URL (a host, a port up to 65535)")
    return value


HttpUrlText = Annotated[
    str,
    as_sent(2048),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2048),
    AfterValidator(_http_url),
    Field(json_schema_extra={"pattern": HTTP_URL_PATTERN}),
]
ModelName = Annotated[str, as_sent(200), StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=10_000)]


class OpenAICompatibleConfig(BaseModel):
    """An OpenAI-compatible chat completions server (OpenAI, vLLM, Ollama, LM Studio...)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=stripped_text_schema)

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

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=stripped_text_schema)

    base_url: HttpUrlText = Field(description="The n8n instance, e.g. 'https://n8n.example.org'.")


class ToolConfig(BaseModel):
    """A tool: free-form settings (never secrets: those go in ``secret``)."""

    model_config = ConfigDict(extra="allow")

    description: Annotated[str, as_sent(5000), StringConstraints(max_length=5000)] | None = None


KEY_HELP_TEXT = "Write-only API key, encrypted at rest and never returned."


class _NewIntegration(RequestModel):
    org_id: uuid.UUID | None = Field(default=None, description="Defaults to the caller's personal organization.")
    name: Name
    secret: Secret | None = Field(
        default=None, description=f"{KEY_HELP_TEXT} Optional (a local model server or a tool may need none)."
    )


class NewOpenAICompatibleIntegration(_NewIntegration):
    """A model server that speaks the OpenAI chat completions API."""

    kind: Literal[IntegrationKind.OPENAI_COMPATIBLE]
    config: OpenAICompatibleConfig


class NewN8nIntegration(_NewIntegration):
    """An n8n instance; its API key is required."""

    kind: Literal[IntegrationKind.N8N]
    config: N8nConfig
    secret: Secret = Field(description=f"{KEY_HELP_TEXT} The n8n API key.")


class NewToolIntegration(_NewIntegration):
    """A tool with free-form settings."""

    kind: Literal[IntegrationKind.TOOL]
    config: ToolConfig = Field(default_factory=ToolConfig)


NewIntegration = Annotated[
    NewOpenAICompatibleIntegration | NewN8nIntegration | NewToolIntegration, Field(discriminator="kind")
]


class CreateIntegration(RootModel[NewIntegration]):
    """A new integration: ``kind`` says which ``config`` it has (a ``oneOf`` with a discriminator)."""

    #: validation errors are located without the union's tag: ``config.base_url``, not ``n8n.config.base_url``
    discriminator: ClassVar[str] = "kind"

    @property
    def org_id(self) -> uuid.UUID | None:
        return self.root.org_id

    @property
    def kind(self) -> IntegrationKind:
        return self.root.kind

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def config(self) -> dict[str, Any]:
        """The kind's settings as stored (only the fields given)."""
        return self.root.config.model_dump(mode="json", exclude_unset=True)

    @property
    def secret(self) -> SecretStr | None:
        return self.root.secret


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
