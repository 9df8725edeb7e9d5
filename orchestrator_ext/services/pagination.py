"""Keyset pagination over (created_at DESC, id DESC).

A cursor is opaque to clients: the last row's sort key, as microseconds since
1970 and the row id's hex digits (``1764412345123456.3f2a...``). Its form is a
regular expression the OpenAPI document gives (``CURSOR_PATTERN``): every
string of that form is a key a page can start after, and any other is a
validation error on the ``cursor`` field.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, TypeVarTuple

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from ..db.reads import dumps
from ..errors import FieldError, ValidationFailed
from ..schemas.common import CURSOR_PATTERN


class _Keyed(Protocol):
    created_at: datetime
    id: uuid.UUID


T = TypeVar("T")
#: cursors count microseconds from here
MIN_KEY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
Ts = TypeVarTuple("Ts")


_CURSOR = re.compile(CURSOR_PATTERN[1:-1])  # fullmatch: `$` would also match before a final newline
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return f"{(created_at - MIN_KEY_TIME) // _MICROSECOND}.{row_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) key a cursor stands for; anything else is a 422 on ``cursor``."""
    if not _CURSOR.fullmatch(cursor):
        raise ValidationFailed(
            "The cursor is not one this API returned.",
            errors=[FieldError("cursor", "invalid cursor: pass the next_cursor of a previous page", "cursor_invalid")],
        )
    micros, row_hex = cursor.split(".")
    return MIN_KEY_TIME + int(micros) * _MICROSECOND, uuid.UUID(hex=row_hex)


def _row_key(row: Any) -> tuple[datetime, uuid.UUID]:
    keyed: _Keyed = row
    return keyed.created_at, keyed.id


def paginate(
    stmt: Select[*Ts],
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    limit: int,
    cursor: str | None,
) -> Select[*Ts]:
    """Order newest first, start after ``cursor``, fetch one extra row to know if a next page exists."""
    if cursor is not None:  # an empty one is not a cursor the API returned: 422
        after_at, after_id = decode_cursor(cursor)
        stmt = stmt.where(tuple_(created_at, row_id) < tuple_(after_at, after_id))
    return stmt.order_by(created_at.desc(), row_id.desc()).limit(limit + 1)


def page_of(
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, uuid.UUID]] = _row_key
) -> tuple[list[T], str | None]:
    """Split the ``limit + 1`` fetched rows into the page and the next cursor.

    ``key`` gives a row's (created_at, id); by default the row's own attributes.
    """
    items = list(rows[:limit])
    if len(rows) > limit and items:
        return items, encode_cursor(*key(items[-1]))
    return items, None


@dataclass(frozen=True)
class JsonPage:
    """A page whose items PostgreSQL already wrote as JSON (see ``db.reads.as_json_page``)."""

    items_json: bytes
    next_cursor: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> JsonPage:
        """From the one row of ``as_json_page``: items, more, last_at, last_id."""
        cursor = encode_cursor(row["last_at"], row["last_id"]) if row["more"] else None
        return cls(row["items"], cursor)

    def to_json(self) -> bytes:
        return b'{"items":' + self.items_json + b',"next_cursor":' + dumps(self.next_cursor) + b"}"


def page_params(limit: int, cursor: str | None) -> dict[str, Any]:
    """Bound parameters of ``db.reads.as_json_page``: one row more than the page, the cursor's key."""
    return {"limit": limit + 1, "page_size": limit, "last_offset": limit - 1, **after_params(cursor)}


def after_params(cursor: str | None) -> dict[str, Any]:
    """Bound parameters of the keyset condition (empty for the first page)."""
    if cursor is None:
        return {}
    after_at, after_id = decode_cursor(cursor)
    return {"after_at": after_at, "after_id": after_id}
