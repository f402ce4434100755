"""Import normalisation and the data-quality report.

``normalise_import`` turns a parsed table (any column names, timestamps in a declared time zone)
into sorted, unique UTC ``Bars`` and a JSON-serialisable report naming every defect found:

==========================  =====================================================================
defect                      meaning (action taken)
==========================  =====================================================================
unparseable_rows            timestamp or a price could not be parsed, the timestamp lies outside
                            1900-01-01 .. 2200-01-01, or a cell holds a NUL character (row
                            dropped; each item says why)
nonexistent_local_time      wall-clock time skipped by a DST spring-forward (row dropped)
ambiguous_local_time        wall-clock time repeated by a DST fall-back; resolved by order of
                            appearance, first = daylight time (row kept)
non_monotonic               timestamp earlier than the previous row's (rows sorted)
duplicate_timestamps        timestamp seen before (last occurrence kept)
ohlc_inconsistent           high < low, or open/close outside [low, high] (row kept, reported)
non_positive_price          a price <= 0 (row kept, reported)
zero_volume                 volume == 0 (row kept, reported)
outlier_jump                |robust z-score| of the log return above the threshold (kept)
gaps                        expected bars of the market calendar that are absent
dst_shift                   sessions whose first bar sits exactly one hour off the usual open
                            (typical of data recorded without DST, or shifted by one hour)
==========================  =====================================================================

Row numbers are 0-based positions among the input's data rows (a CSV header is not a row).
Text copied from the input into the report or a rejection is shortened and shows a NUL character
as ``\\0``, so the report can always be stored (PostgreSQL refuses NUL in text and JSONB).

Gap policies (chosen by the caller):

- ``keep``: bars are stored as imported; gaps are only reported.
- ``forward_fill``: every missing expected bar between the first and last imported bar is
  inserted as a flat bar at the previous close with zero volume.
- ``drop_incomplete_sessions``: for intraday data, every trading day with a missing expected
  bar is dropped whole, so each stored session is complete. Daily and weekly data have no
  intra-session gaps, so nothing is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from packages.domain.market_data.bars import (
    NS_PER_DAY,
    NS_PER_MINUTE,
    Bars,
    Int64Array,
    Market,
    Timeframe,
    sort_unique,
)
from packages.domain.market_data.gaps import detect_missing_ranges, missing_timestamps
from packages.domain.market_data.sessions import RegularHoursCalendar, RollingDayCalendar, calendar_for
from packages.domain.market_data.timeconv import iso
from packages.domain.market_data.timezones import day_number, to_wall_clock, weekday

MAX_ITEMS_PER_DEFECT = 200
MAX_SHOWN_CHARS = 80
MAX_LISTED_COLUMNS = 20
# Bar opens are accepted in [EARLIEST_BAR, LATEST_BAR), the years the API can query; both lie well
# inside pandas' nanosecond range (1677-09-21 .. 2262-04-11), so accepted times always convert.
EARLIEST_BAR = pd.Timestamp("1900-01-01")
LATEST_BAR = pd.Timestamp("2200-01-01")
_OUT_OF_RANGE = f"timestamp outside {EARLIEST_BAR.date()} .. {LATEST_BAR.date()}"


class GapPolicy(StrEnum):
    KEEP = "keep"
    FORWARD_FILL = "forward_fill"
    DROP_INCOMPLETE_SESSIONS = "drop_incomplete_sessions"


class ImportRejected(ValueError):
    """The input cannot be imported at all (missing columns, unknown time zone, no valid rows).

    ``pointer`` names the input at fault: the file, or the parameter that makes it unreadable."""

    def __init__(self, message: str, pointer: str = "/file") -> None:
        super().__init__(message)
        self.pointer = pointer


def shown(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """Input text as a report or message may quote it: NUL as ``\\0``, other characters no UTF-8
    encoder can write (lone surrogates) backslash-escaped, at most ``limit`` characters."""
    text = str(value).replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _column_list(columns: list[Any]) -> str:
    listed = ", ".join(f"'{shown(name, 40)}'" for name in columns[:MAX_LISTED_COLUMNS])
    more = len(columns) - MAX_LISTED_COLUMNS
    return f"[{listed}{f', ... and {more} more' if more > 0 else ''}]"


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Input column names for each bar field; ``volume=None`` when the file has no volume."""

    ts: str = "ts"
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str | None = "volume"
    timestamp_format: str | None = None

    @classmethod
    def from_dict(cls, payload: Mapping[str, str | None]) -> ColumnMapping:
        """Build from a JSON-style mapping; unspecified fields keep their defaults."""
        known: dict[str, Any] = {
            key: value for key, value in payload.items() if key in cls.__dataclass_fields__
        }
        return cls(**known)


