"""One cursor codec for every list endpoint: keyset pages with an opaque ``next_cursor``.

A cursor holds the sort key of the last row a page showed. It is versioned, URL-safe, and bound to
the list (and query) that issued it by a digest, so a cursor of another list, another query or a
mangled one is refused (422 at ``/query/cursor``) instead of silently paging something else. The
values it carries only position the caller inside rows they may see anyway; it grants nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from packages.core.errors import FieldError, ValidationFailed

CURSOR_VERSION = 1
CursorValue = str | int | bool | datetime | uuid.UUID
CursorType = type[str] | type[int] | type[bool] | type[datetime] | type[uuid.UUID]


def invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not valid for this query; pass next_cursor from a previous page unchanged, or "
        "start again without it.",
        errors=[FieldError("invalid_cursor", "/query/cursor", "not a cursor of this query")],
    )


def _digest(scope: str, payload: bytes) -> str:
    mac = hashlib.blake2b(scope.encode("utf-8") + b"\0" + payload, digest_size=8, person=b"minsy-cursor")
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


def _plain(value: CursorValue) -> str | int | bool:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _typed(value: Any, kind: CursorType) -> CursorValue:
    if kind is datetime and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("cursor times carry their offset")
        return parsed
    if kind is uuid.UUID and isinstance(value, str):
        return uuid.UUID(value)
    # bool is an int in Python: only an exact type match counts.
    if type(value) is kind and kind in (str, int, bool):
        return cast(CursorValue, value)
    raise ValueError(f"expected {kind.__name__}")


def encode_cursor(scope: str, values: Sequence[CursorValue]) -> str:
    """The cursor after a row whose sort key is ``values``, valid only for ``scope``."""
    payload = json.dumps([CURSOR_VERSION, [_plain(v) for v in values]], separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode("ascii").rstrip("=")
    return f"{body}.{_digest(scope, payload)}"


def decode_cursor(scope: str, cursor: str, types: Sequence[CursorType]) -> tuple[CursorValue, ...]:
    """The sort key a cursor of ``scope`` holds; ``ValidationFailed`` (422) for any other text."""
    try:
        body, _, digest = cursor.partition(".")
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not digest or digest != _digest(scope, payload):
            raise ValueError("not issued for this list")
        version, values = json.loads(payload)
        if version != CURSOR_VERSION or not isinstance(values, list) or len(values) != len(types):
            raise ValueError("unknown layout")
        return tuple(_typed(value, kind) for value, kind in zip(values, types, strict=True))
    except (binascii.Error, ValueError, TypeError, UnicodeError) as exc:
        raise invalid_cursor() from exc


@dataclass(frozen=True)
class Keyset[RowT]:
    """A list's order (every column ascending, or every one descending, ending in a unique column)
    and how to read a row's sort key, so pages continue exactly after the last row shown."""

    scope: str
    columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]]
    types: Sequence[CursorType]
    key_of: Callable[[RowT], Sequence[CursorValue]]
    descending: bool = True

    def apply[*Columns](self, query: Select[*Columns], *, cursor: str | None, limit: int) -> Select[*Columns]:
        """``query`` ordered, starting after ``cursor``, one row longer than a page (to see if more follow)."""
        if cursor:
            after = tuple_(*self.columns), tuple_(*decode_cursor(self.scope, cursor, self.types))
            query = query.where(after[0] < after[1] if self.descending else after[0] > after[1])
        order = [column.desc() if self.descending else column.asc() for column in self.columns]
        return query.order_by(*order).limit(limit + 1)

    def page(self, rows: Sequence[RowT], limit: int) -> Page[RowT]:
        """The first ``limit`` rows and the cursor after them (None when no row follows)."""
        shown = list(rows[:limit])
        more = len(rows) > limit and shown
        return Page(shown, encode_cursor(self.scope, self.key_of(shown[-1])) if more else None)


@dataclass(frozen=True)
class Page[RowT]:
    rows: list[RowT]
    next_cursor: str | None


def newest_first(model: type[Any]) -> Keyset[Any]:
    """A table's rows newest first, by (created_at, id) descending; its cursors name the table."""
    return Keyset(
        scope=model.__tablename__,
        columns=(model.created_at, model.id),
        types=(datetime, uuid.UUID),
        key_of=lambda row: (row.created_at, row.id),
    )
