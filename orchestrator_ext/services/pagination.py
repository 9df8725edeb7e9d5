"""Keyset pagination over (created_at DESC, id DESC).

A cursor is opaque to clients: base64url of the last row's sort key. A cursor
that does not decode is a validation error on the ``cursor`` field.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, TypeVarTuple

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from ..db.reads import dumps
from ..errors import FieldError, ValidationFailed


class _Keyed(Protocol):
    created_at: datetime
    id: uuid.UUID


T = TypeVar("T")
# rows are created now-ish: a cursor time far outside this range was not issued by the API
MIN_KEY_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_KEY_TIME = datetime(9000, 1, 1, tzinfo=UTC)
Ts = TypeVarTuple("Ts")


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    # the JSON json.dumps would write (isoformat and a UUID need no escaping), without its cost
    raw = f'{{"c":"{created_at.isoformat()}","i":"{row_id}"}}'
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) key a cursor stands for; anything else is a 422 on ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created_at = datetime.fromisoformat(data["c"])
        row_id = uuid.UUID(data["i"])
        if created_at.tzinfo is None or not MIN_KEY_TIME <= created_at <= MAX_KEY_TIME:
            raise ValueError("cursor time out of range")
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise ValidationFailed(
            "The cursor is not one this API returned.",
            errors=[FieldError("cursor", "invalid cursor: pass the next_cursor of a previous page", "cursor_invalid")],
        ) from exc
    return created_at, row_id


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
    if cursor:
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
    if not cursor:
        return {}
    after_at, after_id = decode_cursor(cursor)
    return {"after_at": after_at, "after_id": after_id}
