"""Core market-data value types: markets, timeframes and the columnar ``Bars`` container.

Every timestamp in the platform is an ``int64`` count of nanoseconds since the Unix epoch in UTC
and marks the *open* of its bar. Daily and weekly bars are stamped at 00:00 UTC of their trading
date (weekly: the Monday of the trading week), whatever the market's session hours are, so a daily
bar "keeps its date" across time zones.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NS_PER_SECOND: Final = 1_000_000_000
NS_PER_MINUTE: Final = 60 * NS_PER_SECOND
NS_PER_HOUR: Final = 60 * NS_PER_MINUTE
NS_PER_DAY: Final = 24 * NS_PER_HOUR
NS_PER_WEEK: Final = 7 * NS_PER_DAY


class Market(StrEnum):
    US_STOCKS = "us_stocks"
    CRYPTO = "crypto"
    FOREX = "forex"
    FUTURES = "futures"


class AssetClass(StrEnum):
    STOCK = "stock"
    ETF = "etf"
    INDEX = "index"
    CRYPTO = "crypto"
    FOREX = "forex"
    FUTURE = "future"


class Timeframe(StrEnum):
    """Bar lengths the store can serve (base data may be stored at any of them)."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"

    @property
    def nanos(self) -> int:
        return _TIMEFRAME_NANOS[self]

    @property
    def is_intraday(self) -> bool:
        return self.nanos < NS_PER_DAY


_TIMEFRAME_NANOS: Final[dict[Timeframe, int]] = {
    Timeframe.M1: NS_PER_MINUTE,
    Timeframe.M5: 5 * NS_PER_MINUTE,
    Timeframe.M15: 15 * NS_PER_MINUTE,
    Timeframe.M30: 30 * NS_PER_MINUTE,
    Timeframe.H1: NS_PER_HOUR,
    Timeframe.H2: 2 * NS_PER_HOUR,
    Timeframe.H4: 4 * NS_PER_HOUR,
    Timeframe.D1: NS_PER_DAY,
    Timeframe.W1: NS_PER_WEEK,
}

SUPPORTED_TIMEFRAMES: Final[tuple[Timeframe, ...]] = tuple(Timeframe)

BAR_COLUMNS: Final = ("ts", "open", "high", "low", "close", "volume")


def parse_timeframe(value: str | Timeframe) -> Timeframe:
    """Accept ``Timeframe`` members and their codes; a few common aliases are tolerated."""
    if isinstance(value, Timeframe):
        return value
    code = value.strip()
    aliases = {
        "1min": "1m",
        "5min": "5m",
        "15min": "15m",
        "30min": "30m",
        "60m": "1h",
        "1H": "1h",
        "1D": "1d",
    }
    code = aliases.get(code, code).lower()
    try:
        return Timeframe(code)
    except ValueError:
        supported = ", ".join(tf.value for tf in Timeframe)
        raise ValueError(f"unsupported timeframe {value!r}; supported: {supported}") from None


def can_resample(source: Timeframe, target: Timeframe) -> bool:
    """Whether bars of ``source`` length can be aggregated into ``target`` bars."""
    if source == target:
        return True
    if target.nanos < source.nanos:
        return False
    if not source.is_intraday:
        return source == Timeframe.D1 and target == Timeframe.W1
    return not target.is_intraday or target.nanos % source.nanos == 0


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """OHLCV bars as parallel numpy columns, sorted by ``ts`` with unique timestamps."""

    ts: Int64Array
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        size = self.ts.shape[0]
        for name in BAR_COLUMNS[1:]:
            if getattr(self, name).shape[0] != size:
                raise ValueError(f"column {name!r} has a different length than ts")

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def empty(cls) -> Bars:
        return cls.from_columns(np.empty(0, dtype=np.int64), *(np.empty(0) for _ in range(5)))

    @classmethod
    def from_columns(
        cls,
        ts: npt.ArrayLike,
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> Bars:
        """Build bars, coercing dtypes (int64 ns / float64) without copying when they already match."""
        return cls(
            ts=np.ascontiguousarray(ts, dtype=np.int64),
            open=np.ascontiguousarray(open_, dtype=np.float64),
            high=np.ascontiguousarray(high, dtype=np.float64),
            low=np.ascontiguousarray(low, dtype=np.float64),
            close=np.ascontiguousarray(close, dtype=np.float64),
            volume=np.ascontiguousarray(volume, dtype=np.float64),
        )

    def columns(self) -> dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]:
        return {name: getattr(self, name) for name in BAR_COLUMNS}

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice) -> Bars:
        return Bars(
            ts=self.ts[index],
            open=self.open[index],
            high=self.high[index],
            low=self.low[index],
            close=self.close[index],
            volume=self.volume[index],
        )

    def between(self, start_ns: int | None = None, end_ns: int | None = None) -> Bars:
        """Bars with ``start_ns <= ts < end_ns`` (either bound optional), as a zero-copy view."""
        lo = 0 if start_ns is None else int(np.searchsorted(self.ts, start_ns, side="left"))
        hi = len(self) if end_ns is None else int(np.searchsorted(self.ts, end_ns, side="left"))
        return self.take(slice(lo, max(lo, hi)))

    def head(self, count: int) -> Bars:
        return self.take(slice(0, max(count, 0)))

    def tail(self, count: int) -> Bars:
        return self.take(slice(max(len(self) - count, 0), len(self)))

    def equals(self, other: Bars) -> bool:
        return all(
            np.array_equal(getattr(self, n), getattr(other, n), equal_nan=True) for n in BAR_COLUMNS[1:]
        ) and (np.array_equal(self.ts, other.ts))


def concat_bars(parts: list[Bars]) -> Bars:
    """Concatenate already-ordered, non-overlapping bar blocks."""
    if not parts:
        return Bars.empty()
    if len(parts) == 1:
        return parts[0]
    return Bars(*(np.concatenate([getattr(p, name) for p in parts]) for name in BAR_COLUMNS))


def merge_bars(existing: Bars, incoming: Bars) -> Bars:
    """Upsert ``incoming`` into ``existing`` by timestamp; incoming rows win on equal timestamps.

    Both inputs must be sorted with unique timestamps; the result is too.
    """
    if len(existing) == 0:
        return incoming
    if len(incoming) == 0:
        return existing
    replaced = np.isin(existing.ts, incoming.ts, assume_unique=True)
    kept = existing.take(~replaced) if replaced.any() else existing
    combined = concat_bars([kept, incoming])
    order = np.argsort(combined.ts, kind="stable")
    return combined.take(order)


def sort_unique(bars: Bars) -> Bars:
    """Sort by timestamp and keep the last row of every duplicated timestamp."""
    order = np.argsort(bars.ts, kind="stable")
    ordered = bars.take(order)
    if len(ordered) < 2:
        return ordered
    last_of_run = np.empty(len(ordered), dtype=np.bool_)
    last_of_run[:-1] = ordered.ts[1:] != ordered.ts[:-1]
    last_of_run[-1] = True
    return ordered if last_of_run.all() else ordered.take(last_of_run)
