"""Shapes shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

#: a character that pydantic's ``str_strip_whitespace`` keeps (it strips Unicode White_Space)
NOT_BLANK = "[^\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"


def _not_blank(schema: Any) -> None:
    """A required text of a body is stripped before its length is checked, so "   " is too short: the
    document says so with a pattern (a character that is not stripped), where the text has no form of
    its own (pattern, enum, format)."""
    if isinstance(schema, list):
        for item in schema:
            _not_blank(item)
        return
    if not isinstance(schema, dict):
        return
    has_form = bool({"pattern", "enum", "format", "const"} & schema.keys())
    if schema.get("type") == "string" and schema.get("minLength", 0) >= 1 and not has_form:
        schema["pattern"] = NOT_BLANK
    for key in ("properties", "items", "anyOf", "oneOf", "allOf", "additionalProperties", "prefixItems"):
        value = schema.get(key)
        _not_blank(list(value.values()) if key == "properties" and isinstance(value, dict) else value)


def as_sent(limit: int) -> BeforeValidator:
    """Refuse a text longer than ``limit`` as it was sent: the document's ``maxLength`` counts the raw text,
    and stripping (``str_strip_whitespace``) comes before pydantic's own length check, so a text padded with
    spaces past the limit would be stored (the stateful fuzzer found it)."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            raise PydanticCustomError(
                "string_too_long", "String should have at most {max_length} characters", {"max_length": limit}
            )
        return value

    return BeforeValidator(check)


def stripped_text_schema(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of models that strip whitespace (``str_strip_whitespace``)."""
    _not_blank(schema)


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=stripped_text_schema)


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


class _OmitNullSchema:
    """The JSON schema of a field that may be left out but never null: its type without ``null``, no default."""

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            return {**branches[0], **rest}
        return schema


def omit_default(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` of a NotNull field: its ``default: null`` is not a value a client may send."""
    schema.pop("default", None)


#: a field of a partial update that may be left out but not set to null:
#: ``name: NotNull[Name] = Field(default=None, json_schema_extra=omit_default)``
NotNull = Annotated[T | None, BeforeValidator(_refuse_null), _OmitNullSchema()]


def _whole_number(value: object) -> object:
    """JSON has one number type: ``3.0`` is the integer 3 (JSON Schema says so too); ``3.5`` and ``"3"`` are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: an integer that refuses strings and booleans but takes ``3.0`` (what the schema's ``integer`` allows):
#: ``Annotated[int, Strict(), Field(ge=1, le=9), WHOLE_NUMBER]`` (the bounds before it, so the schema
#: shows them as ``minimum``/``maximum``)
WHOLE_NUMBER = BeforeValidator(_whole_number)


Name = Annotated[str, as_sent(200), StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Limit = Annotated[int, Field(ge=1, le=200, description="Page size (1-200).")]
#: a page cursor: 1-17 digits (microseconds since 1970, up to the year 5138) and 32 hex digits (the row id);
#: services/pagination.py reads every string of this form as a key a page can start after
CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9a-f]{32}$"
#: a cursor of a workflow's versions: the version number the page starts below
VERSION_CURSOR_PATTERN = r"^[1-9][0-9]{0,8}$"
Cursor = Annotated[
    str | None,
    Field(description="next_cursor of the previous page.", json_schema_extra={"pattern": CURSOR_PATTERN}),
]


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
