"""Offline replay: a clock that walks through stored history so paper trading runs without a network.

The clock maps wall time to simulated market time (``speed`` simulated seconds per wall second,
starting at ``start_ns``); ``replay_snapshot`` answers "what does the market look like now": the
latest *completed* bar and a quote around its close. A bar is completed once simulated time
reaches its open plus the timeframe, so a strategy never sees a bar before it has closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from packages.domain.market_data.bars import NS_PER_SECOND, Bars, Timeframe
from packages.domain.market_data.timeconv import iso

# Quoted prices keep ten significant digits: finer than any instrument's tick, and free of the
# float noise the spread arithmetic adds (1.0872056369999998).
QUOTE_SIGNIFICANT_DIGITS = 10


@dataclass(frozen=True, slots=True)
class ReplayClock:
    start_ns: int
    wall_anchor_s: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("replay speed must be positive")

    def simulated_ns(self, wall_s: float) -> int:
        elapsed = max(wall_s - self.wall_anchor_s, 0.0)
        return self.start_ns + int(elapsed * self.speed * NS_PER_SECOND)

    def wall_time_for(self, simulated_ns: int) -> float:
        """Wall-clock second at which simulated time reaches ``simulated_ns`` (for scheduling)."""
        return self.wall_anchor_s + max(simulated_ns - self.start_ns, 0) / (self.speed * NS_PER_SECOND)


@dataclass(frozen=True, slots=True)
class ReplaySnapshot:
    symbol: str
    timeframe: Timeframe
    simulated_ns: int
    bar_index: int
    bar: dict[str, Any] | None
    quote: dict[str, Any] | None
    exhausted: bool
    next_bar_close_ns: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "timeframe": self.timeframe.value,
            "simulated_time": iso(self.simulated_ns),
            "bar_index": self.bar_index,
            "bar": self.bar,
            "quote": self.quote,
            "exhausted": self.exhausted,
            "next_bar_close": None if self.next_bar_close_ns is None else iso(self.next_bar_close_ns),
            "source": "replay",
        }


def replay_snapshot(
    bars: Bars, timeframe: Timeframe, simulated_ns: int, *, symbol: str, spread_bps: float = 1.0
) -> ReplaySnapshot:
    """Latest completed bar at ``simulated_ns`` and a quote at its close +/- half ``spread_bps``."""
    closes_at = bars.ts + timeframe.nanos
    index = int(np.searchsorted(closes_at, simulated_ns, side="right")) - 1
    next_close = int(closes_at[index + 1]) if index + 1 < len(bars) else None
    if index < 0:
        return ReplaySnapshot(symbol, timeframe, simulated_ns, -1, None, None, len(bars) == 0, next_close)
    last = float(bars.close[index])
    half_spread = last * spread_bps / 20_000
    bar = {
        "ts": iso(int(bars.ts[index])),
        "open": float(bars.open[index]),
        "high": float(bars.high[index]),
        "low": float(bars.low[index]),
        "close": last,
        "volume": float(bars.volume[index]),
    }
    quote = {
        "ts": iso(int(closes_at[index])),
        "bid": _quoted(last - half_spread),
        "ask": _quoted(last + half_spread),
        "last": last,
    }
    return ReplaySnapshot(
        symbol, timeframe, simulated_ns, index, bar, quote, index == len(bars) - 1, next_close
    )


def _quoted(price: float) -> float:
    return float(f"{price:.{QUOTE_SIGNIFICANT_DIGITS}g}")
