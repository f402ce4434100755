"""Regime snapshot on real and synthetic series; replay clock snapshots; bar container helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from packages.domain.market_data.bars import NS_PER_DAY, NS_PER_HOUR, Bars, Timeframe, merge_bars, sort_unique
from packages.domain.market_data.regime import (
    TradingFrequency,
    choose_timeframes,
    hurst_rescaled_range,
    regime_snapshot,
    variance_ratio,
)
from packages.domain.market_data.replay import ReplayClock, replay_snapshot
from packages.domain.market_data.resample import resample
from packages.domain.market_data.sessions import FOREX_CALENDAR, US_EQUITY_CALENDAR


def bars_from_close(close: np.ndarray, seed: int) -> Bars:
    """SYNTHETIC OHLC around a given close path."""
    rng = np.random.default_rng(seed)
    open_ = np.concatenate(([close[0]], close[:-1]))
    wiggle = np.abs(rng.normal(0, 0.002, close.shape[0])) * close
    ts = np.arange(close.shape[0], dtype=np.int64) * NS_PER_DAY
    return Bars.from_columns(
        ts,
        open_,
        np.maximum(open_, close) + wiggle,
        np.minimum(open_, close) - wiggle,
        close,
        np.full(close.shape[0], 1e6),
    )


def test_timeframe_choice_follows_frequency_holding_and_available_data() -> None:
    assert choose_timeframes("scalping").primary == Timeframe.M1
    assert choose_timeframes("intraday", holding_minutes=240).primary == Timeframe.M15
    swing = choose_timeframes(TradingFrequency.SWING, holding_minutes=3 * 24 * 60)
    assert (swing.primary, swing.context) == (Timeframe.H4, Timeframe.D1)
    position = choose_timeframes("position", finest_available=Timeframe.D1)
    assert (position.primary, position.context) == (Timeframe.D1, Timeframe.W1)
    limited = choose_timeframes("intraday", finest_available=Timeframe.H1)
    assert limited.primary == Timeframe.H1 and any("finest stored" in note for note in limited.notes)


def test_persistence_statistics_separate_trending_from_reverting_returns() -> None:
    rng = np.random.default_rng(11)
    noise = rng.normal(0, 1, 4000)
    persistent = np.convolve(noise, np.ones(8) / 8, mode="valid")  # positively autocorrelated
    reverting = np.diff(noise)  # MA(1) with theta = -1
    assert variance_ratio(persistent, 4) > 1.5
    assert variance_ratio(reverting, 4) < 0.5
    assert hurst_rescaled_range(persistent) > hurst_rescaled_range(noise) > hurst_rescaled_range(reverting)


def test_family_scores_rank_synthetic_regimes() -> None:
    rng = np.random.default_rng(3)
    n = 600
    trend = 100 * np.exp(np.cumsum(0.004 + rng.normal(0, 0.004, n)))
    level = np.zeros(n)
    for i in range(1, n):
        level[i] = -0.6 * level[i - 1] + rng.normal(0, 0.01)
    reverting = 100 * np.exp(level)
    choice = choose_timeframes("position", finest_available=Timeframe.D1)
    up = regime_snapshot(
        {Timeframe.D1: bars_from_close(trend, 1)}, choice, symbol="SYNTH-TREND", frequency="position"
    )
    chop = regime_snapshot(
        {Timeframe.D1: bars_from_close(reverting, 2)}, choice, symbol="SYNTH-MR", frequency="position"
    )
    assert up["leading_family"] == "trend_continuation"
    assert up["families"]["trend_continuation"]["score"] > up["families"]["mean_reversion"]["score"]
    assert chop["families"]["mean_reversion"]["score"] > chop["families"]["trend_continuation"]["score"]


def test_snapshot_on_real_equity_data_is_sane_and_deterministic(aapl_daily: Bars) -> None:
    choice = choose_timeframes("position", finest_available=Timeframe.D1)
    data = {
        Timeframe.D1: aapl_daily,
        Timeframe.W1: resample(aapl_daily, Timeframe.D1, Timeframe.W1, US_EQUITY_CALENDAR),
    }
    first = regime_snapshot(data, choice, symbol="AAPL", frequency="position")
    second = regime_snapshot(data, choice, symbol="AAPL", frequency="position")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["as_of"] == "2013-03-01T00:00:00Z"
    assert first["timeframes"] == {"primary": "1d", "context": "1w"}
    features = first["features"]["primary"]
    assert 0 <= features["adx"] <= 100 and 0 <= features["efficiency_ratio"] <= 1
    assert 0.2 < features["hurst_rs"] < 1.0 and 0 < features["atr_to_price"] < 0.2
    for family in first["families"].values():
        assert 0.0 <= family["score"] <= 1.0 and family["explanations"]


def test_snapshot_on_real_intraday_forex(eurusd_hourly: Bars) -> None:
    choice = choose_timeframes("intraday", finest_available=Timeframe.H1)
    data = {
        Timeframe.H1: eurusd_hourly,
        Timeframe.H4: resample(eurusd_hourly, Timeframe.H1, Timeframe.H4, FOREX_CALENDAR),
    }
    snapshot = regime_snapshot(data, choice, symbol="EURUSD", frequency="intraday")
    assert snapshot["timeframes"] == {"primary": "1h", "context": "4h"}
    assert snapshot["features"]["context"] is not None


def test_snapshot_refuses_too_little_data(aapl_daily: Bars) -> None:
    choice = choose_timeframes("position", finest_available=Timeframe.D1)
    with pytest.raises(ValueError, match="at least"):
        regime_snapshot({Timeframe.D1: aapl_daily.head(20)}, choice, symbol="AAPL", frequency="position")


def test_replay_clock_reveals_bars_only_after_they_close(eurusd_hourly: Bars) -> None:
    start = int(eurusd_hourly.ts[10])
    clock = ReplayClock(start_ns=start, wall_anchor_s=1000.0, speed=3600.0)  # one simulated hour per second
    at_start = replay_snapshot(eurusd_hourly, Timeframe.H1, clock.simulated_ns(1000.0), symbol="EURUSD")
    assert at_start.bar_index == 9  # bar 10 opens now and is still forming
    later = replay_snapshot(eurusd_hourly, Timeframe.H1, clock.simulated_ns(1003.5), symbol="EURUSD")
    assert later.bar_index == 12 and later.bar is not None and later.quote is not None
    assert later.bar["close"] == eurusd_hourly.close[12]
    assert later.quote["bid"] < later.quote["last"] < later.quote["ask"]
    assert clock.wall_time_for(start + 2 * NS_PER_HOUR) == pytest.approx(1002.0)
    before = replay_snapshot(eurusd_hourly, Timeframe.H1, int(eurusd_hourly.ts[0]), symbol="EURUSD")
    assert before.bar is None and not before.exhausted
    end = replay_snapshot(
        eurusd_hourly, Timeframe.H1, int(eurusd_hourly.ts[-1]) + NS_PER_DAY, symbol="EURUSD"
    )
    assert end.exhausted and end.to_dict()["source"] == "replay"
    with pytest.raises(ValueError):
        ReplayClock(start_ns=0, wall_anchor_s=0.0, speed=0)


def test_merge_and_sort_unique_keep_latest_rows() -> None:
    base = Bars.from_columns([1, 2, 3], [1, 1, 1], [2, 2, 2], [0, 0, 0], [1, 1, 1], [5, 5, 5])
    update = Bars.from_columns([3, 4], [9, 9], [9, 9], [9, 9], [9, 9], [7, 7])
    merged = merge_bars(base, update)
    assert merged.ts.tolist() == [1, 2, 3, 4] and merged.close.tolist() == [1, 1, 9, 9]
    messy = Bars.from_columns(
        [3, 1, 3, 2], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [0, 0, 0, 0]
    )
    cleaned = sort_unique(messy)
    assert cleaned.ts.tolist() == [1, 2, 3] and cleaned.close.tolist() == [2, 4, 3]