@dataclass(frozen=True, slots=True)
class ImportResult:
    bars: Bars
    report: dict[str, Any]


class _Defects:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}

    def add(self, name: str, action: str, items: list[dict[str, Any]], count: int | None = None) -> None:
        """``count``: how many there are when ``items`` lists only the first of them."""
        total = len(items) if count is None else count
        if total == 0:
            return
        listed = items[:MAX_ITEMS_PER_DEFECT]
        self.entries[name] = {
            "count": total,
            "action": action,
            "items": listed,
            "truncated": total > len(listed),
        }


def _parse_local_times(raw: pd.Series, timestamp_format: str | None) -> tuple[pd.Series, bool]:
    """Parse to datetimes (NaT where unreadable); returns (values, carried_own_offset).

    The values keep pandas' parsing resolution (microseconds or coarser), which holds any year from
    1 to 9999 and far epochs; converting them to nanoseconds waits until they are range-checked."""
    try:
        return _parse_times(raw, timestamp_format)
    except (ValueError, re.error) as error:
        # With errors="coerce" unreadable values become NaT, so what raises is the format itself.
        if timestamp_format is None:
            raise
        raise ImportRejected(
            f"timestamp_format '{shown(timestamp_format)}' is not a valid strftime format: {shown(error, 200)}",
            pointer="/mapping/timestamp_format",
        ) from error


def _parse_times(raw: pd.Series, timestamp_format: str | None) -> tuple[pd.Series, bool]:
    if pd.api.types.is_numeric_dtype(raw):
        magnitude = float(np.nanmax(np.abs(raw.to_numpy(dtype=np.float64)))) if len(raw) else 0.0
        unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us" if magnitude < 1e17 else "ns"
        return pd.to_datetime(raw, unit=unit, errors="coerce", utc=True), True
    text = raw.astype("string").str.strip()
    if len(text) and bool(text.str.fullmatch(r"-?\d{9,19}", na=False).all()):
        return _parse_times(pd.to_numeric(text), timestamp_format)
    has_offset = bool(text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).any())
    if has_offset:
        return pd.to_datetime(text, format=timestamp_format or "ISO8601", errors="coerce", utc=True), True
    return pd.to_datetime(text, format=timestamp_format, errors="coerce"), False


def _localise(
    wall: pd.Series, timezone: str, rows: Int64Array, defects: _Defects
) -> tuple[Int64Array, np.ndarray]:
    """Wall-clock datetimes -> UTC ns; returns (utc_ns, keep_mask) and records DST defects."""
    index = pd.DatetimeIndex(wall).as_unit("ns")
    as_daylight = index.tz_localize(timezone, ambiguous=np.ones(len(index), dtype=bool), nonexistent="NaT")
    as_standard = index.tz_localize(timezone, ambiguous=np.zeros(len(index), dtype=bool), nonexistent="NaT")
    nonexistent = np.asarray(as_daylight.isna())
    ambiguous = ~nonexistent & (as_daylight.asi8 != as_standard.asi8)
    wall_ns = index.asi8
    defects.add(
        "nonexistent_local_time",
        "dropped",
        [{"row": int(rows[i]), "local_time": str(index[i])} for i in np.flatnonzero(nonexistent)],
    )
    daylight = np.ones(len(index), dtype=bool)
    items: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    for i in np.flatnonzero(ambiguous):
        occurrence = seen.get(int(wall_ns[i]), 0)
        seen[int(wall_ns[i])] = occurrence + 1
        daylight[i] = occurrence == 0
        items.append(
            {
                "row": int(rows[i]),
                "local_time": str(index[i]),
                "resolved_as": "daylight" if daylight[i] else "standard",
            }
        )
    for item in items:
        if seen[int(pd.Timestamp(item["local_time"]).as_unit("ns").value)] == 1:
            item["note"] = "hour appears once; the repeated hour's other copy is missing"
    defects.add("ambiguous_local_time", "resolved by order of appearance", items)
    utc = np.where(daylight, as_daylight.asi8, as_standard.asi8)
    return utc.astype(np.int64), ~nonexistent


