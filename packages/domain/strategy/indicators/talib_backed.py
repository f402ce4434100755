"""Catalogue entries computed by TA-Lib.

Inputs, outputs, parameter types and defaults come from TA-Lib's own function metadata
(``talib.abstract``); this module adds what TA-Lib does not publish: readable names, categories,
one-line descriptions, parameter bounds and cross-parameter rules. Warm-up is TA-Lib's
``lookback`` for the given parameters, which is exactly the index of the first defined value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import talib
from talib import abstract

from packages.domain.strategy.indicators.spec import (
    SOURCE_INPUT,
    Category,
    FloatArray,
    IndicatorSpec,
    OutputSpec,
    ParamConstraint,
    Params,
    ParamSpec,
    at_most,
    less_than,
)

MAX_PERIOD = 5_000

# TA-Lib moving-average type codes by readable name (codes 10 and 11 are internal to TA-Lib).
MA_TYPES: dict[str, int] = {
    "sma": 0,
    "ema": 1,
    "wma": 2,
    "dema": 3,
    "tema": 4,
    "trima": 5,
    "kama": 6,
    "mama": 7,
    "t3": 8,
    "hma": 9,
    "zlema": 12,
    "rma": 13,
}
_MA_NAMES = {code: name for name, code in MA_TYPES.items()}

_PARAM_NAMES: dict[str, str] = {
    "timeperiod": "period",
    "fastperiod": "fast_period",
    "slowperiod": "slow_period",
    "signalperiod": "signal_period",
    "matype": "ma_type",
    "fastk_period": "fastk_period",
    "slowk_period": "slowk_period",
    "slowk_matype": "slowk_ma_type",
    "slowd_period": "slowd_period",
    "slowd_matype": "slowd_ma_type",
    "fastd_period": "fastd_period",
    "fastd_matype": "fastd_ma_type",
    "nbdev": "deviations",
    "nbdevup": "dev_up",
    "nbdevdn": "dev_down",
    "wmaperiod": "wma_period",
    "roc1period": "roc1_period",
    "roc2period": "roc2_period",
    "leftbars": "left_bars",
    "rightbars": "right_bars",
    "fastmatype": "fast_ma_type",
    "slowmatype": "slow_ma_type",
    "signalmatype": "signal_ma_type",
    "firstperiod": "first_period",
    "secondperiod": "second_period",
    "timeperiod1": "period1",
    "timeperiod2": "period2",
    "timeperiod3": "period3",
    "atrperiod": "atr_period",
    "fastlimit": "fast_limit",
    "slowlimit": "slow_limit",
    "acceleration": "acceleration",
    "maximum": "maximum",
    "multiplier": "multiplier",
    "vfactor": "volume_factor",
    "percentile": "percentile",
    "rocperiod": "roc_period",
    "stddevperiod": "stddev_period",
    "penetration": "penetration",
}

# Bounds of real-valued TA-Lib parameters (TA-Lib itself accepts almost any value).
_FLOAT_BOUNDS: dict[str, tuple[float, float]] = {
    "nbdev": (0.01, 10.0),
    "nbdevup": (0.0, 10.0),
    "nbdevdn": (0.0, 10.0),
    "penetration": (0.0, 1.0),
    "acceleration": (0.001, 1.0),
    "maximum": (0.001, 1.0),
    "fastlimit": (0.01, 0.99),
    "slowlimit": (0.01, 0.99),
    "vfactor": (0.0, 1.0),
    "multiplier": (0.1, 20.0),
    "percentile": (0.0, 100.0),
}

_PARAM_DESCRIPTIONS: dict[str, str] = {
    "period": "Number of bars in the window.",
    "fast_period": "Window of the fast component.",
    "slow_period": "Window of the slow component.",
    "signal_period": "Window of the signal-line smoothing.",
    "ma_type": "Moving-average type.",
    "fastk_period": "Window of the raw %K.",
    "slowk_period": "Smoothing of %K.",
    "slowk_ma_type": "Moving-average type smoothing %K.",
    "slowd_period": "Smoothing of %D.",
    "slowd_ma_type": "Moving-average type smoothing %D.",
    "fastd_period": "Smoothing of fast %D.",
    "fastd_ma_type": "Moving-average type of fast %D.",
    "deviations": "Multiplier of the deviation (or ATR) band width.",
    "dev_up": "Standard deviations above the middle line.",
    "dev_down": "Standard deviations below the middle line.",
    "wma_period": "Window of the final WMA.",
    "roc1_period": "Window of the first rate of change.",
    "roc2_period": "Window of the second rate of change.",
    "left_bars": "Bars left of the swing point that must be lower (higher).",
    "right_bars": "Bars right of the swing point that must be lower (higher); delays the signal.",
    "fast_ma_type": "Moving-average type of the fast line.",
    "slow_ma_type": "Moving-average type of the slow line.",
    "signal_ma_type": "Moving-average type of the signal line.",
    "first_period": "Window of the first smoothing.",
    "second_period": "Window of the second smoothing.",
    "period1": "Shortest window.",
    "period2": "Middle window.",
    "period3": "Longest window.",
    "atr_period": "Window of the ATR.",
    "fast_limit": "Upper limit of the adaptive smoothing factor.",
    "slow_limit": "Lower limit of the adaptive smoothing factor.",
    "acceleration": "Acceleration factor step.",
    "maximum": "Maximum acceleration factor.",
    "multiplier": "ATR multiplier of the band distance.",
    "volume_factor": "T3 volume factor (0 = EMA-like, 1 = DEMA-like).",
    "percentile": "Percentile to report, 0..100.",
    "roc_period": "Window of the rate of change.",
    "stddev_period": "Window of the standard deviation.",
    "penetration": "Fraction of the body the pattern must penetrate.",
}

_OUTPUT_NAMES: dict[str, str] = {
    "real": "value",
    "integer": "value",
    "upperband": "upper",
    "middleband": "middle",
    "lowerband": "lower",
    "macd": "macd",
    "macdsignal": "signal",
    "macdhist": "histogram",
    "fastk": "k",
    "fastd": "d",
    "slowk": "k",
    "slowd": "d",
    "aroondown": "down",
    "aroonup": "up",
    "inphase": "inphase",
    "quadrature": "quadrature",
    "sine": "sine",
    "leadsine": "lead_sine",
    "min": "min",
    "max": "max",
    "bullpower": "bull_power",
    "bearpower": "bear_power",
    "swinghigh": "swing_high",
    "swinglow": "swing_low",
    "k": "k",
    "d": "d",
    "j": "j",
    "smi": "smi",
    "smisignal": "signal",
    "plusvi": "plus",
    "minusvi": "minus",
    "mama": "mama",
    "fama": "fama",
    "supertrend": "line",
    "trend": "direction",
    "haopen": "open",
    "hahigh": "high",
    "halow": "low",
    "haclose": "close",
}

_OUTPUT_DESCRIPTIONS: dict[str, str] = {
    "value": "the indicator value",
    "upper": "upper band",
    "middle": "middle line",
    "lower": "lower band",
    "macd": "fast MA minus slow MA",
    "signal": "signal line (smoothed main line)",
    "histogram": "main line minus signal line",
    "k": "%K line",
    "d": "%D line (smoothed %K)",
    "j": "J line (3K - 2D)",
    "down": "Aroon down",
    "up": "Aroon up",
    "lead_sine": "sine led by 45 degrees",
    "line": "trailing SuperTrend level",
    "direction": "+1 in an uptrend, -1 in a downtrend",
    "plus": "VI+ line",
    "minus": "VI- line",
    "swing_high": "confirmed swing-high level",
    "swing_low": "confirmed swing-low level",
    "bull_power": "high minus EMA",
    "bear_power": "low minus EMA",
}

_PERCENT_RANGE = (0.0, 100.0)
_SYMMETRIC_PERCENT = (-100.0, 100.0)


@dataclass(frozen=True)
class _Entry:
    name: str
    function: str
    category: Category
    description: str
    # DSL parameter names whose minimum is 1 instead of 2 (1 = no smoothing / one-bar change).
    min_one: tuple[str, ...] = ()
    constraints: tuple[ParamConstraint, ...] = ()
    output_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)


# Cross-parameter rules, each because of what TA-Lib does with the values (checked against it in
# tests/packages/domain/strategy/test_param_conflicts.py).
_SWAPPED_FAST_SLOW = (
    less_than(
        "fast_period",
        "slow_period",
        "TA-Lib swaps the two when fast_period is the larger, and equal periods give a line stuck at zero.",
    ),
)
_SIGN_FLIPPED_FAST_SLOW = (
    less_than(
        "fast_period",
        "slow_period",
        "reversed periods turn the oscillator upside down, and equal periods give a line stuck at zero.",
    ),
)
_MAMA_LIMITS = (
    less_than(
        "slow_limit",
        "fast_limit",
        "the adaptive factor moves from slow_limit in choppy markets up to fast_limit in trends; "
        "reversed limits make it adapt the wrong way, and equal ones do not adapt at all.",
    ),
)
_ULTOSC_ORDER = tuple(
    at_most(
        shorter,
        longer,
        "TA-Lib sorts the three periods, so the 4:2:1 weights would go to other windows than the ones named.",
    )
    for shorter, longer in (("period1", "period2"), ("period2", "period3"))
)
_SAR_STEP = (
    at_most(
        "acceleration",
        "maximum",
        "acceleration is the step by which the factor grows towards maximum; TA-Lib cuts a larger step down to maximum.",
    ),
)

_ENTRIES: tuple[_Entry, ...] = (
    # Overlap studies: moving averages, bands and trailing levels on the price scale.
    _Entry("sma", "SMA", "overlap", "Simple moving average of the source over period bars.", ("period",)),
    _Entry(
        "ema",
        "EMA",
        "overlap",
        "Exponential moving average (alpha 2/(period+1)), seeded by an SMA.",
        ("period",),
    ),
    _Entry(
        "wma", "WMA", "overlap", "Linearly weighted moving average, newest bar weighted most.", ("period",)
    ),
    _Entry(
        "dema",
        "DEMA",
        "overlap",
        "Double exponential moving average (2*EMA - EMA of EMA), less lag.",
        ("period",),
    ),
    _Entry(
        "tema", "TEMA", "overlap", "Triple exponential moving average, even less lag than DEMA.", ("period",)
    ),
    _Entry(
        "trima", "TRIMA", "overlap", "Triangular moving average (an SMA of an SMA), very smooth.", ("period",)
    ),
    _Entry(
        "kama",
        "KAMA",
        "overlap",
        "Kaufman adaptive moving average: fast in trends, flat in noise.",
        ("period",),
    ),
    _Entry(
        "t3",
        "T3",
        "overlap",
        "Tillson T3: six-fold EMA smoothing, volume_factor sets the overshoot.",
        ("period",),
    ),
    _Entry("hma", "HMA", "overlap", "Hull moving average: WMA-based, very little lag.", ("period",)),
    _Entry(
        "zlema",
        "ZLEMA",
        "overlap",
        "Zero-lag EMA: EMA of the source de-lagged by half the period.",
        ("period",),
    ),
    _Entry(
        "rma",
        "RMA",
        "overlap",
        "Wilder's smoothed moving average (alpha 1/period), as used by RSI and ATR.",
        ("period",),
    ),
    _Entry("ma", "MA", "overlap", "Moving average of the type chosen by ma_type.", ("period",)),
    _Entry("vwma", "VWMA", "overlap", "Volume-weighted moving average of the source.", ("period",)),
    _Entry(
        "mama",
        "MAMA",
        "overlap",
        "MESA adaptive moving average (mama) and its following average (fama).",
        constraints=_MAMA_LIMITS,
    ),
    _Entry(
        "ht_trendline", "HT_TRENDLINE", "overlap", "Hilbert-transform instantaneous trendline of the source."
    ),
    _Entry(
        "midpoint", "MIDPOINT", "overlap", "Midpoint (highest + lowest) / 2 of the source over period bars."
    ),
    _Entry(
        "midprice", "MIDPRICE", "overlap", "Midpoint price (highest high + lowest low) / 2 over period bars."
    ),
    _Entry(
        "bbands", "BBANDS", "overlap", "Bollinger Bands: moving average +/- deviations x standard deviation."
    ),
    _Entry(
        "accbands",
        "ACCBANDS",
        "overlap",
        "Acceleration Bands: SMA envelope widened by the relative bar range.",
    ),
    _Entry(
        "donchian",
        "DONCHIAN",
        "overlap",
        "Donchian channel: highest high, lowest low and their midpoint over period bars, current bar included.",
    ),
    _Entry(
        "keltner",
        "KC",
        "overlap",
        "Keltner channel: EMA(period) of the typical price +/- deviations x ATR(atr_period).",
        ("atr_period",),
    ),
    _Entry(
        "supertrend",
        "SUPERTREND",
        "overlap",
        "SuperTrend: hl2 -/+ multiplier x ATR trailing level that flips with the trend; direction +1/-1.",
        output_ranges={"direction": (-1.0, 1.0)},
    ),
    _Entry("sar", "SAR", "overlap", "Parabolic SAR stop-and-reverse level.", constraints=_SAR_STEP),
    # Momentum: oscillators and directional measures.
    _Entry(
        "rsi",
        "RSI",
        "momentum",
        "Relative Strength Index (Wilder), 0..100.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "stoch",
        "STOCH",
        "momentum",
        "Slow stochastic oscillator %K/%D, 0..100.",
        ("fastk_period", "slowk_period", "slowd_period"),
        output_ranges={"k": _PERCENT_RANGE, "d": _PERCENT_RANGE},
    ),
    _Entry(
        "stochf",
        "STOCHF",
        "momentum",
        "Fast stochastic oscillator %K/%D, 0..100.",
        ("fastk_period", "fastd_period"),
        output_ranges={"k": _PERCENT_RANGE, "d": _PERCENT_RANGE},
    ),
    _Entry(
        "stochrsi",
        "STOCHRSI",
        "momentum",
        "Stochastic of the RSI, 0..100.",
        ("fastk_period", "fastd_period"),
        output_ranges={"k": _PERCENT_RANGE, "d": _PERCENT_RANGE},
    ),
    _Entry(
        "kdj",
        "KDJ",
        "momentum",
        "KDJ stochastic: %K, %D and J = 3K - 2D.",
        ("fastk_period", "slowk_period", "slowd_period"),
    ),
    _Entry(
        "smi",
        "SMI",
        "momentum",
        "Stochastic Momentum Index and its signal line, -100..100.",
        output_ranges={"smi": _SYMMETRIC_PERCENT, "signal": _SYMMETRIC_PERCENT},
    ),
    _Entry(
        "macd",
        "MACD",
        "momentum",
        "MACD: EMA(fast) - EMA(slow), its signal EMA and histogram.",
        ("signal_period",),
        _SWAPPED_FAST_SLOW,
    ),
    _Entry(
        "macdext",
        "MACDEXT",
        "momentum",
        "MACD with a selectable moving-average type for each line.",
        ("signal_period",),
        _SWAPPED_FAST_SLOW,
    ),
    _Entry(
        "macdfix",
        "MACDFIX",
        "momentum",
        "MACD with the classic fixed 12/26 periods and a chosen signal period.",
        ("signal_period",),
    ),
    _Entry(
        "apo",
        "APO",
        "momentum",
        "Absolute price oscillator: fast MA minus slow MA.",
        constraints=_SWAPPED_FAST_SLOW,
    ),
    _Entry(
        "ppo",
        "PPO",
        "momentum",
        "Percentage price oscillator: (fast MA - slow MA) / slow MA x 100.",
        constraints=_SWAPPED_FAST_SLOW,
    ),
    _Entry(
        "adx",
        "ADX",
        "momentum",
        "Average directional index: trend strength 0..100, direction-free.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "adxr",
        "ADXR",
        "momentum",
        "ADX rating: average of ADX now and period bars ago.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "dx",
        "DX",
        "momentum",
        "Directional movement index (unsmoothed ADX), 0..100.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "plus_di",
        "PLUS_DI",
        "momentum",
        "Plus directional indicator +DI, 0..100.",
        ("period",),
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "minus_di",
        "MINUS_DI",
        "momentum",
        "Minus directional indicator -DI, 0..100.",
        ("period",),
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry("plus_dm", "PLUS_DM", "momentum", "Plus directional movement (smoothed up-moves).", ("period",)),
    _Entry(
        "minus_dm", "MINUS_DM", "momentum", "Minus directional movement (smoothed down-moves).", ("period",)
    ),
    _Entry(
        "aroon",
        "AROON",
        "momentum",
        "Aroon up/down: bars since the period high/low, scaled 0..100.",
        output_ranges={"up": _PERCENT_RANGE, "down": _PERCENT_RANGE},
    ),
    _Entry(
        "aroonosc",
        "AROONOSC",
        "momentum",
        "Aroon oscillator: Aroon up minus Aroon down, -100..100.",
        output_ranges={"value": _SYMMETRIC_PERCENT},
    ),
    _Entry(
        "bop",
        "BOP",
        "momentum",
        "Balance of power: (close - open) / (high - low), -1..1.",
        output_ranges={"value": (-1.0, 1.0)},
    ),
    _Entry(
        "cci",
        "CCI",
        "momentum",
        "Commodity channel index: typical price's distance from its mean in mean deviations.",
    ),
    _Entry(
        "cmo",
        "CMO",
        "momentum",
        "Chande momentum oscillator (Wilder-smoothed), -100..100.",
        output_ranges={"value": _SYMMETRIC_PERCENT},
    ),
    _Entry(
        "cmou",
        "CMOU",
        "momentum",
        "Chande momentum oscillator, unsmoothed original formula, -100..100.",
        output_ranges={"value": _SYMMETRIC_PERCENT},
    ),
    _Entry("mom", "MOM", "momentum", "Momentum: source minus the source period bars ago.", ("period",)),
    _Entry(
        "roc",
        "ROC",
        "momentum",
        "Rate of change in percent: (source / source period bars ago - 1) x 100.",
        ("period",),
    ),
    _Entry(
        "rocp",
        "ROCP",
        "momentum",
        "Rate of change as a fraction: (source - previous) / previous.",
        ("period",),
    ),
    _Entry("rocr", "ROCR", "momentum", "Rate of change ratio: source / source period bars ago.", ("period",)),
    _Entry("rocr100", "ROCR100", "momentum", "Rate of change ratio on a 100 scale.", ("period",)),
    _Entry("trix", "TRIX", "momentum", "TRIX: one-bar rate of change of a triple-smoothed EMA.", ("period",)),
    _Entry(
        "ultosc",
        "ULTOSC",
        "momentum",
        "Ultimate oscillator combining three periods, 0..100.",
        ("period1", "period2", "period3"),
        _ULTOSC_ORDER,
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "willr",
        "WILLR",
        "momentum",
        "Williams %R: close within the period range, -100..0.",
        output_ranges={"value": (-100.0, 0.0)},
    ),
    _Entry(
        "mfi",
        "MFI",
        "momentum",
        "Money flow index: volume-weighted RSI of the typical price, 0..100.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry(
        "coppock",
        "COPPOCK",
        "momentum",
        "Coppock curve: WMA of the sum of two rates of change.",
        ("wma_period", "roc1_period", "roc2_period"),
    ),
    _Entry(
        "dpo", "DPO", "momentum", "Detrended price oscillator: source minus a displaced SMA (past bars only)."
    ),
    _Entry(
        "eri",
        "ERI",
        "momentum",
        "Elder ray index: bull power (high - EMA) and bear power (low - EMA).",
        ("period",),
    ),
    _Entry(
        "fosc",
        "FOSC",
        "momentum",
        "Forecast oscillator: percent distance of the source from its regression forecast.",
    ),
    _Entry(
        "fractal",
        "FRACTAL",
        "momentum",
        "Williams fractals: swing-high/low levels, reported once right_bars later bars confirm them.",
        ("left_bars", "right_bars"),
    ),
    _Entry(
        "imi",
        "IMI",
        "momentum",
        "Intraday momentum index: RSI built from open-to-close moves, 0..100.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry("qstick", "QSTICK", "momentum", "Qstick: moving average of close - open.", ("period",)),
    _Entry(
        "tsi",
        "TSI",
        "momentum",
        "True strength index: double-smoothed momentum, -100..100.",
        output_ranges={"value": _SYMMETRIC_PERCENT},
    ),
    _Entry("vhf", "VHF", "momentum", "Vertical horizontal filter: trending (high) versus ranging (low)."),
    _Entry("vortex", "VORTEX", "momentum", "Vortex indicator VI+ and VI-.", ("period",)),
    _Entry("wad", "WAD", "momentum", "Williams accumulation/distribution line (cumulative)."),
    _Entry(
        "ao",
        "AO",
        "momentum",
        "Awesome oscillator: SMA(fast) - SMA(slow) of the median price.",
        constraints=_SIGN_FLIPPED_FAST_SLOW,
    ),
    _Entry(
        "ac",
        "AC",
        "momentum",
        "Accelerator oscillator: awesome oscillator minus its SMA.",
        constraints=_SIGN_FLIPPED_FAST_SLOW,
    ),
    # Regime.
    _Entry(
        "efficiency_ratio",
        "ER",
        "regime",
        "Kaufman efficiency ratio: net move over the sum of bar-to-bar moves across period bars, 0..1.",
        output_ranges={"value": (0.0, 1.0)},
    ),
    # Volatility.
    _Entry("atr", "ATR", "volatility", "Average true range (Wilder smoothing).", ("period",)),
    _Entry("natr", "NATR", "volatility", "Normalised ATR: ATR / close x 100.", ("period",)),
    _Entry("trange", "TRANGE", "volatility", "True range of each bar (gap-aware high - low)."),
    _Entry("adr", "ADR", "volatility", "Average bar range: SMA of high - low.", ("period",)),
    _Entry(
        "cvi",
        "CVI",
        "volatility",
        "Chaikin volatility: rate of change of the EMA of high - low.",
        ("roc_period",),
    ),
    _Entry("massi", "MASSI", "volatility", "Mass index: sum of EMA-ratio of bar ranges, flags reversals."),
    _Entry(
        "rvi",
        "RVI",
        "volatility",
        "Relative volatility index: RSI computed on standard deviations, 0..100.",
        ("period",),
        output_ranges={"value": _PERCENT_RANGE},
    ),
    # Volume.
    _Entry("obv", "OBV", "volume", "On-balance volume (cumulative signed volume)."),
    _Entry("ad", "AD", "volume", "Chaikin accumulation/distribution line (cumulative)."),
    _Entry(
        "adosc",
        "ADOSC",
        "volume",
        "Chaikin A/D oscillator: fast EMA minus slow EMA of the A/D line.",
        constraints=_SIGN_FLIPPED_FAST_SLOW,
    ),
    _Entry(
        "cmf",
        "CMF",
        "volume",
        "Chaikin money flow: volume-weighted close location over period bars, -1..1.",
        output_ranges={"value": (-1.0, 1.0)},
    ),
    _Entry("efi", "EFI", "volume", "Elder force index: EMA of price change x volume.", ("period",)),
    _Entry("marketfi", "MARKETFI", "volume", "Market facilitation index: (high - low) / volume."),
    _Entry("nvi", "NVI", "volume", "Negative volume index (cumulative, moves on falling-volume bars)."),
    _Entry("pvi", "PVI", "volume", "Positive volume index (cumulative, moves on rising-volume bars)."),
    _Entry("pvt", "PVT", "volume", "Price volume trend (cumulative volume x relative price change)."),
    _Entry(
        "pvo",
        "PVO",
        "volume",
        "Percentage volume oscillator: PPO applied to volume.",
        constraints=_SWAPPED_FAST_SLOW,
    ),
    _Entry(
        "rvol",
        "RVOL",
        "volume",
        "Relative volume: volume / average volume of the previous period bars.",
        ("period",),
    ),
    # Cycle (Hilbert transform).
    _Entry("ht_dcperiod", "HT_DCPERIOD", "cycle", "Hilbert transform dominant cycle period in bars."),
    _Entry("ht_dcphase", "HT_DCPHASE", "cycle", "Hilbert transform dominant cycle phase in degrees."),
    _Entry("ht_phasor", "HT_PHASOR", "cycle", "Hilbert transform phasor components (in-phase, quadrature)."),
    _Entry("ht_sine", "HT_SINE", "cycle", "Hilbert transform sine wave and lead sine."),
    _Entry(
        "ht_trendmode",
        "HT_TRENDMODE",
        "cycle",
        "Hilbert transform trend mode: 1 trending, 0 cycling.",
        output_ranges={"value": (0.0, 1.0)},
    ),
    # Statistics.
    _Entry("linearreg", "LINEARREG", "statistic", "End point of the least-squares line over period bars."),
    _Entry("linearreg_slope", "LINEARREG_SLOPE", "statistic", "Slope per bar of the least-squares line."),
    _Entry("linearreg_angle", "LINEARREG_ANGLE", "statistic", "Angle in degrees of the least-squares line."),
    _Entry("linearreg_intercept", "LINEARREG_INTERCEPT", "statistic", "Intercept of the least-squares line."),
    _Entry(
        "tsf", "TSF", "statistic", "Time series forecast: the least-squares line projected one bar ahead."
    ),
    _Entry(
        "stddev", "STDDEV", "statistic", "Population standard deviation over period bars, times deviations."
    ),
    _Entry("var", "VAR", "statistic", "Population variance over period bars."),
    _Entry("avgdev", "AVGDEV", "statistic", "Mean absolute deviation from the period mean."),
    _Entry(
        "percentile", "PERCENTILE", "statistic", "Nearest-rank percentile of the source over period bars."
    ),
    _Entry(
        "percentrank",
        "PERCENTRANK",
        "statistic",
        "Percent of the previous period values below the current one.",
        output_ranges={"value": _PERCENT_RANGE},
    ),
    _Entry("max", "MAX", "statistic", "Highest source value over period bars (current bar included)."),
    _Entry("min", "MIN", "statistic", "Lowest source value over period bars (current bar included)."),
    _Entry("sum", "SUM", "statistic", "Sum of the source over period bars."),
    _Entry("minmax", "MINMAX", "statistic", "Lowest and highest source values over period bars."),
    # Price transforms.
    _Entry("avgprice", "AVGPRICE", "price", "Average price (open + high + low + close) / 4."),
    _Entry("medprice", "MEDPRICE", "price", "Median price (high + low) / 2."),
    _Entry("typprice", "TYPPRICE", "price", "Typical price (high + low + close) / 3."),
    _Entry("wclprice", "WCLPRICE", "price", "Weighted close (high + low + 2 x close) / 4."),
    _Entry("ha", "HA", "price", "Heikin-Ashi candles (open, high, low, close)."),
)


def _abstract_function(function: str) -> Any:
    """TA-Lib's metadata object for ``function`` (missing from the package's type stubs)."""
    return abstract.Function(function)  # type: ignore[attr-defined]


def _function_info(function: str) -> dict[str, Any]:
    return dict(_abstract_function(function).info)


def _inputs_of(info: Mapping[str, Any]) -> tuple[str, ...]:
    inputs: list[str] = []
    for key, value in info["input_names"].items():
        if key == "price":
            inputs.append(SOURCE_INPUT)
        elif isinstance(value, list):
            inputs.extend(value)
        else:
            inputs.append(str(value))
    return tuple(inputs)


def _param_spec(entry: _Entry, talib_name: str, default: int | float) -> ParamSpec:
    """TA-Lib reports integer parameters (periods, MA-type codes) with int defaults, reals with floats."""
    name = _PARAM_NAMES[talib_name]
    description = _PARAM_DESCRIPTIONS[name]
    if talib_name.endswith("matype"):
        return ParamSpec(name, "enum", _MA_NAMES[int(default)], description, choices=tuple(MA_TYPES))
    if isinstance(default, int):
        minimum = 1 if name in entry.min_one else 2
        return ParamSpec(name, "int", default, description, minimum=minimum, maximum=MAX_PERIOD)
    low, high = _FLOAT_BOUNDS[talib_name]
    return ParamSpec(name, "float", float(default), description, minimum=low, maximum=high)


@lru_cache(maxsize=4_096)
def _lookback(function: str, talib_params: tuple[tuple[str, int | float], ...]) -> int:
    handle = _abstract_function(function)
    handle.set_parameters(dict(talib_params))
    return int(handle.lookback)


class _TalibIndicator:
    """Computation and warm-up of one TA-Lib function under DSL parameter names."""

    def __init__(
        self, function: str, inputs: tuple[str, ...], outputs: tuple[str, ...], params: tuple[ParamSpec, ...]
    ):
        self.function = function
        self.inputs = inputs
        self.outputs = outputs
        self._talib_names = {_PARAM_NAMES[name]: name for name in _function_info(function)["parameters"]}
        self._enum_params = frozenset(spec.name for spec in params if spec.type == "enum")
        self._callable = getattr(talib, function)

    def talib_params(self, params: Params) -> tuple[tuple[str, int | float], ...]:
        converted: list[tuple[str, int | float]] = []
        for dsl_name, talib_name in self._talib_names.items():
            value = params[dsl_name]
            if dsl_name in self._enum_params:
                converted.append((talib_name, MA_TYPES[str(value)]))
            else:
                converted.append((talib_name, value if isinstance(value, int | float) else float(value)))
        return tuple(converted)

    def warmup(self, params: Params) -> int:
        return _lookback(self.function, self.talib_params(params))

    def compute(self, inputs: Mapping[str, FloatArray], params: Params) -> dict[str, FloatArray]:
        arrays = [np.ascontiguousarray(inputs[name], dtype=np.float64) for name in self.inputs]
        talib_params = self.talib_params(params)
        raw = self._callable(*arrays, **dict(talib_params))
        results = raw if isinstance(raw, tuple) else (raw,)
        lookback = _lookback(self.function, talib_params)
        outputs: dict[str, FloatArray] = {}
        for name, values in zip(self.outputs, results, strict=True):
            array = np.asarray(values, dtype=np.float64)
            if values.dtype.kind == "i":
                # Integer outputs (patterns, trend flags) read 0 during warm-up; make it NaN like the rest.
                array[: min(lookback, array.shape[0])] = np.nan
            outputs[name] = array
        return outputs


def _build(entry: _Entry) -> IndicatorSpec:
    info = _function_info(entry.function)
    params = tuple(_param_spec(entry, name, default) for name, default in info["parameters"].items())
    output_names = tuple(_OUTPUT_NAMES[name] for name in info["output_names"])
    outputs = tuple(
        OutputSpec(
            name,
            _OUTPUT_DESCRIPTIONS.get(name, name.replace("_", " ")),
            entry.output_ranges.get(name),
        )
        for name in output_names
    )
    flags = info["function_flags"] or []
    indicator = _TalibIndicator(entry.function, _inputs_of(info), output_names, params)
    return IndicatorSpec(
        name=entry.name,
        category=entry.category,
        description=entry.description,
        inputs=indicator.inputs,
        params=params,
        outputs=outputs,
        compute=indicator.compute,
        warmup=indicator.warmup,
        backend="talib",
        path_dependent="Output is path-dependent" in flags,
        unstable="Function has an unstable period" in flags,
        constraints=entry.constraints,
    )


def _pattern_entries() -> tuple[_Entry, ...]:
    entries = []
    for function in talib.get_function_groups()["Pattern Recognition"]:
        display = _abstract_function(function).info["display_name"]
        entries.append(
            _Entry(
                f"cdl_{function[3:].lower()}",
                function,
                "pattern",
                f"Candlestick pattern '{display}': positive when bullish, negative when bearish, 0 when absent.",
                output_ranges={"value": (-200.0, 200.0)},
            )
        )
    return tuple(entries)


def talib_indicators() -> list[IndicatorSpec]:
    return [_build(entry) for entry in (*_ENTRIES, *_pattern_entries())]
