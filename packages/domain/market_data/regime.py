"""Pre-strategy regime snapshot: which strategy family the recent market behaviour favours.

For a trading frequency and holding period the snapshot picks a primary timeframe (where a typical
holding spans at least ~10 bars) and a higher context timeframe, computes trend, mean-reversion
and volatility features on both, and scores three families in [0, 1]:

- ``trend_continuation``: directional strength (ADX), path efficiency (Kaufman efficiency ratio),
  persistence (variance ratio > 1, Hurst R/S exponent > 0.5) and a significant regression slope.
- ``mean_reversion``: the mirror image: weak ADX, choppy paths, variance ratio < 1, Hurst < 0.5,
  negative return autocorrelation.
- ``volatility_regime``: how unusual current volatility is against its own history (very high or
  compressed), the short/long volatility ratio and a Bollinger-band squeeze.

Scores are transparent averages of clipped linear sub-scores, each carrying a one-line
explanation, so the model reading the snapshot can quote the evidence. Everything is
deterministic: same bars, same snapshot. Ratios to price and returns are fractions (0.0123 is
1.23%), like every other output of the product; percentiles run from 0 to 100.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import talib

from packages.domain.market_data.bars import Bars, Timeframe
from packages.domain.market_data.timeconv import iso

MIN_BARS = 60
LADDER: tuple[Timeframe, ...] = tuple(Timeframe)


class TradingFrequency(StrEnum):
    SCALPING = "scalping"
    INTRADAY = "intraday"
    SWING = "swing"
    POSITION = "position"


# (finest, coarsest) primary timeframe and typical holding period in minutes per frequency.
_FREQUENCY_BANDS: dict[TradingFrequency, tuple[Timeframe, Timeframe, int]] = {
    TradingFrequency.SCALPING: (Timeframe.M1, Timeframe.M5, 15),
    TradingFrequency.INTRADAY: (Timeframe.M5, Timeframe.H1, 180),
    TradingFrequency.SWING: (Timeframe.H1, Timeframe.D1, 5 * 24 * 60),
    TradingFrequency.POSITION: (Timeframe.D1, Timeframe.W1, 60 * 24 * 60),
}
_BARS_PER_HOLDING = 10


@dataclass(frozen=True, slots=True)
class TimeframeChoice:
    primary: Timeframe
    context: Timeframe | None
    notes: tuple[str, ...]


def choose_timeframes(
    frequency: TradingFrequency | str,
    holding_minutes: float | None = None,
    finest_available: Timeframe | None = None,
) -> TimeframeChoice:
    """Primary and context timeframes for a trading style, limited to what the data can serve."""
    frequency = TradingFrequency(frequency)
    finest, coarsest, default_holding = _FREQUENCY_BANDS[frequency]
    holding = float(holding_minutes) if holding_minutes else float(default_holding)
    band = [tf for tf in LADDER if finest.nanos <= tf.nanos <= coarsest.nanos]
    fitting = [tf for tf in band if holding * 60e9 / tf.nanos >= _BARS_PER_HOLDING]
    primary = fitting[-1] if fitting else band[0]
    notes = []
    if finest_available is not None and primary.nanos < finest_available.nanos:
        notes.append(
            f"{primary.value} bars suit this style but the finest stored data is {finest_available.value}; "
            f"using {finest_available.value}"
        )
        primary = finest_available
    bars_per_trade = holding * 60e9 / primary.nanos
    shortfall = (
        f" (fewer than the {_BARS_PER_HOLDING} aimed for)" if bars_per_trade < _BARS_PER_HOLDING else ""
    )
    notes.append(
        f"holding ~{holding:g} min on {primary.value} bars ≈ {round(bars_per_trade, 1):g} bars per trade{shortfall}"
    )
    context = next((tf for tf in LADDER if tf.nanos >= 4 * primary.nanos), None)
    return TimeframeChoice(primary=primary, context=context, notes=tuple(notes))


def efficiency_ratio(close: np.ndarray, period: int = 20) -> float:
    if close.shape[0] <= period:
        return float("nan")
    window = close[-(period + 1) :]
    path = float(np.abs(np.diff(window)).sum())
    return 0.0 if path == 0 else abs(float(window[-1] - window[0])) / path


def variance_ratio(log_returns: np.ndarray, horizon: int = 4) -> float:
    """Lo-MacKinlay variance ratio: var of ``horizon``-bar returns over ``horizon`` x var of 1-bar returns."""
    if log_returns.shape[0] < horizon * 10:
        return float("nan")
    one_bar = float(np.var(log_returns, ddof=1))
    if one_bar == 0:
        return float("nan")
    summed = np.convolve(log_returns, np.ones(horizon), mode="valid")
    return float(np.var(summed, ddof=1)) / (horizon * one_bar)


def hurst_rescaled_range(log_returns: np.ndarray) -> float:
    """Hurst exponent from the slope of log(R/S) against log(window) over dyadic windows."""
    sizes = [size for size in (8, 16, 32, 64, 128, 256) if size * 2 <= log_returns.shape[0]]
    if len(sizes) < 3:
        return float("nan")
    points = []
    for size in sizes:
        count = log_returns.shape[0] // size
        blocks = log_returns[-count * size :].reshape(count, size)
        deviations = np.cumsum(blocks - blocks.mean(axis=1, keepdims=True), axis=1)
        ranges = deviations.max(axis=1) - deviations.min(axis=1)
        scales = blocks.std(axis=1)
        valid = scales > 0
        if valid.any():
            points.append((math.log(size), math.log(float(np.mean(ranges[valid] / scales[valid])))))
    if len(points) < 3:
        return float("nan")
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


def _autocorrelation(values: np.ndarray, lag: int = 1) -> float:
    if values.shape[0] <= lag + 2:
        return float("nan")
    a, b = values[:-lag], values[lag:]
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _percentile_of_last(series: np.ndarray) -> float:
    finite = series[np.isfinite(series)]
    if finite.shape[0] < 20:
        return float("nan")
    return float((finite < finite[-1]).mean() * 100 + (finite == finite[-1]).mean() * 50)


def _slope_t_stat(log_close: np.ndarray, window: int = 50) -> float:
    y = log_close[-window:]
    if y.shape[0] < 10:
        return float("nan")
    x = np.arange(y.shape[0], dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (slope * x + intercept)
    denominator = math.sqrt(float((residuals**2).sum()) / (y.shape[0] - 2)) / math.sqrt(
        float(((x - x.mean()) ** 2).sum())
    )
    return float("inf") * np.sign(slope) if denominator == 0 else float(slope / denominator)


def ordinal(number: float) -> str:
    """``number`` rounded, in English ordinal form: 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st."""
    if not math.isfinite(number):
        return "unknown"
    whole = round(number)
    suffix = "th" if whole % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(whole % 10, "th")
    return f"{whole}{suffix}"


def compute_features(bars: Bars, lookback: int = 500) -> dict[str, float]:
    """Trend, mean-reversion and volatility features over the last ``lookback`` bars (``bars``, the
    count used, is an int)."""
    recent = bars.tail(lookback)
    close, high, low = recent.close, recent.high, recent.low
    log_close = np.log(close)
    log_returns = np.diff(log_close)
    adx = talib.ADX(high, low, close, timeperiod=14)
    plus_di = talib.PLUS_DI(high, low, close, timeperiod=14)
    minus_di = talib.MINUS_DI(high, low, close, timeperiod=14)
    atr = talib.ATR(high, low, close, timeperiod=14)
    rolling_vol = talib.STDDEV(np.concatenate(([0.0], log_returns)), timeperiod=20, nbdev=1.0)
    rolling_vol[:20] = np.nan
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
    bandwidth = (upper - lower) / middle
    short_vol = float(np.std(log_returns[-10:], ddof=1)) if log_returns.shape[0] > 10 else float("nan")
    long_vol = float(np.std(log_returns[-100:], ddof=1)) if log_returns.shape[0] > 100 else float("nan")
    return {
        "bars": len(recent),
        "adx": float(adx[-1]),
        "plus_di": float(plus_di[-1]),
        "minus_di": float(minus_di[-1]),
        "efficiency_ratio": efficiency_ratio(close, 20),
        "variance_ratio_4": variance_ratio(log_returns, 4),
        "hurst_rs": hurst_rescaled_range(log_returns),
        "autocorr_lag1": _autocorrelation(log_returns, 1),
        "slope_t_stat": _slope_t_stat(log_close, 50),
        "atr_to_price": float(atr[-1] / close[-1]),
        "realized_vol": float(rolling_vol[-1]),
        "vol_percentile": _percentile_of_last(rolling_vol),
        "vol_ratio_short_long": short_vol / long_vol
        if long_vol and math.isfinite(long_vol)
        else float("nan"),
        "bandwidth_percentile": _percentile_of_last(bandwidth),
        "return_over_lookback": float(close[-1] / close[0] - 1),
    }


def _clip01(value: float) -> float:
    return 0.0 if not math.isfinite(value) else min(1.0, max(0.0, value))


def _score(parts: list[tuple[float, float, str]]) -> dict[str, Any]:
    """Weighted mean of (sub-score, weight, explanation), skipping sub-scores that were NaN."""
    usable = [(s, w, text) for s, w, text in parts if math.isfinite(s)]
    if not usable:
        return {"score": 0.0, "explanations": ["not enough data"]}
    total = sum(w for _, w, _ in usable)
    score = sum(_clip01(s) * w for s, w, _ in usable) / total
    ranked = sorted(usable, key=lambda item: -abs(_clip01(item[0]) - 0.5) * item[1])
    return {"score": round(score, 4), "explanations": [text for _, _, text in ranked]}


def score_families(
    primary: Mapping[str, float], context: Mapping[str, float] | None = None
) -> dict[str, dict[str, Any]]:
    f = primary
    adx, er, vr, hurst = f["adx"], f["efficiency_ratio"], f["variance_ratio_4"], f["hurst_rs"]
    ac, t_stat = f["autocorr_lag1"], f["slope_t_stat"]
    direction = "up" if f["plus_di"] >= f["minus_di"] else "down"
    trend_parts = [
        (
            (adx - 15) / 20,
            2.0,
            f"ADX {adx:.1f} ({'trending' if adx >= 25 else 'weak trend' if adx >= 18 else 'no trend'}, direction {direction})",
        ),
        (
            (er - 0.15) / 0.35,
            1.5,
            f"efficiency ratio {er:.2f} ({'clean directional path' if er >= 0.4 else 'noisy path'})",
        ),
        (
            (vr - 0.9) / 0.3,
            1.0,
            f"variance ratio(4) {vr:.2f} ({'persistent' if vr > 1.05 else 'anti-persistent' if vr < 0.95 else 'random-walk-like'})",
        ),
        (
            (hurst - 0.45) / 0.15,
            1.0,
            f"Hurst R/S {hurst:.2f} ({'trending memory' if hurst > 0.55 else 'mean-reverting memory' if hurst < 0.45 else 'no memory'})",
        ),
        ((abs(t_stat) - 2) / 6, 1.0, f"regression slope t-stat {t_stat:.1f} over 50 bars"),
    ]
    reversion_parts = [
        ((28 - adx) / 15, 2.0, f"ADX {adx:.1f} ({'range-bound' if adx < 20 else 'directional pressure'})"),
        ((0.35 - er) / 0.25, 1.5, f"efficiency ratio {er:.2f} ({'choppy' if er < 0.25 else 'directional'})"),
        (
            (1.05 - vr) / 0.3,
            1.0,
            f"variance ratio(4) {vr:.2f} ({'reverting' if vr < 0.95 else 'not reverting'})",
        ),
        ((0.55 - hurst) / 0.15, 1.0, f"Hurst R/S {hurst:.2f}"),
        ((0.02 - ac) / 0.12, 1.0, f"lag-1 return autocorrelation {ac:+.3f}"),
    ]
    pct, bw, ratio = f["vol_percentile"], f["bandwidth_percentile"], f["vol_ratio_short_long"]
    volatility_parts = [
        (
            (abs(pct - 50) - 20) / 30,
            2.0,
            f"realized volatility at the {ordinal(pct)} percentile of its history",
        ),
        (
            (25 - bw) / 25,
            1.0,
            f"Bollinger bandwidth at the {ordinal(bw)} percentile ({'squeeze' if bw < 20 else 'normal width'})",
        ),
        (
            (abs(math.log(ratio)) if ratio > 0 and math.isfinite(ratio) else float("nan")) / math.log(2),
            1.0,
            f"short/long volatility ratio {ratio:.2f}",
        ),
        ((f["atr_to_price"] - 0.005) / 0.03, 0.5, f"ATR {f['atr_to_price']:.2%} of price"),
    ]
    if context is not None:
        agreement = (
            context["efficiency_ratio"] if math.isfinite(context["efficiency_ratio"]) else float("nan")
        )
        trend_parts.append(
            (
                (context["adx"] - 15) / 20,
                1.0,
                f"context timeframe ADX {context['adx']:.1f}, efficiency ratio {agreement:.2f}",
            )
        )
        reversion_parts.append(
            ((28 - context["adx"]) / 15, 0.5, f"context timeframe ADX {context['adx']:.1f}")
        )
    return {
        "trend_continuation": _score(trend_parts),
        "mean_reversion": _score(reversion_parts),
        "volatility_regime": _score(volatility_parts),
    }


def regime_snapshot(
    bars_by_timeframe: Mapping[Timeframe, Bars],
    choice: TimeframeChoice,
    *,
    symbol: str,
    frequency: TradingFrequency | str,
    lookback: int = 500,
) -> dict[str, Any]:
    """The JSON-serialisable snapshot for ``choice``'s timeframes (bars supplied by the caller)."""
    primary_bars = bars_by_timeframe[choice.primary]
    if len(primary_bars) < MIN_BARS:
        raise ValueError(
            f"{symbol}: {len(primary_bars)} {choice.primary.value} bars; at least {MIN_BARS} needed"
        )
    primary = compute_features(primary_bars, lookback)
    context_bars = bars_by_timeframe.get(choice.context) if choice.context is not None else None
    context = (
        compute_features(context_bars, lookback)
        if context_bars is not None and len(context_bars) >= MIN_BARS
        else None
    )
    families = score_families(primary, context)
    ranked = sorted(families, key=lambda name: -families[name]["score"])
    return {
        "symbol": symbol,
        "frequency": TradingFrequency(frequency).value,
        "timeframes": {
            "primary": choice.primary.value,
            "context": choice.context.value if context is not None and choice.context else None,
        },
        "notes": list(choice.notes),
        "as_of": iso(int(primary_bars.ts[-1])),
        "features": {
            "primary": {k: _rounded(v) for k, v in primary.items()},
            "context": None if context is None else {k: _rounded(v) for k, v in context.items()},
        },
        "families": families,
        "leading_family": ranked[0],
    }


def _rounded(value: float) -> float | None:
    """Six decimals; integers (the bar count) stay integers."""
    if isinstance(value, int):
        return value
    return round(value, 6) if math.isfinite(value) else None
