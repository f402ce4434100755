"""Conversions between the platform's int64 UTC nanoseconds and ``datetime`` values."""

from __future__ import annotations

import datetime as dt

import numpy as np

TimeLike = int | dt.datetime | dt.date | str | np.datetime64


def to_ns(value: TimeLike) -> int:
    """UTC nanoseconds for ints (taken as ns), aware/naive-UTC datetimes, dates and ISO strings."""
    if isinstance(value, bool):
        raise TypeError("booleans are not timestamps")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * 86_400 * 1_000_000_000
    raise TypeError(f"cannot convert {type(value).__name__} to a timestamp")


def to_ns_or_none(value: TimeLike | None) -> int | None:
    return None if value is None else to_ns(value)


def from_ns(value: int) -> dt.datetime:
    """Aware UTC ``datetime`` (microsecond precision) for UTC nanoseconds."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(value) // 1_000)


def iso(value: int) -> str:
    """ISO-8601 UTC string with a ``Z`` suffix."""
    return from_ns(value).isoformat().replace("+00:00", "Z")