def _price_defects(bars: Bars, rows: Int64Array, has_volume: bool, defects: _Defects) -> None:
    high_low = bars.high < bars.low
    open_out = (bars.open > bars.high) | (bars.open < bars.low)
    close_out = (bars.close > bars.high) | (bars.close < bars.low)
    items = []
    for i in np.flatnonzero(high_low | open_out | close_out):
        problems = [
            label
            for label, flag in (
                ("high<low", high_low),
                ("open outside [low, high]", open_out),
                ("close outside [low, high]", close_out),
            )
            if flag[i]
        ]
        items.append({"row": int(rows[i]), "timestamp": iso(int(bars.ts[i])), "problems": problems})
    defects.add("ohlc_inconsistent", "kept", items)
    non_positive = (bars.open <= 0) | (bars.high <= 0) | (bars.low <= 0) | (bars.close <= 0)
    defects.add(
        "non_positive_price",
        "kept",
        [{"row": int(rows[i]), "timestamp": iso(int(bars.ts[i]))} for i in np.flatnonzero(non_positive)],
    )
    if has_volume:
        defects.add(
            "zero_volume",
            "kept",
            [
                {"row": int(rows[i]), "timestamp": iso(int(bars.ts[i]))}
                for i in np.flatnonzero(bars.volume == 0)
            ],
        )


def robust_return_zscores(close: np.ndarray) -> np.ndarray:
    """Robust z-scores (median / MAD) of consecutive log returns; element i is the jump into bar i+1."""
    valid = close > 0
    returns = np.full(max(close.shape[0] - 1, 0), np.nan)
    both = valid[1:] & valid[:-1]
    returns[both] = np.log(close[1:][both] / close[:-1][both])
    finite = returns[np.isfinite(returns)]
    if finite.shape[0] < 10:
        return np.zeros_like(returns)
    median = float(np.median(finite))
    mad = float(np.median(np.abs(finite - median)))
    if mad == 0.0:
        return np.zeros_like(returns)
    return 0.6745 * (returns - median) / mad


def _outlier_defects(bars: Bars, rows: Int64Array, threshold: float, defects: _Defects) -> None:
    scores = robust_return_zscores(bars.close)
    flagged = np.flatnonzero(np.abs(np.nan_to_num(scores)) > threshold)
    defects.add(
        "outlier_jump",
        "kept",
        [
            {
                "row": int(rows[i + 1]),
                "timestamp": iso(int(bars.ts[i + 1])),
                "log_return": round(float(np.log(bars.close[i + 1] / bars.close[i])), 6),
                "robust_z": round(float(scores[i]), 2),
            }
            for i in flagged
        ],
    )


