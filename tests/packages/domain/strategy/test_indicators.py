"""Indicator catalogue: metadata, warm-up, no look-ahead, and values against independent formulas.

Reference values are computed here with pandas/numpy from the textbook definitions, never by
calling the catalogue implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from packages.domain.strategy.indicators import CATEGORIES, catalogue_document, get_indicator, list_indicators
from packages.domain.strategy.indicators.spec import SOURCE_INPUT, IndicatorSpec


def _inputs(spec: IndicatorSpec, data: dict[str, Any], rows: slice = slice(None)) -> dict[str, np.ndarray]:
    return {name: data["close" if name == SOURCE_INPUT else name][rows] for name in spec.inputs}


def _compute(name: str, data: dict[str, Any], **params: Any) -> dict[str, np.ndarray]:
    spec = get_indicator(name)
    assert spec is not None
    return spec.compute(_inputs(spec, data), spec.resolve_params(params))


def _assert_close(
    actual: np.ndarray, expected: np.ndarray | pd.Series, start: int = 0, rtol: float = 1e-9
) -> None:
    expected_values = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual[start:], expected_values[start:], rtol=rtol, atol=1e-9, equal_nan=True)


def test_catalogue_has_at_least_80_well_formed_entries() -> None:
    entries = list_indicators()
    assert len(entries) >= 80
    assert len({entry.name for entry in entries}) == len(entries)
    for entry in entries:
        assert entry.category in CATEGORIES
        assert entry.description and entry.description[0].isupper()
        assert entry.outputs and len(set(entry.output_names)) == len(entry.outputs)
        for param in entry.params:
            if param.type == "enum":
                assert param.default in param.choices
            else:
                assert param.minimum is not None and param.maximum is not None
                assert param.minimum <= float(param.default) <= param.maximum
    document = catalogue_document()
    assert len(document["indicators"]) == len(entries)
    names = {entry.name for entry in entries}
    required = {
        "zscore",
        "rolling_quantile",
        "hurst",
        "efficiency_ratio",
        "volatility_regime_ratio",
        "vwap",
        "supertrend",
        "donchian",
        "keltner",
        "sma",
        "ema",
        "rsi",
        "macd",
        "bbands",
        "atr",
        "stoch",
        "adx",
    }
    assert required <= names


@pytest.mark.parametrize("spec", list_indicators(), ids=lambda spec: spec.name)
def test_warmup_is_the_first_defined_value_and_no_lookahead(
    spec: IndicatorSpec, msft_columns: dict[str, Any]
) -> None:
    params = spec.resolve_params({})
    full = spec.compute(_inputs(spec, msft_columns), params)
    cut = 900
    truncated = spec.compute(_inputs(spec, msft_columns, slice(0, cut)), params)
    warmup = spec.warmup(params)
    for name, values in full.items():
        defined = np.isfinite(values)
        assert int(np.argmax(defined)) == warmup, name
        assert not defined[:warmup].any() and defined[warmup:].all(), name
        # Values up to bar k never depend on bars after k.
        np.testing.assert_array_equal(values[:cut], truncated[name], err_msg=name)


@pytest.mark.parametrize("spec", [s for s in list_indicators() if s.params], ids=lambda spec: spec.name)
def test_parameter_bounds_are_accepted(spec: IndicatorSpec, msft_columns: dict[str, Any]) -> None:
    for pick in (min, max):
        given: dict[str, Any] = {}
        for param in spec.params:
            if param.type == "enum":
                given[param.name] = param.choices[-1] if pick is max else param.choices[0]
            else:
                bound = pick(
                    param.minimum, min(param.maximum, 60.0 if param.type == "int" else param.maximum)
                )
                given[param.name] = int(bound) if param.type == "int" else bound
        resolved = spec.resolve_params(given)
        if not all(constraint.holds(resolved) for constraint in spec.constraints):
            continue
        outputs = spec.compute(_inputs(spec, msft_columns), resolved)
        warmup = spec.warmup(resolved)
        for values in outputs.values():
            assert values.shape == msft_columns["close"].shape
            assert not np.isfinite(values[:warmup]).any()


def test_moving_averages_and_bands(msft_columns: dict[str, Any]) -> None:
    close = msft_columns["frame"]["Close"]
    _assert_close(_compute("sma", msft_columns, period=20)["value"], close.rolling(20).mean())
    # TA-Lib's EMA is seeded with the SMA of the first period values, then recursive.
    seeded = close.copy()
    seeded.iloc[:9] = np.nan
    seeded.iloc[9] = close.iloc[:10].mean()
    expected_ema = seeded.ewm(alpha=2 / 11, adjust=False, ignore_na=True).mean()
    expected_ema.iloc[:9] = np.nan
    _assert_close(_compute("ema", msft_columns, period=10)["value"], expected_ema)
    bands = _compute("bbands", msft_columns, period=20, dev_up=2.0, dev_down=1.5)
    middle = close.rolling(20).mean()
    spread = close.rolling(20).std(ddof=0)
    _assert_close(bands["middle"], middle)
    _assert_close(bands["upper"], middle + 2.0 * spread, rtol=1e-7)
    _assert_close(bands["lower"], middle - 1.5 * spread, rtol=1e-7)
    weights = np.arange(1, 11, dtype=float)
    expected_wma = close.rolling(10).apply(lambda window: np.dot(window, weights) / weights.sum(), raw=True)
    _assert_close(_compute("wma", msft_columns, period=10)["value"], expected_wma)


def _wilder(values: pd.Series, period: int) -> pd.Series:
    return values.ewm(alpha=1 / period, adjust=False).mean()


def test_oscillators_after_seed_convergence(msft_columns: dict[str, Any]) -> None:
    frame = msft_columns["frame"]
    close, high, low = frame["Close"], frame["High"], frame["Low"]
    change = close.diff()
    gains = _wilder(change.clip(lower=0).fillna(0), 14)
    losses = _wilder((-change).clip(lower=0).fillna(0), 14)
    expected_rsi = 100 - 100 / (1 + gains / losses)
    # Recursive smoothers differ only by their seed, which decays as (13/14)^k.
    _assert_close(_compute("rsi", msft_columns, period=14)["value"], expected_rsi, start=600, rtol=1e-6)

    true_range = pd.concat(
        [high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1
    ).max(axis=1)
    atr = _compute("atr", msft_columns, period=14)["value"]
    _assert_close(atr, _wilder(true_range, 14), start=600, rtol=1e-6)

    macd = _compute("macd", msft_columns, fast_period=12, slow_period=26, signal_period=9)
    line = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    signal = line.ewm(span=9, adjust=False).mean()
    _assert_close(macd["macd"], line, start=600, rtol=1e-6)
    _assert_close(macd["signal"], signal, start=600, rtol=1e-6)
    _assert_close(macd["histogram"], line - signal, start=600, rtol=1e-5)

    highest, lowest = high.rolling(14).max(), low.rolling(14).min()
    _assert_close(
        _compute("willr", msft_columns, period=14)["value"], -100 * (highest - close) / (highest - lowest)
    )
    _assert_close(_compute("roc", msft_columns, period=10)["value"], (close / close.shift(10) - 1) * 100)
    stoch = _compute("stochf", msft_columns, fastk_period=14, fastd_period=3, fastd_ma_type="sma")
    raw_k = 100 * (close - lowest) / (highest - lowest)
    # Both outputs start where %D is defined.
    _assert_close(stoch["k"], raw_k, start=15, rtol=1e-7)
    _assert_close(stoch["d"], raw_k.rolling(3).mean(), start=15, rtol=1e-7)


def test_volume_indicators(msft_columns: dict[str, Any]) -> None:
    frame = msft_columns["frame"]
    close, volume = frame["Close"], frame["Volume"]
    direction = np.sign(close.diff()).fillna(0)
    expected_obv = volume.iloc[0] + (direction * volume).iloc[1:].cumsum()
    _assert_close(_compute("obv", msft_columns)["value"][1:], expected_obv.to_numpy())
    typical = (frame["High"] + frame["Low"] + close) / 3
    expected_vwap = (typical * volume).rolling(30).sum() / volume.rolling(30).sum()
    _assert_close(_compute("vwap", msft_columns, period=30)["value"], expected_vwap, rtol=1e-8)


def test_channels(msft_columns: dict[str, Any]) -> None:
    frame = msft_columns["frame"]
    high, low, close = frame["High"], frame["Low"], frame["Close"]
    donchian = _compute("donchian", msft_columns, period=55)
    _assert_close(donchian["upper"], high.rolling(55).max())
    _assert_close(donchian["lower"], low.rolling(55).min())
    _assert_close(donchian["middle"], (high.rolling(55).max() + low.rolling(55).min()) / 2)

    keltner = _compute("keltner", msft_columns, period=20, atr_period=10, deviations=1.5)
    true_range = pd.concat(
        [high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1
    ).max(axis=1)
    middle = ((high + low + close) / 3).ewm(span=20, adjust=False).mean()
    atr = _wilder(true_range, 10)
    _assert_close(keltner["middle"], middle, start=600, rtol=1e-6)
    _assert_close(keltner["upper"], middle + 1.5 * atr, start=600, rtol=1e-6)
    _assert_close(keltner["lower"], middle - 1.5 * atr, start=600, rtol=1e-6)


def test_supertrend_follows_the_textbook_recursion(msft_columns: dict[str, Any]) -> None:
    frame = msft_columns["frame"]
    high, low, close = (frame[c].to_numpy() for c in ("High", "Low", "Close"))
    result = _compute("supertrend", msft_columns, period=10, multiplier=3.0)
    true_range = np.maximum(
        high - low, np.maximum(np.abs(high - np.roll(close, 1)), np.abs(low - np.roll(close, 1)))
    )
    true_range[0] = high[0] - low[0]
    atr = pd.Series(true_range).ewm(alpha=1 / 10, adjust=False).mean().to_numpy()
    middle = (high + low) / 2
    upper, lower = middle + 3 * atr, middle - 3 * atr
    final_upper, final_lower = upper.copy(), lower.copy()
    direction = np.ones(len(close))
    for i in range(1, len(close)):
        final_upper[i] = (
            upper[i]
            if upper[i] < final_upper[i - 1] or close[i - 1] > final_upper[i - 1]
            else final_upper[i - 1]
        )
        final_lower[i] = (
            lower[i]
            if lower[i] > final_lower[i - 1] or close[i - 1] < final_lower[i - 1]
            else final_lower[i - 1]
        )
        if close[i] > final_upper[i - 1]:
            direction[i] = 1
        elif close[i] < final_lower[i - 1]:
            direction[i] = -1
        else:
            direction[i] = direction[i - 1]
    line = np.where(direction > 0, final_lower, final_upper)
    start = 600  # after the ATR seed has decayed and both recursions agree on the trend state
    np.testing.assert_array_equal(result["direction"][start:], direction[start:])
    np.testing.assert_allclose(result["line"][start:], line[start:], rtol=1e-6)


def test_statistics_and_regime_indicators(msft_columns: dict[str, Any]) -> None:
    close = msft_columns["frame"]["Close"]
    mean, spread = close.rolling(30).mean(), close.rolling(30).std(ddof=0)
    _assert_close(_compute("zscore", msft_columns, period=30)["value"], (close - mean) / spread, rtol=1e-6)
    _assert_close(
        _compute("rolling_quantile", msft_columns, period=25, quantile=0.3)["value"],
        close.rolling(25).quantile(0.3),
    )
    _assert_close(
        _compute("rolling_quantile", msft_columns, period=7, quantile=1.0)["value"], close.rolling(7).max()
    )
    net = (close - close.shift(20)).abs()
    path = close.diff().abs().rolling(20).sum()
    _assert_close(_compute("efficiency_ratio", msft_columns, period=20)["value"], net / path, rtol=1e-7)
    returns = np.log(close / close.shift())
    ratio = returns.rolling(20).std(ddof=0) / returns.rolling(100).std(ddof=0)
    _assert_close(
        _compute("volatility_regime_ratio", msft_columns, fast_period=20, slow_period=100)["value"],
        ratio,
        rtol=1e-6,
    )


def test_hurst_matches_a_direct_regression(msft_columns: dict[str, Any]) -> None:
    close = msft_columns["close"]
    period, max_lag = 64, 8
    values = _compute("hurst", msft_columns, period=period, max_lag=max_lag)["value"]
    log_prices = np.log(close)
    lags = np.arange(1, max_lag + 1)
    for i in range(period - 1, len(close), 97):
        window = log_prices[i - period + 1 : i + 1]
        spreads = [np.sqrt(np.mean((window[lag:] - window[:-lag]) ** 2)) for lag in lags]
        slope = np.polyfit(np.log(lags), np.log(spreads), 1)[0]
        assert values[i] == pytest.approx(slope, rel=1e-7, abs=1e-9)


def test_hurst_separates_persistent_from_antipersistent_series() -> None:
    # Synthetic series (labelled): a trending random walk with momentum versus an oscillating one.
    rng = np.random.default_rng(7)
    shocks = rng.normal(size=3_000)
    trending = np.empty_like(shocks)
    reverting = np.empty_like(shocks)
    trending[0] = reverting[0] = shocks[0]
    for i in range(1, len(shocks)):
        trending[i] = 0.6 * trending[i - 1] + shocks[i]
        reverting[i] = -0.6 * reverting[i - 1] + shocks[i]
    spec = get_indicator("hurst")
    assert spec is not None
    params = spec.resolve_params({"period": 256, "max_lag": 16})
    high = spec.compute({SOURCE_INPUT: np.exp(np.cumsum(trending) * 0.01)}, params)["value"]
    low = spec.compute({SOURCE_INPUT: np.exp(np.cumsum(reverting) * 0.01)}, params)["value"]
    assert np.nanmean(high) > 0.55 > 0.45 > np.nanmean(low)
