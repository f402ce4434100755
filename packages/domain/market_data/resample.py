"""OHLCV resampling along session boundaries.

Buckets come from the market's ``SessionCalendar``; each bucket aggregates to first open, max high,
min low, last close and summed volume. Bars outside a session (equity pre/post-market, forex
weekend prints) are left out of resampled output. Empty buckets produce no bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from packages.domain.market_data.bars import (
    NS_PER_DAY,
    Bars,
    Int64Array,
    Timeframe,
    can_resample,
    concat_bars,
)
from packages.domain.market_data.sessions import ContinuousCalendar, SessionCalendar, week_start_day


class TimeframeNotServable(ValueError):
    """The requested timeframe cannot be built from the stored base timeframe."""


def bucket_labels(
    ts: Int64Array, source: Timeframe, target: Timeframe, calendar: SessionCalendar
) -> tuple[Int64Array, np.ndarray | None]:
    """Label (bucket open, UTC ns) of every source bar and the in-session mask (``None`` = all in)."""
    assignment = calendar.assign(ts, source)
    if target == Timeframe.W1:
        labels = week_start_day(assignment.trading_day) * NS_PER_DAY
    elif target == Timeframe.D1:
        labels = assignment.trading_day * NS_PER_DAY
    else:
        step = target.nanos
        labels = assignment.session_open + (ts - assignment.session_open) // step * step
    return labels, assignment.in_session


def resample(bars: Bars, source: Timeframe, target: Timeframe, calendar: SessionCalendar) -> Bars:
    """Aggregate ``bars`` (stored at ``source``) into ``target`` bars under ``calendar``."""
    if not can_resample(source, target):
        raise TimeframeNotServable(f"cannot build {target.value} bars from {source.value} bars")
    if source == target and not source.is_intraday:
        return bars
    if len(bars) == 0:
        return Bars.empty()
    if (
        isinstance(calendar, ContinuousCalendar)
        and source.is_intraday
        and target.is_intraday
        and source != target
    ):
        return aggregate_fixed_step(bars, target.nanos)
    labels, in_session = bucket_labels(bars.ts, source, target, calendar)
    if in_session is not None and not in_session.all():
        bars = bars.take(in_session)
        labels = labels[in_session]
        if len(bars) == 0:
            return Bars.empty()
    if source == target:
        return bars
    return aggregate_runs(bars, labels)


@njit(cache=True, nogil=True)
def _aggregate_kernel(
    ts: np.ndarray,
    step: int,
    labels: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass over sorted bars. Labels are ``ts - ts mod step`` when ``step > 0``, else ``labels``.

    Each bucket is folded in registers (selects, no stores per bar) and written once; a later NaN
    high or low never replaces the bucket's extreme.
    """
    n = ts.shape[0]
    out_ts = np.empty(n, dtype=np.int64)
    out_open = np.empty(n, dtype=np.float64)
    out_high = np.empty(n, dtype=np.float64)
    out_low = np.empty(n, dtype=np.float64)
    out_close = np.empty(n, dtype=np.float64)
    out_volume = np.empty(n, dtype=np.float64)
    j = 0
    i = 0
    bucket_end = np.int64(0)
    while i < n:
        if step > 0:
            # Fixed UTC steps: a modulo only when a bar leaves the current bucket.
            bucket_start = ts[i] - ts[i] % step
            bucket_end = bucket_start + step
        else:
            bucket_start = labels[i]
        bucket_high = high[i]
        bucket_low = low[i]
        bucket_volume = volume[i]
        first = i
        i += 1
        while i < n and ((bucket_start <= ts[i] < bucket_end) if step > 0 else labels[i] == bucket_start):
            h = high[i]
            lo = low[i]
            bucket_high = h if h > bucket_high else bucket_high
            bucket_low = lo if lo < bucket_low else bucket_low
            bucket_volume += volume[i]
            i += 1
        out_ts[j] = bucket_start
        out_open[j] = open_[first]
        out_high[j] = bucket_high
        out_low[j] = bucket_low
        out_close[j] = close[i - 1]
        out_volume[j] = bucket_volume
        j += 1
    return (
        out_ts[:j].copy(),
        out_open[:j].copy(),
        out_high[:j].copy(),
        out_low[:j].copy(),
        out_close[:j].copy(),
        out_volume[:j].copy(),
    )


def aggregate_runs(bars: Bars, labels: Int64Array) -> Bars:
    """Aggregate consecutive runs of equal labels; ``labels`` must be non-decreasing."""
    return Bars(
        *_aggregate_kernel(bars.ts, 0, labels, bars.open, bars.high, bars.low, bars.close, bars.volume)
    )


def aggregate_fixed_step(bars: Bars, step: int) -> Bars:
    """Aggregate into buckets ``[k * step, (k + 1) * step)`` of UTC time without materialising labels."""
    return Bars(
        *_aggregate_kernel(bars.ts, step, bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    )


def merge_adjacent_buckets(parts: list[Bars]) -> Bars:
    """Concatenate resampled blocks of consecutive base ranges, merging a bucket split across blocks."""
    parts = [part for part in parts if len(part)]
    if len(parts) <= 1:
        return parts[0] if parts else Bars.empty()
    combined = concat_bars(parts)
    if bool(np.all(combined.ts[1:] != combined.ts[:-1])):
        return combined
    return aggregate_runs(combined, combined.ts)