def _session_shift_defects(bars: Bars, market: Market, timeframe: Timeframe, defects: _Defects) -> None:
    """Sessions whose first bar opens exactly one hour off the dataset's usual opening time."""
    calendar = calendar_for(market)
    if not timeframe.is_intraday or len(bars) == 0:
        return
    if isinstance(calendar, RegularHoursCalendar):
        wall = to_wall_clock(bars.ts, calendar.timezone)
        group = day_number(wall)
        label, official_open = "session", calendar.open_minute
    elif isinstance(calendar, RollingDayCalendar):
        wall = to_wall_clock(bars.ts, calendar.timezone)
        days = day_number(wall - calendar.boundary_hour * 3_600_000_000_000) + 1
        group = days - weekday(days)  # weekly open: the first bar of each trading week
        label, official_open = "week", calendar.boundary_hour * 60
    else:
        return
    firsts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    if firsts.shape[0] < 3:
        return
    minutes = (wall[firsts] - day_number(wall[firsts]) * NS_PER_DAY) // NS_PER_MINUTE
    # The exchange's official open is the reference when some sessions start there; otherwise
    # (e.g. extended-hours data) the most common first-bar time is.
    values, counts = np.unique(minutes, return_counts=True)
    usual = official_open if bool(np.any(minutes == official_open)) else int(values[np.argmax(counts)])
    shifted = np.flatnonzero(np.abs(minutes - usual) == 60)
    defects.add(
        "dst_shift",
        "kept",
        [
            {
                label: iso(int(bars.ts[firsts[i]])),
                "first_bar_local": f"{int(minutes[i]) // 60:02d}:{int(minutes[i]) % 60:02d}",
                "usual_local_open": f"{usual // 60:02d}:{usual % 60:02d}",
            }
            for i in shifted
        ],
    )


def _apply_gap_policy(
    bars: Bars, market: Market, timeframe: Timeframe, policy: GapPolicy
) -> tuple[Bars, dict[str, Any]]:
    if policy == GapPolicy.KEEP or len(bars) == 0:
        return bars, {"policy": policy.value}
    calendar = calendar_for(market)
    end_ns = int(bars.ts[-1]) + timeframe.nanos
    missing = missing_timestamps(calendar, timeframe, bars.ts, int(bars.ts[0]), end_ns)
    if policy == GapPolicy.FORWARD_FILL:
        if missing.shape[0] == 0:
            return bars, {"policy": policy.value, "filled_bars": 0}
        previous = np.searchsorted(bars.ts, missing, side="right") - 1
        fill_close = bars.close[previous]
        filled = Bars.from_columns(
            missing, fill_close, fill_close, fill_close, fill_close, np.zeros(missing.shape[0])
        )
        combined = sort_unique(
            Bars(
                *(
                    np.concatenate([a, b])
                    for a, b in zip(bars.columns().values(), filled.columns().values(), strict=True)
                )
            )
        )
        return combined, {"policy": policy.value, "filled_bars": int(missing.shape[0])}
    if not timeframe.is_intraday:
        return bars, {"policy": policy.value, "dropped_sessions": 0, "dropped_bars": 0}
    bar_days = calendar.assign(bars.ts, timeframe).trading_day
    missing_days = np.unique(calendar.assign(missing, timeframe).trading_day) if missing.shape[0] else missing
    drop = np.isin(bar_days, missing_days)
    return bars.take(~drop), {
        "policy": policy.value,
        "dropped_sessions": int(np.unique(bar_days[drop]).shape[0]),
        "dropped_bars": int(drop.sum()),
    }


def _holds_nul(column: pd.Series) -> np.ndarray:
    if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
        return np.zeros(len(column), dtype=bool)
    return np.asarray(column.astype("string").str.contains("\x00", regex=False, na=False), dtype=bool)


def _in_bar_range(stamps: pd.Series) -> np.ndarray:
    """Timestamps in [EARLIEST_BAR, LATEST_BAR): UTC instants, or wall-clock times without a zone."""
    zone = stamps.dt.tz
    lower = EARLIEST_BAR if zone is None else EARLIEST_BAR.tz_localize(zone)
    upper = LATEST_BAR if zone is None else LATEST_BAR.tz_localize(zone)
    return np.asarray((stamps >= lower) & (stamps < upper), dtype=bool)


