"""Catalogue entries TA-Lib does not provide, built from TA-Lib primitives or numba loops.

- ``zscore``: (source - SMA) / population standard deviation over ``period`` bars.
- ``rolling_quantile``: linearly interpolated quantile of the last ``period`` values (the same
  interpolation as numpy's and pandas' default).
- ``hurst``: Hurst-style persistence from how the size of log-price changes grows with the lag:
  the slope of log RMS(x[t] - x[t-lag]) against log lag, lags 1..max_lag, inside a rolling
  window of ``period`` bars. About 0.5 for a random walk (slightly less on short windows), above
  for trending (persistent) and below for mean-reverting series.
- ``volatility_regime_ratio``: short-window over long-window standard deviation of log returns.
- ``vwap``: rolling, session-less VWAP of the typical price over the last ``period`` bars. It is
  deliberately not anchored to a session or to the start of the data, so backtests and the live
  runtime (which sees a shorter window of history) compute the same value.
"""

from __future__ import annotations

from collections.abc import Mapping

import numba
import numpy as np
import talib

from packages.domain.strategy.indicators.spec import (
    SOURCE_INPUT,
    FloatArray,
    IndicatorSpec,
    OutputSpec,
    ParamConstraint,
    Params,
    ParamSpec,
    less_than,
    period_param,
)


