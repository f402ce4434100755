"""Resampling checked against independent pandas computations, per session type and timeframe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from packages.domain.market_data.bars import Bars, Timeframe
from packages.domain.market_data.resample import TimeframeNotServable, merge_adjacent_buckets, resample
from packages.domain.market_data.sessions import (
    CRYPTO_CALENDAR,
    FOREX_CALENDAR,
    FUTURES_CALENDAR,
    US_EQUITY_CALENDAR,
)

NY = "America/New_York"
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
PANDAS_RULES = {
    Timeframe.M1: "1min",
    Timeframe.M5: "5min",
    Timeframe.M15: "15min",
    Timeframe.M30: "30min",
    Timeframe.H1: "1h",
    Timeframe.H2: "2h",
    Timeframe.H4: "4h",
    Timeframe.D1: "1D",
}


def frame_of(bars: Bars) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(bars.ts, utc=True), name="ts")
    return pd.DataFrame(
        {"open": bars.open, "high": bars.high, "low": bars.low, "close": bars.close, "volume": bars.volume},
        index=index,
    )


def assert_matches(ours: Bars, expected: pd.DataFrame) -> None:
    expected = expected.dropna(subset=["open"]).sort_index()
    assert len(ours) == len(expected)
    np.testing.assert_array_equal(ours.ts, expected.index.as_unit("ns").asi8)
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(getattr(ours, column), expected[column].to_numpy(), rtol=0, atol=1e-9)


def utc_midnight(dates: pd.Series | pd.Index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.Index(dates).astype(str))).tz_localize("UTC")


def pandas_crypto(frame: pd.DataFrame, target: Timeframe) -> pd.DataFrame:
    if target == Timeframe.W1:
        return frame.resample("W-MON", label="left", closed="left").agg(AGG)
    return frame.resample(PANDAS_RULES[target]).agg(AGG)


def pandas_bucketed(
    local: pd.Series, frame: pd.DataFrame, session_open: pd.Series, target: Timeframe
) -> pd.DataFrame:
    """Group by wall-clock bucket anchored at each session open, label converted back to UTC."""
    step = pd.Timedelta(PANDAS_RULES[target])
    bucket_local = session_open + ((local - session_open) // step) * step
    labels = pd.DatetimeIndex(bucket_local).tz_localize(NY).tz_convert("UTC")
    return (
        frame.groupby(labels.to_numpy()).agg(AGG).set_axis(pd.DatetimeIndex(sorted(set(labels)), name="ts"))
    )


def pandas_equity(frame: pd.DataFrame, target: Timeframe) -> pd.DataFrame:
    local = pd.Series(frame.index.tz_convert(NY).tz_localize(None), index=frame.index)
    regular = frame[local.dt.strftime("%H:%M").between("09:30", "15:59")]
    local = local[regular.index]
    if target == Timeframe.D1:
        return regular.groupby(utc_midnight(local.dt.date).to_numpy()).agg(AGG)
    if target == Timeframe.W1:
        monday = local.dt.normalize() - pd.to_timedelta(local.dt.day_of_week, unit="D")
        return regular.groupby(utc_midnight(monday.dt.date).to_numpy()).agg(AGG)
    session_open = local.dt.normalize() + pd.Timedelta(hours=9, minutes=30)
    return pandas_bucketed(local, regular, session_open, target)


def pandas_rolling_day(frame: pd.DataFrame, target: Timeframe, boundary_hour: int) -> pd.DataFrame:
    local = pd.Series(frame.index.tz_convert(NY).tz_localize(None), index=frame.index)
    trading_date = (local - pd.Timedelta(hours=boundary_hour)).dt.normalize() + pd.Timedelta(days=1)
    inside = trading_date.dt.day_of_week < 5
    frame, local, trading_date = frame[inside], local[inside], trading_date[inside]
    if target == Timeframe.D1:
        return frame.groupby(utc_midnight(trading_date.dt.date).to_numpy()).agg(AGG)
    if target == Timeframe.W1:
        monday = trading_date - pd.to_timedelta(trading_date.dt.day_of_week, unit="D")
        return frame.groupby(utc_midnight(monday.dt.date).to_numpy()).agg(AGG)
    session_open = trading_date - pd.Timedelta(days=1) + pd.Timedelta(hours=boundary_hour)
    return pandas_bucketed(local, frame, session_open, target)


ALL_TARGETS = list(Timeframe)


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda tf: tf.value)
def test_crypto_utc_sessions_match_pandas_resample(crypto_minutes: Bars, target: Timeframe) -> None:
    ours = resample(crypto_minutes, Timeframe.M1, target, CRYPTO_CALENDAR)
    assert_matches(ours, pandas_crypto(frame_of(crypto_minutes), target))


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda tf: tf.value)
def test_equity_regular_hours_match_pandas_across_dst(equity_minutes: Bars, target: Timeframe) -> None:
    ours = resample(equity_minutes, Timeframe.M1, target, US_EQUITY_CALENDAR)
    assert_matches(ours, pandas_equity(frame_of(equity_minutes), target))


@pytest.mark.parametrize("target", ALL_TARGETS, ids=lambda tf: tf.value)
def test_forex_17h_new_york_days_match_pandas_across_dst(forex_minutes: Bars, target: Timeframe) -> None:
    ours = resample(forex_minutes, Timeframe.M1, target, FOREX_CALENDAR)
    assert_matches(ours, pandas_rolling_day(frame_of(forex_minutes), target, 17))


@pytest.mark.parametrize("target", [Timeframe.H4, Timeframe.D1, Timeframe.W1], ids=lambda tf: tf.value)
def test_futures_18h_new_york_days_match_pandas(forex_minutes: Bars, target: Timeframe) -> None:
    ours = resample(forex_minutes, Timeframe.M1, target, FUTURES_CALENDAR)
    assert_matches(ours, pandas_rolling_day(frame_of(forex_minutes), target, 18))


def test_equity_intraday_buckets_start_at_the_open_in_both_dst_regimes(equity_minutes: Bars) -> None:
    hourly = resample(equity_minutes, Timeframe.M1, Timeframe.H1, US_EQUITY_CALENDAR)
    local = pd.to_datetime(hourly.ts, utc=True).tz_convert(NY)
    assert set(local.strftime("%H:%M")) == {f"{h:02d}:30" for h in range(9, 16)}
    four_hourly = resample(equity_minutes, Timeframe.M1, Timeframe.H4, US_EQUITY_CALENDAR)
    assert set(pd.to_datetime(four_hourly.ts, utc=True).tz_convert(NY).strftime("%H:%M")) == {
        "09:30",
        "13:30",
    }


def test_forex_week_opens_sunday_17h_new_york(forex_minutes: Bars) -> None:
    four_hourly = resample(forex_minutes, Timeframe.M1, Timeframe.H4, FOREX_CALENDAR)
    local = pd.to_datetime(four_hourly.ts, utc=True).tz_convert(NY)
    assert set(local.hour) == {17, 21, 1, 5, 9, 13}
    weekly = resample(forex_minutes, Timeframe.M1, Timeframe.W1, FOREX_CALENDAR)
    first_bar = pd.to_datetime(forex_minutes.ts[0], utc=True).tz_convert(NY)
    assert first_bar.day_name() == "Sunday" and first_bar.hour == 17
    assert [str(d.date()) for d in pd.to_datetime(weekly.ts, utc=True)] == ["2024-03-04", "2024-03-11"]
    assert weekly.open[0] == forex_minutes.open[0]


def test_real_daily_equity_to_weekly_matches_pandas(aapl_daily: Bars) -> None:
    ours = resample(aapl_daily, Timeframe.D1, Timeframe.W1, US_EQUITY_CALENDAR)
    assert_matches(ours, frame_of(aapl_daily).resample("W-MON", label="left", closed="left").agg(AGG))


def test_real_hourly_forex_to_daily_uses_new_york_17h_boundaries(eurusd_hourly: Bars) -> None:
    ours = resample(eurusd_hourly, Timeframe.H1, Timeframe.D1, FOREX_CALENDAR)
    assert_matches(ours, pandas_rolling_day(frame_of(eurusd_hourly), Timeframe.D1, 17))
    assert set(pd.to_datetime(ours.ts, utc=True).day_of_week) <= {0, 1, 2, 3, 4}


def test_partition_seams_are_stitched(crypto_minutes: Bars) -> None:
    whole = resample(crypto_minutes, Timeframe.M1, Timeframe.W1, CRYPTO_CALENDAR)
    cut = len(crypto_minutes) // 3
    parts = [
        resample(crypto_minutes.take(slice(0, cut)), Timeframe.M1, Timeframe.W1, CRYPTO_CALENDAR),
        resample(crypto_minutes.take(slice(cut, None)), Timeframe.M1, Timeframe.W1, CRYPTO_CALENDAR),
    ]
    assert merge_adjacent_buckets(parts).equals(whole)


def test_coarser_to_finer_is_refused(aapl_daily: Bars) -> None:
    with pytest.raises(TimeframeNotServable):
        resample(aapl_daily, Timeframe.D1, Timeframe.H1, US_EQUITY_CALENDAR)