def _unparseable_items(
    frame: pd.DataFrame,
    columns: dict[str, str],
    rows: np.ndarray,
    reasons: list[tuple[np.ndarray, str]],
) -> list[dict[str, Any]]:
    """Report items for the first ``MAX_ITEMS_PER_DEFECT`` bad rows, each with every reason that applies."""
    return [
        {
            "row": int(row),
            "reason": "; ".join(reason for flags, reason in reasons if flags[row]),
            "values": {field: shown(frame[source].iloc[row]) for field, source in columns.items()},
        }
        for row in rows[:MAX_ITEMS_PER_DEFECT]
    ]


def _check_span(
    utc_ns: Int64Array, rows: Int64Array, timeframe: Timeframe, max_span_bars: int | None
) -> None:
    if max_span_bars is None:
        return
    first, last = int(np.argmin(utc_ns)), int(np.argmax(utc_ns))
    span = (int(utc_ns[last]) - int(utc_ns[first])) // timeframe.nanos + 1
    if span > max_span_bars:
        raise ImportRejected(
            f"the rows span {span:,} {timeframe.value} bars, from {iso(int(utc_ns[first]))} (row "
            f"{int(rows[first])}) to {iso(int(utc_ns[last]))} (row {int(rows[last])}); an import may span "
            f"at most {max_span_bars:,}. Check the timestamps (a wrong year?) or split the file."
        )


def _check_time_zone(timezone: str) -> None:
    # An IANA key only: pandas would also take a "dateutil/<path>" zone and read that file.
    try:
        ZoneInfo(timezone)
        pd.Timestamp("2000-01-01").tz_localize(timezone)
    except Exception as error:
        raise ImportRejected(
            f"unknown time zone '{shown(timezone)}'; use an IANA name such as 'America/New_York' or 'UTC'",
            pointer="/timezone",
        ) from error