@numba.njit(cache=True)
def _rolling_quantile(values: FloatArray, period: int, quantile: float) -> FloatArray:
    """Keeps the window sorted (insert new, delete old: O(period) per bar); NaN windows give NaN."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    window = np.empty(period + 1)  # one extra slot: a value is inserted before the oldest leaves
    size = 0
    nan_count = 0
    for i in range(n):
        incoming = values[i]
        if np.isnan(incoming):
            nan_count += 1
        else:
            position = np.searchsorted(window[:size], incoming)
            window[position + 1 : size + 1] = window[position:size].copy()
            window[position] = incoming
            size += 1
        if i >= period:
            outgoing = values[i - period]
            if np.isnan(outgoing):
                nan_count -= 1
            else:
                position = np.searchsorted(window[:size], outgoing)
                window[position : size - 1] = window[position + 1 : size].copy()
                size -= 1
        if i >= period - 1 and nan_count == 0:
            rank = quantile * (period - 1)
            lower = int(np.floor(rank))
            upper = min(lower + 1, period - 1)
            fraction = rank - lower
            out[i] = window[lower] + (window[upper] - window[lower]) * fraction
    return out


@numba.njit(cache=True)
def _hurst(log_prices: FloatArray, period: int, max_lag: int) -> FloatArray:
    """Rolling sums of squared lagged differences, one per lag.

    The sums are rebuilt from scratch every ``4 * period`` bars so that rounding from adding and
    removing terms cannot accumulate over long series.
    """
    n = log_prices.shape[0]
    out = np.full(n, np.nan)
    lags = np.arange(1, max_lag + 1)
    log_lags = np.log(lags.astype(np.float64))
    centred = log_lags - log_lags.mean()
    denominator = (centred * centred).sum()
    squares = np.zeros(max_lag)
    bad = 0  # non-finite log prices inside the window
    stale = True  # the sums do not describe the previous window
    for i in range(n):
        if not np.isfinite(log_prices[i]):
            bad += 1
        if i >= period and not np.isfinite(log_prices[i - period]):
            bad -= 1
        if i < period - 1:
            continue
        start = i - period + 1
        if bad > 0:
            stale = True
            continue
        rebuild = stale or (i - (period - 1)) % (4 * period) == 0
        stale = False
        for k in range(max_lag):
            lag = k + 1
            if rebuild:
                total = 0.0
                for t in range(start + lag, i + 1):
                    d = log_prices[t] - log_prices[t - lag]
                    total += d * d
                squares[k] = total
            else:
                new = log_prices[i] - log_prices[i - lag]
                old = log_prices[start - 1 + lag] - log_prices[start - 1]
                squares[k] += new * new - old * old
        slope = 0.0
        valid = True
        for k in range(max_lag):
            mean_square = squares[k] / (period - (k + 1))
            if mean_square <= 0.0:
                valid = False
                break
            slope += centred[k] * 0.5 * np.log(mean_square)
        if valid:
            out[i] = slope / denominator
    return out


def _zscore(inputs: Mapping[str, FloatArray], params: Params) -> dict[str, FloatArray]:
    source = inputs[SOURCE_INPUT]
    period = int(params["period"])
    mean = talib.SMA(source, period)
    deviation = talib.STDDEV(source, period, 1.0)
    # A flat window has no spread: the score is undefined there, not infinite.
    flat = ~(deviation > 1e-12 * np.maximum(np.abs(mean), 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (source - mean) / deviation
    score[flat] = np.nan
    score[: period - 1] = np.nan
    return {"value": score}


def _quantile(inputs: Mapping[str, FloatArray], params: Params) -> dict[str, FloatArray]:
    source = np.ascontiguousarray(inputs[SOURCE_INPUT], dtype=np.float64)
    return {"value": _rolling_quantile(source, int(params["period"]), float(params["quantile"]))}


def _hurst_exponent(inputs: Mapping[str, FloatArray], params: Params) -> dict[str, FloatArray]:
    source = inputs[SOURCE_INPUT]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_prices = np.where(source > 0, np.log(np.where(source > 0, source, 1.0)), np.nan)
    return {"value": _hurst(np.ascontiguousarray(log_prices), int(params["period"]), int(params["max_lag"]))}


def _log_returns(source: FloatArray) -> FloatArray:
    returns = np.full(source.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = source[1:] / source[:-1]
        returns[1:] = np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)), np.nan)
    return returns


def _volatility_regime(inputs: Mapping[str, FloatArray], params: Params) -> dict[str, FloatArray]:
    returns = _log_returns(inputs[SOURCE_INPUT])
    fast = talib.STDDEV(returns, int(params["fast_period"]), 1.0)
    slow = talib.STDDEV(returns, int(params["slow_period"]), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(slow > 0, fast / slow, np.nan)
    ratio[: int(params["slow_period"])] = np.nan
    return {"value": ratio}


def _vwap(inputs: Mapping[str, FloatArray], params: Params) -> dict[str, FloatArray]:
    period = int(params["period"])
    typical = (inputs["high"] + inputs["low"] + inputs["close"]) / 3.0
    volume = inputs["volume"]
    weighted = talib.SUM(typical * volume, period)
    total = talib.SUM(volume, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(total > 0, weighted / total, np.nan)
    return {"value": vwap}


def _half_period_lag(params: Params) -> bool:
    return int(params["max_lag"]) * 2 <= int(params["period"])


def custom_indicators() -> list[IndicatorSpec]:
    return [
        IndicatorSpec(
            name="zscore",
            category="statistic",
            description="Z-score: (source - SMA) / population standard deviation over period bars.",
            inputs=(SOURCE_INPUT,),
            params=(period_param("period", 20, "Number of bars in the window."),),
            outputs=(OutputSpec("value", "standard deviations from the rolling mean"),),
            compute=_zscore,
            warmup=lambda params: int(params["period"]) - 1,
            backend="custom",
        ),
        IndicatorSpec(
            name="rolling_quantile",
            category="statistic",
            description="Linearly interpolated quantile of the source over the last period bars.",
            inputs=(SOURCE_INPUT,),
            params=(
                period_param("period", 20, "Number of bars in the window."),
                ParamSpec("quantile", "float", 0.5, "Quantile to report, 0..1.", minimum=0.0, maximum=1.0),
            ),
            outputs=(OutputSpec("value", "the quantile of the window"),),
            compute=_quantile,
            warmup=lambda params: int(params["period"]) - 1,
            backend="custom",
        ),
        IndicatorSpec(
            name="hurst",
            category="regime",
            description="Hurst-style persistence of log prices over period bars: >0.5 trending, <0.5 mean-reverting.",
            inputs=(SOURCE_INPUT,),
            params=(
                period_param("period", 100, "Number of bars in the window.", minimum=16),
                period_param(
                    "max_lag", 16, "Longest lag of the differences (at most period / 2).", minimum=4
                ),
            ),
            outputs=(OutputSpec("value", "estimated Hurst exponent", (0.0, 1.0)),),
            compute=_hurst_exponent,
            warmup=lambda params: int(params["period"]) - 1,
            backend="custom",
            constraints=(
                ParamConstraint(
                    ("max_lag", "period"),
                    "max_lag * 2 <= period",
                    _half_period_lag,
                    "Lower max_lag to at most half of period, or lengthen period: the longest lag "
                    "needs as many differences inside the window as it spans.",
                ),
            ),
        ),
        IndicatorSpec(
            name="volatility_regime_ratio",
            category="regime",
            description="Short over long standard deviation of log returns: >1 volatility expanding, <1 contracting.",
            inputs=(SOURCE_INPUT,),
            params=(
                period_param("fast_period", 20, "Window of the short-term volatility."),
                period_param("slow_period", 100, "Window of the long-term volatility."),
            ),
            outputs=(OutputSpec("value", "short-term / long-term volatility"),),
            compute=_volatility_regime,
            warmup=lambda params: int(params["slow_period"]),
            backend="custom",
            constraints=(
                less_than(
                    "fast_period",
                    "slow_period",
                    "the ratio is short-term over long-term volatility; reversed it reads upside "
                    "down, and equal periods give a constant 1.",
                ),
            ),
        ),
        IndicatorSpec(
            name="vwap",
            category="volume",
            description="Rolling VWAP of the typical price over the last period bars (no session anchor).",
            inputs=("high", "low", "close", "volume"),
            params=(period_param("period", 20, "Number of bars in the window."),),
            outputs=(OutputSpec("value", "volume-weighted average typical price"),),
            compute=_vwap,
            warmup=lambda params: int(params["period"]) - 1,
            backend="custom",
        ),
    ]
