"""Shapes shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StringConstraints


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class QueryModel(BaseModel):
    """Query-string parameters; unrelated ones (``token``, ``_xsrf``) are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def json_time(value: datetime) -> str:
    """RFC 3339 in UTC exactly as PostgreSQL writes a timestamptz in JSON (session time zone UTC):
    ``2026-11-25T20:30:56.04512+00:00``, trailing zeros of the fraction dropped.

    Every response uses this form, so a timestamp reads the same whether a page
    was written by PostgreSQL (the fast list path) or by pydantic.
    """
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = utc.replace(microsecond=0, tzinfo=None).isoformat()
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "+00:00"


#: a timestamp in a response
Timestamp = Annotated[datetime, PlainSerializer(json_time, return_type=str, when_used="json")]

#: where a membership comes from
MemberSource = Literal["api", "hub"]
SOURCE_HELP = (
    "'api': granted through the API; 'hub': given by a JupyterHub group org:<slug>[:<role>], "
    "so it follows the group and the API does not change it."
)


T = TypeVar("T")


def _refuse_null(value: object) -> object:
    if value is None:
        raise ValueError("may be omitted but not null")
    return value


#: a field of a partial update that may be left out but not set to null: ``name: NotNull[Name] = None``
NotNull = Annotated[T | None, BeforeValidator(_refuse_null)]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Limit = Annotated[int, Field(ge=1, le=200, description="Page size (1-200).")]
Cursor = Annotated[str | None, Field(max_length=512, description="next_cursor of the previous page.")]


class PageQuery(QueryModel):
    limit: Limit = 50
    cursor: Cursor = None


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted location of the field at fault, e.g. 'spec.nodes.0.id'.")
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)
    correlation_id: str | None = None