def normalise_import(
    frame: pd.DataFrame,
    mapping: ColumnMapping,
    *,
    timezone: str,
    market: Market,
    timeframe: Timeframe,
    gap_policy: GapPolicy = GapPolicy.KEEP,
    outlier_threshold: float = 10.0,
    max_span_bars: int | None = None,
) -> ImportResult:
    """Normalise an imported table to UTC bars and report its defects (see module docstring).

    ``max_span_bars`` refuses rows spread over more than that many bars of ``timeframe`` (first to
    last bar), before the gap report or a forward fill expands the span bar by bar.
    """
    _check_time_zone(timezone)
    columns = {
        "ts": mapping.ts,
        "open": mapping.open,
        "high": mapping.high,
        "low": mapping.low,
        "close": mapping.close,
    }
    if mapping.volume is not None:
        columns["volume"] = mapping.volume
    absent = [source for source in columns.values() if source not in frame.columns]
    if absent:
        raise ImportRejected(
            f"columns not found: {_column_list(absent)}; available: {_column_list(list(frame.columns))}"
        )
    # A Parquet file may repeat a column name; which of the columns was meant is unknowable.
    named_twice = sorted({source for source in columns.values() if int((frame.columns == source).sum()) > 1})
    if named_twice:
        raise ImportRejected(f"more than one column is named {_column_list(named_twice)}; rename the copies")
    defects = _Defects()
    rows = np.arange(len(frame), dtype=np.int64)
    stamps, own_offset = _parse_local_times(frame[mapping.ts], mapping.timestamp_format)
    prices = {
        name: pd.to_numeric(frame[source], errors="coerce").to_numpy(dtype=np.float64)
        for name, source in columns.items()
        if name != "ts"
    }
    if "volume" not in prices:
        prices["volume"] = np.zeros(len(frame))
    parsed = np.asarray(stamps.notna(), dtype=bool)
    in_range = parsed & _in_bar_range(stamps)
    reasons = [
        (_holds_nul(frame[source]), f"NUL character in '{shown(source, 40)}'") for source in columns.values()
    ]
    reasons += [
        (~parsed, f"timestamp '{shown(mapping.ts, 40)}' not understood"),
        (parsed & ~in_range, _OUT_OF_RANGE),
    ]
    reasons += [
        (~np.isfinite(prices[name]), f"'{shown(source, 40)}' is not a number")
        for name, source in columns.items()
        if name != "ts"
    ]
    valid = ~np.any([flags for flags, _ in reasons], axis=0)
    bad_rows = np.flatnonzero(~valid)
    defects.add(
        "unparseable_rows",
        "dropped",
        _unparseable_items(frame, columns, bad_rows, reasons),
        count=int(bad_rows.shape[0]),
    )
    if not valid.any():
        first = defects.entries["unparseable_rows"]["items"][0] if bad_rows.shape[0] else None
        example = "" if first is None else f" (row {first['row']}: {first['reason']})"
        raise ImportRejected(f"no valid rows to import{example}")
    # Every kept timestamp lies in [EARLIEST_BAR, LATEST_BAR), so nanoseconds hold it.
    rows, stamps = rows[valid], stamps[valid]
    prices = {name: values[valid] for name, values in prices.items()}
    if own_offset:
        utc_ns = pd.DatetimeIndex(stamps).as_unit("ns").asi8.astype(np.int64)
    else:
        utc_ns, keep = _localise(stamps, timezone, rows, defects)
        rows, utc_ns = rows[keep], utc_ns[keep]
        prices = {name: values[keep] for name, values in prices.items()}
    if rows.shape[0] == 0:
        raise ImportRejected("no valid rows to import")
    _check_span(utc_ns, rows, timeframe, max_span_bars)

    backwards = np.flatnonzero(utc_ns[1:] < utc_ns[:-1]) + 1
    defects.add(
        "non_monotonic",
        "sorted",
        [
            {"row": int(rows[i]), "timestamp": iso(int(utc_ns[i])), "previous": iso(int(utc_ns[i - 1]))}
            for i in backwards
        ],
    )
    order = np.argsort(utc_ns, kind="stable")
    ordered_ts, ordered_rows = utc_ns[order], rows[order]
    repeated = np.concatenate(([False], ordered_ts[1:] == ordered_ts[:-1]))
    defects.add(
        "duplicate_timestamps",
        "last occurrence kept",
        [
            {
                "row": int(ordered_rows[i]),
                "timestamp": iso(int(ordered_ts[i])),
                "first_row": int(ordered_rows[i - 1]),
            }
            for i in np.flatnonzero(repeated)
        ],
    )
    keep_last = np.concatenate((ordered_ts[1:] != ordered_ts[:-1], [True]))
    index = order[keep_last]
    bars = Bars.from_columns(
        utc_ns[index],
        prices["open"][index],
        prices["high"][index],
        prices["low"][index],
        prices["close"][index],
        prices["volume"][index],
    )
    bar_rows = rows[index]

    _price_defects(bars, bar_rows, mapping.volume is not None, defects)
    _outlier_defects(bars, bar_rows, outlier_threshold, defects)
    _session_shift_defects(bars, market, timeframe, defects)
    gaps = detect_missing_ranges(
        calendar_for(market), timeframe, bars.ts, int(bars.ts[0]), int(bars.ts[-1]) + timeframe.nanos
    )
    defects.add(
        "gaps",
        "per gap policy",
        [gap.to_dict() for gap in gaps],
    )
    if "gaps" in defects.entries:
        defects.entries["gaps"]["missing_bars"] = sum(gap.bars for gap in gaps)

    final, applied = _apply_gap_policy(bars, market, timeframe, gap_policy)
    report = {
        "market": market.value,
        "timeframe": timeframe.value,
        "timezone": timezone,
        "timestamps_carried_offset": own_offset,
        "rows_in": len(frame),
        "rows_out": len(final),
        "coverage_start": iso(int(final.ts[0])) if len(final) else None,
        "coverage_end": iso(int(final.ts[-1])) if len(final) else None,
        "gap_policy": applied,
        "outlier_threshold": outlier_threshold,
        "defects": defects.entries,
        "defect_names": sorted(defects.entries),
        "clean": not defects.entries,
    }
    return ImportResult(bars=final, report=report)
