"""What the regime snapshot says: ordinals, notes about the timeframe actually used, feature units."""

from __future__ import annotations

import json
import math
import re

import pytest
import talib

from packages.domain.market_data.bars import Bars, Timeframe
from packages.domain.market_data.regime import choose_timeframes, regime_snapshot, score_families
from packages.domain.market_data.resample import resample
from packages.domain.market_data.sessions import US_EQUITY_CALENDAR

NEUTRAL_FEATURES = {
    "adx": 20.0,
    "plus_di": 20.0,
    "minus_di": 20.0,
    "efficiency_ratio": 0.3,
    "variance_ratio_4": 1.0,
    "hurst_rs": 0.5,
    "autocorr_lag1": 0.0,
    "slope_t_stat": 1.0,
    "atr_to_price": 0.0123,
    "vol_ratio_short_long": 1.0,
}


def _english_ordinal(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


@pytest.mark.parametrize("percentile", [0, 1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 50, 100])
def test_percentiles_are_written_with_english_ordinals(percentile: int) -> None:
    features = {
        **NEUTRAL_FEATURES,
        "vol_percentile": float(percentile),
        "bandwidth_percentile": float(percentile),
    }
    explanations = score_families(features)["volatility_regime"]["explanations"]
    ordinal = _english_ordinal(percentile)
    assert f"realized volatility at the {ordinal} percentile of its history" in explanations
    assert any(text.startswith(f"Bollinger bandwidth at the {ordinal} percentile") for text in explanations)
    assert "ATR 1.23% of price" in explanations


def _bars_per_trade(note: str, timeframe: Timeframe) -> float:
    match = re.search(rf"on {timeframe.value} bars ≈ ([0-9.]+) bars per trade", note)
    assert match, note
    return float(match.group(1))


def test_notes_describe_the_timeframe_actually_used() -> None:
    holding = 7200  # five days
    fallback = choose_timeframes("swing", holding, finest_available=Timeframe.D1)
    assert fallback.primary == Timeframe.D1
    described = [note for note in fallback.notes if "bars per trade" in note]
    assert len(described) == 1, fallback.notes
    assert _bars_per_trade(described[0], Timeframe.D1) == holding / (24 * 60)
    assert not any("on 4h bars" in note for note in fallback.notes)
    assert any("4h" in note and "1d" in note for note in fallback.notes)  # why 1d rather than 4h

    served = choose_timeframes("swing", holding, finest_available=Timeframe.H1)
    assert served.primary == Timeframe.H4
    assert [_bars_per_trade(note, Timeframe.H4) for note in served.notes] == [holding / 240]


def test_features_are_integers_and_fractions(aapl_daily: Bars) -> None:
    choice = choose_timeframes("position", finest_available=Timeframe.D1)
    data = {
        Timeframe.D1: aapl_daily,
        Timeframe.W1: resample(aapl_daily, Timeframe.D1, Timeframe.W1, US_EQUITY_CALENDAR),
    }
    snapshot = json.loads(json.dumps(regime_snapshot(data, choice, symbol="AAPL", frequency="position")))
    primary = snapshot["features"]["primary"]
    assert primary["bars"] == 500 and type(primary["bars"]) is int
    assert type(snapshot["features"]["context"]["bars"]) is int
    assert not [name for name in primary if name.endswith("_pct")]

    recent = aapl_daily.tail(500)
    atr = talib.ATR(recent.high, recent.low, recent.close, timeperiod=14)
    assert primary["atr_to_price"] == pytest.approx(atr[-1] / recent.close[-1], abs=1e-6)
    assert 0 < primary["atr_to_price"] < 0.2
    assert primary["return_over_lookback"] == pytest.approx(recent.close[-1] / recent.close[0] - 1, abs=1e-6)
    assert math.isfinite(primary["return_over_lookback"]) and primary["return_over_lookback"] > -1
    atr_text = f"ATR {primary['atr_to_price']:.2%} of price"
    assert atr_text in snapshot["families"]["volatility_regime"]["explanations"]
