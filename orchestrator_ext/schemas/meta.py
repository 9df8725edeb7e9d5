"""The API's own description: its entry point, and the models the server provides to runs."""

from __future__ import annotations

from pydantic import Field

from .common import ResponseModel


class DescribeCollection(ResponseModel):
    route: str = Field(description="The route under the API root, e.g. /agents.")
    href: str = Field(description="Its absolute path on this server.")
    methods: list[str] = Field(description="The HTTP methods it answers, e.g. GET and POST.")
    summary: str = Field(description="What its GET (or first method) does.")


class DescribeApiLinks(ResponseModel):
    index: str = Field(description="The Orchestrator's start page (HTML), with links for people.")
    docs: str = Field(description="The interactive API documentation (Swagger UI).")
    openapi: str = Field(description="The OpenAPI 3.1 document of this API.")
    metrics: str = Field(description="Prometheus metrics (needs a token or login unless authenticate_metrics is off).")
    health: str = Field(description="Health of the service and its database (no token needed).")


class DescribeApiRoot(ResponseModel):
    name: str = Field(description="Orchestrator API.")
    version: str = Field(description="The server's version.")
    links: DescribeApiLinks
    collections: list[DescribeCollection] = Field(
        description="Every route without a path parameter, from the route table this server serves."
    )


class DescribeServerModel(ResponseModel):
    name: str = Field(description="The integration name runs use for it (e.g. local-model).")
    kind: str = Field(description="The protocol: openai-compatible.")
    model: str = Field(description="The model name to send in requests.")
    base_url: str = Field(description="Its OpenAI-compatible base URL (…/v1), reachable from this machine.")


class ListServerModelsResponse(ResponseModel):
    items: list[DescribeServerModel] = Field(
        description="Models this server runs itself and gives runs of organizations that configured none."
    )
