"""Vectorised UTC <-> wall-clock conversion for sorted nanosecond timestamp arrays.

Converting a million timestamps through ``zoneinfo`` one by one is far too slow for resampling, so
the zone's UTC offsets are tabulated once per decade on an hourly grid (every DST rule in use
switches on a whole hour) and looked up with ``np.searchsorted``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from packages.domain.market_data.bars import NS_PER_DAY, Int64Array

UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Z"})


@lru_cache(maxsize=64)
def _offset_table(tz_name: str, first_decade: int, last_decade: int) -> tuple[Int64Array, Int64Array]:
    """Start instants (UTC ns) of each constant-offset span and the offset in force from then on."""
    # Imported here: reading and resampling UTC-only markets never needs pandas' import cost.
    import pandas as pd

    start = pd.Timestamp(year=first_decade, month=1, day=1, tz="UTC") - pd.Timedelta(days=2)
    end = pd.Timestamp(year=last_decade + 10, month=1, day=1, tz="UTC") + pd.Timedelta(days=2)
    grid = pd.date_range(start, end, freq="h", unit="ns")
    utc_ns = grid.asi8
    wall_ns = grid.tz_convert(tz_name).tz_localize(None).as_unit("ns").asi8
    offsets = wall_ns - utc_ns
    change = np.flatnonzero(np.diff(offsets)) + 1
    keep = np.concatenate(([0], change))
    return utc_ns[keep].astype(np.int64), offsets[keep].astype(np.int64)


def _decade_span(ts: Int64Array) -> tuple[int, int]:
    years = (
        np.array([ts.min(), ts.max()], dtype="datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
    )
    return int(years[0] // 10 * 10), int(years[1] // 10 * 10)


def utc_offsets(ts: Int64Array, tz_name: str) -> Int64Array:
    """The zone's UTC offset (ns, wall clock minus UTC) in force at each UTC instant."""
    if tz_name in UTC_NAMES or ts.shape[0] == 0:
        return np.zeros(ts.shape[0], dtype=np.int64)
    first, last = _decade_span(ts)
    starts, offsets = _offset_table(tz_name, first, last)
    position = np.searchsorted(starts, ts, side="right") - 1
    return offsets[np.clip(position, 0, offsets.shape[0] - 1)]


def to_wall_clock(ts: Int64Array, tz_name: str) -> Int64Array:
    """UTC instants -> naive wall-clock nanoseconds in ``tz_name``."""
    return ts + utc_offsets(ts, tz_name)


def wall_clock_to_utc(wall_ns: Int64Array, tz_name: str) -> Int64Array:
    """Naive wall-clock nanoseconds -> UTC, for wall times that are neither skipped nor repeated.

    Two lookups: the first guesses the instant assuming the offset at the wall time read as UTC,
    the second corrects it. Session opens and closes (09:30, 16:00, 17:00...) are hours away from
    any DST switch, which is all the calendars need.
    """
    if tz_name in UTC_NAMES or wall_ns.shape[0] == 0:
        return wall_ns.copy()
    guess = wall_ns - utc_offsets(wall_ns, tz_name)
    return wall_ns - utc_offsets(guess, tz_name)


def day_number(ns: Int64Array) -> Int64Array:
    """Days since 1970-01-01 (floor), for UTC or wall-clock nanoseconds."""
    return np.floor_divide(ns, NS_PER_DAY)


def weekday(days: Int64Array) -> Int64Array:
    """Monday = 0 ... Sunday = 6 for day numbers (1970-01-01 was a Thursday)."""
    return np.remainder(days + 3, 7)
