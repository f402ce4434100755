"""OHLCV resampling along session boundaries.

Buckets come from the market's ``SessionCalendar``; each bucket aggregates to first open, max high,
min low, last close and summed volume. Bars outside a session (equity pre/post-market, forex
weekend prints) are left out of resampled output. Empty buckets produce no bar. ``bucket_closes``
says when each resampled bar is complete (the strategy compiler's higher-timeframe factors wait
for it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from packages.domain.market_data.bars import (
    NS_PER_DAY,
    Bars,
    BoolArray,
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
) -> tuple[Int64Array, BoolArray | None]:
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


def bucket_closes(labels: Int64Array, target: Timeframe, calendar: SessionCalendar) -> Int64Array:
    """The UTC instant each ``target`` bar labelled ``labels`` (as ``resample`` stamps them) closes.

    A daily bar closes with its trading day's session (17:00 New York for forex, 16:00 or an early
    13:00 for US stocks, midnight UTC for crypto); a weekly bar with the last trading session of its
    week; an intraday bar after its length, or at its session's close when that comes first (the
    short last bucket of a US-stock day). A bar that opens after its session's close (prints after
    an early close) closes after its length.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    if target == Timeframe.D1:
        return calendar.session_bounds(labels // NS_PER_DAY)[1]
    if target == Timeframe.W1:
        mondays = labels // NS_PER_DAY
        next_mondays = mondays + 7
        days = calendar.trading_days(int(mondays[0]), int(next_mondays[-1]) - 1)
        last = np.searchsorted(days, next_mondays, side="left") - 1
        last_day = days[np.maximum(last, 0)] if days.shape[0] else mondays
        has_session = (last >= 0) & (last_day >= mondays)
        # A week the calendar holds no session in (bars of a source that traded anyway) ends with it.
        session_close = calendar.session_bounds(np.where(has_session, last_day, mondays))[1]
        return np.where(has_session, session_close, next_mondays * NS_PER_DAY)
    ends = labels + target.nanos
    session_close = calendar.session_bounds(calendar.assign(labels, target).trading_day)[1]
    return np.where(session_close > labels, np.minimum(ends, session_close), ends)


def resample(
    bars: Bars,
    source: Timeframe,
    target: Timeframe,
    calendar: SessionCalendar,
    *,
    buckets: tuple[Int64Array, BoolArray | None] | None = None,
) -> Bars:
    """Aggregate ``bars`` (stored at ``source``) into ``target`` bars under ``calendar``.

    ``buckets`` is ``bucket_labels(bars.ts, source, target, calendar)`` when the caller already
    computed it (the strategy compiler also needs it to time higher-timeframe closes).
    """
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
    labels, in_session = buckets if buckets is not None else bucket_labels(bars.ts, source, target, calendar)
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
