"""Compilation and plan building on real bars: examples, dedup, warm-up, orders, exits, sizing,
higher-timeframe alignment without look-ahead."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from packages.domain.strategy import compiler as compiler_module
from packages.domain.strategy.bars import BarMatrix, BarsLike, MissingSymbolsError, resample_bars
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.compiler import SeriesCache, compile_strategy
from packages.domain.strategy.errors import ErrorCode, StrategyValidationError
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.plan import GOOD_TILL_CANCELLED, LazySeries, StrategyPlan
from packages.domain.strategy.tunables import ParameterError, apply_parameters

BarsFor = Callable[[Sequence[str]], BarMatrix]


def _document(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "dsl_version": "1.0.0",
        "metadata": {"name": "test"},
        "universe": {"market": "us_stocks", "symbols": ["AAPL", "MSFT", "IBM", "GOOG"]},
        "timeframe": "1d",
        "factors": [
            {"id": "fast", "indicator": "sma", "params": {"period": 10}},
            {"id": "slow", "indicator": "sma", "params": {"period": 30}},
        ],
        "trade": {
            "long": {
                "entry": {
                    "condition": {
                        "op": "cross_above",
                        "left": {"factor": "fast"},
                        "right": {"factor": "slow"},
                    }
                },
                "exits": [{"name": "time", "type": "time_exit", "bars": 10}],
                "sizing": {"mode": "fixed_quantity", "quantity": 1},
            }
        },
    }
    document.update(overrides)
    return document


def _assert_plan_prefix_equal(full: StrategyPlan, partial: StrategyPlan, rows: int) -> None:
    def same(a: np.ndarray | None, b: np.ndarray | None) -> None:
        if a is None or b is None:
            assert a is None and b is None
            return
        np.testing.assert_array_equal(a[:rows], b[:rows])

    assert full.warmup_bars == partial.warmup_bars
    for full_side, partial_side in zip(full.sides, partial.sides, strict=True):
        same(full_side.entry, partial_side.entry)
        same(full_side.order.price, partial_side.order.price)
        same(full_side.sizing.stop_distance, partial_side.sizing.stop_distance)
        same(full_side.sizing.volatility, partial_side.sizing.volatility)
        for full_exit, partial_exit in zip(full_side.exits, partial_side.exits, strict=True):
            same(full_exit.signal, partial_exit.signal)
            same(full_exit.distance, partial_exit.distance)
    for name in full.factors:
        same(full.factors[name], partial.factors[name])
    for pointer in full.leaves:
        same(full.leaves[pointer], partial.leaves[pointer])
    if full.portfolio.rotation is not None:
        assert partial.portfolio.rotation is not None
        same(full.portfolio.rotation.score, partial.portfolio.rotation.score)


@pytest.mark.parametrize("slug", example_slugs())
def test_every_example_compiles_and_plans_on_real_bars(slug: str, bars_for: BarsFor) -> None:
    document = get_example(slug)
    compiled = compile_strategy(document)
    bars = bars_for(compiled.symbols)
    plan = compiled.build_plan(bars)
    shape = (bars.index.shape[0], len(compiled.symbols))
    assert plan.symbols == compiled.symbols
    np.testing.assert_array_equal(plan.index, bars.index)
    assert [side.side for side in plan.sides] == [s for s in ("long", "short") if s in document["trade"]]
    for side, definition in zip(
        plan.sides, [document["trade"][s] for s in ("long", "short") if s in document["trade"]], strict=True
    ):
        assert side.entry.shape == shape and side.entry.dtype == np.bool_
        assert side.entry.any(), "every example trades on its data"
        assert not side.entry[: plan.warmup_bars].any()
        assert [(e.name, e.kind) for e in side.exits] == [
            (e["name"], e["type"]) for e in definition.get("exits", [])
        ]
        if side.order.price is not None:
            assert np.isfinite(side.order.price[side.entry]).all()
            assert np.isnan(side.order.price[~side.entry]).all()
    assert set(plan.leaves) == set(compiled.leaf_labels)
    for values in [*plan.factors.values(), *plan.leaves.values()]:
        assert values.shape == shape
    # Bars are cut at a mid-sample row: nothing before it may change.
    rows = bars.index.shape[0] * 2 // 3 + 5
    _assert_plan_prefix_equal(plan, compiled.build_plan(bars.head(rows)), rows)


def test_higher_timeframe_values_appear_only_after_the_higher_bar_closes(bars_for: BarsFor) -> None:
    compiled = compile_strategy(get_example("mtf_trend_filter_eurusd"))
    bars = bars_for(["EURUSD"])
    plan = compiled.build_plan(bars)
    # Independent forex days and SMA with pandas: a day runs from 17:00 New York to 17:00 the next
    # day, is named after the day it ends on, weekend days hold no session, and its value is
    # usable from its 17:00 New York close (21:00 or 22:00 UTC).
    hourly = pd.Series(bars.close[:, 0], index=pd.to_datetime(bars.index, utc=True))
    new_york = hourly.index.tz_convert("America/New_York").tz_localize(None)
    trading_day = (new_york + pd.Timedelta(hours=7)).normalize()
    in_session = trading_day.day_of_week < 5
    daily_close = hourly[in_session].groupby(trading_day[in_session]).last()
    daily_sma = daily_close.rolling(50).mean()
    available_from = (
        (daily_sma.index + pd.Timedelta(hours=17)).tz_localize("America/New_York").tz_convert("UTC")
    )
    expected = pd.Series(daily_sma.to_numpy(), index=available_from).reindex(hourly.index, method="ffill")
    np.testing.assert_allclose(
        plan.factors["daily_trend"][:, 0], expected.to_numpy(), rtol=1e-12, equal_nan=True
    )
    # Cut inside a day, at every hour of one day: earlier rows never change.
    start = 3_000 - int((bars.index[3_000] // 3_600_000_000_000) % 24)
    for rows in range(start, start + 25, 3):
        _assert_plan_prefix_equal(plan, compiled.build_plan(bars.head(rows)), rows)


def test_higher_timeframe_bars_can_be_supplied_or_resampled_by_the_caller(bars_for: BarsFor) -> None:
    compiled = compile_strategy(get_example("mtf_trend_filter_eurusd"))
    assert compiled.higher_timeframes == ("1d",)
    bars = bars_for(["EURUSD"])
    default = compiled.build_plan(bars)
    served = resample_bars(bars, "1d", market="forex", base_timeframe="1h")
    supplied = compiled.build_plan(bars, higher_timeframe_bars={"1d": served})
    np.testing.assert_array_equal(default.factors["daily_trend"], supplied.factors["daily_trend"])

    calls: list[str] = []

    def opens_as_closes(base: BarsLike, timeframe: str) -> BarsLike:
        calls.append(timeframe)
        # A caller's own daily bars, stamped like the store's: here closes are the days' opens.
        days = resample_bars(base, timeframe, market="forex", base_timeframe="1h")
        return BarMatrix(days.index, days.symbols, days.open, days.high, days.low, days.open, days.volume)

    custom = compiled.build_plan(bars, resampler=opens_as_closes)
    assert calls == ["1d"]
    assert not np.array_equal(custom.factors["daily_trend"], default.factors["daily_trend"], equal_nan=True)


def test_indicator_requests_are_deduplicated(bars_for: BarsFor, monkeypatch: pytest.MonkeyPatch) -> None:
    document = _document(
        factors=[
            {"id": "a", "indicator": "sma", "params": {"period": 30}},
            {"id": "b", "indicator": "sma"},  # default period is 30
            {"id": "c", "indicator": "sma", "params": {"period": 30}, "source": "close"},
            {"id": "d", "indicator": "sma", "params": {"period": 30}, "source": "open"},
            {"id": "e", "indicator": "sma", "params": {"period": 30}, "timeframe": "1w"},
            {"id": "range", "indicator": "atr", "params": {"period": 14}},
        ]
    )
    document["trade"]["long"] = {
        "entry": {
            "condition": {
                "op": "all",
                "conditions": [
                    # a and b are one series: gt between them could never hold (PARAM_CONFLICT)
                    {"op": "gte", "left": {"factor": "a"}, "right": {"factor": "b"}},
                    {"op": "gt", "left": {"factor": "c"}, "right": {"factor": "d"}},
                    {"op": "gt", "left": {"factor": "e", "offset": 1}, "right": {"factor": "range"}},
                ],
            }
        },
        "exits": [{"name": "stop", "type": "stop_loss", "distance": {"unit": "atr", "value": 2}}],
        "sizing": {"mode": "risk_per_trade", "percent": 1},
    }
    compiled = compile_strategy(document)
    labels = sorted(request.label() for request in compiled.requests)
    assert labels == [
        "atr(period=14) @1d",
        "sma(period=30) of close @1d",
        "sma(period=30) of close @1w",
        "sma(period=30) of open @1d",
    ]
    assert compiled.factors["a"].request is compiled.factors["b"].request is compiled.factors["c"].request

    computed: list[str] = []
    original = compiler_module.compute_request

    def counting(request: Any, bars: Any, *args: Any) -> Any:
        computed.append(request.label())
        return original(request, bars, *args)

    monkeypatch.setattr(compiler_module, "compute_request", counting)
    compiled.build_plan(bars_for(compiled.symbols))
    assert sorted(computed) == labels


def test_warmup_counts_offsets_crosses_windows_and_higher_timeframes() -> None:
    compiled = compile_strategy(_document())
    assert compiled.warmup_bars == 30  # SMA(30) defined from bar 29, a cross needs the bar before
    document = _document()
    document["trade"]["long"]["entry"]["condition"] = {
        "op": "within_bars",
        "bars": 5,
        "condition": {"op": "gt", "left": {"factor": "slow", "offset": 3}, "right": 0},
    }
    assert compile_strategy(document).warmup_bars == 29 + 3 + 4
    weekly = _document(
        factors=[
            *_document()["factors"],
            {"id": "w", "indicator": "ema", "params": {"period": 10}, "timeframe": "1w"},
        ]
    )
    weekly["trade"]["long"]["exits"] = [
        {
            "name": "weekly",
            "type": "signal",
            "condition": {"op": "lt", "left": {"field": "close"}, "right": {"factor": "w"}},
        }
    ]
    # EMA(10) is defined from its 10th weekly bar, +1 for a possibly partial first week: 11 weeks of 7 days.
    assert compile_strategy(weekly).warmup_bars == (9 + 2) * 7


def test_orders_exits_and_sizing_are_priced_from_the_signal_bar(bars_for: BarsFor) -> None:
    document = _document(universe={"market": "us_stocks", "symbols": ["MSFT"]})
    document["trade"]["long"] = {
        "entry": {
            "condition": {"op": "cross_above", "left": {"factor": "fast"}, "right": {"factor": "slow"}},
            "order": {
                "type": "limit",
                "price": {"reference": "hl2", "offset": {"unit": "atr", "value": -0.5, "atr_period": 10}},
                "time_in_force": {"type": "gtc"},
            },
        },
        "exits": [
            {"name": "stop", "type": "stop_loss", "distance": {"unit": "atr", "value": 2, "atr_period": 10}},
            {"name": "target", "type": "take_profit", "distance": {"unit": "percent", "value": 12.5}},
            {"name": "trail", "type": "trailing_stop", "distance": {"unit": "points", "value": 7}},
        ],
        "sizing": {"mode": "risk_per_trade", "percent": 0.75},
    }
    document["trade"]["short"] = {
        "entry": {
            "condition": {"op": "cross_below", "left": {"factor": "fast"}, "right": {"factor": "slow"}},
            "order": {
                "type": "stop",
                "price": {"reference": "low", "offset": {"unit": "points", "value": -0.1}},
            },
        },
        "exits": [
            {"name": "rr", "type": "bracket", "stop": {"unit": "percent", "value": 3}, "reward_ratio": 2.5}
        ],
        "sizing": {"mode": "volatility_target", "annual_percent": 15, "lookback_bars": 30},
    }
    bars = bars_for(["MSFT"])
    plan = compile_strategy(document).build_plan(bars)
    long_side, short_side = plan.sides
    high, low, close = bars.high[:, 0], bars.low[:, 0], bars.close[:, 0]
    atr10 = talib.ATR(high, low, close, 10)

    entry = long_side.entry[:, 0]
    assert long_side.order.kind == "limit" and long_side.order.valid_bars == GOOD_TILL_CANCELLED
    expected_price = (high + low) / 2 - 0.5 * atr10
    np.testing.assert_allclose(long_side.order.price[entry, 0], expected_price[entry])
    stop, target, trail = long_side.exits
    np.testing.assert_allclose(stop.distance[:, 0], 2 * atr10, equal_nan=True)
    assert target.fraction == pytest.approx(0.125) and target.distance is None
    assert trail.fraction is None and np.all(trail.distance == 7)
    assert long_side.sizing.mode == "risk_per_trade" and long_side.sizing.value == pytest.approx(0.0075)
    np.testing.assert_allclose(long_side.sizing.stop_distance[:, 0], 2 * atr10, equal_nan=True)

    assert short_side.order.kind == "stop" and short_side.order.valid_bars == 1
    short_entry = short_side.entry[:, 0]
    np.testing.assert_allclose(short_side.order.price[short_entry, 0], low[short_entry] - 0.1)
    (bracket,) = short_side.exits
    assert bracket.fraction == pytest.approx(0.03) and bracket.reward_ratio == 2.5
    returns = np.log(pd.Series(close)).diff()
    expected_vol = returns.rolling(30).std(ddof=0) * math.sqrt(252)
    np.testing.assert_allclose(short_side.sizing.volatility[:, 0], expected_vol, rtol=1e-7, equal_nan=True)
    assert short_side.sizing.value == pytest.approx(0.15)


def test_symbols_are_computed_over_their_own_bars(bars_for: BarsFor) -> None:
    bars = bars_for(["AAPL", "GOOG"])  # GOOG starts in 2004: NaN rows before
    close = bars.close.copy()
    close[1_500:1_510, 0] = np.nan  # an interior gap for AAPL
    gapped = BarMatrix(bars.index, bars.symbols, bars.open, bars.high, bars.low, close, bars.volume)
    document = _document(universe={"market": "us_stocks", "symbols": ["GOOG", "AAPL"]})
    plan = compile_strategy(document).build_plan(gapped)
    assert plan.symbols == ("GOOG", "AAPL")
    for column, source in ((0, 1), (1, 0)):
        own = pd.Series(close[:, source]).dropna()
        expected = pd.Series(np.nan, index=range(close.shape[0]))
        expected[own.index] = own.rolling(30).mean()
        np.testing.assert_allclose(
            plan.factors["slow"][:, column], expected.to_numpy(), rtol=1e-12, equal_nan=True
        )


def test_rotation_and_portfolio(bars_for: BarsFor) -> None:
    compiled = compile_strategy(get_example("momentum_rotation"))
    bars = bars_for(compiled.symbols)
    plan = compiled.build_plan(bars)
    rotation = plan.portfolio.rotation
    assert rotation is not None and rotation.top_n == 2 and rotation.every_bars == 21
    assert plan.portfolio.max_open_positions == 2
    close = pd.DataFrame(bars.close)
    expected = np.full(close.shape, np.nan)
    for column in range(close.shape[1]):
        own = close[column].dropna()
        expected[own.index, column] = (own / own.shift(126) - 1) * 100
    np.testing.assert_allclose(rotation.score, expected, rtol=1e-9, equal_nan=True)
    default = compile_strategy(_document())
    assert default.max_open_positions == 4 and default.build_plan(bars).portfolio.rotation is None


def test_invalid_documents_and_missing_symbols_are_refused(bars_for: BarsFor) -> None:
    with pytest.raises(StrategyValidationError) as caught:
        compile_strategy(_document(timeframe="3h"))
    assert [(i.code, i.pointer) for i in caught.value.issues] == [
        (ErrorCode.UNSUPPORTED_TIMEFRAME, "/timeframe")
    ]
    compiled = compile_strategy(_document())
    with pytest.raises(MissingSymbolsError, match="GOOG"):
        compiled.build_plan(bars_for(["AAPL", "MSFT", "IBM"]))


def test_compiled_strategy_is_independent_of_later_edits() -> None:
    document = _document()
    compiled = compile_strategy(document)
    assert compiled.document_hash == document_hash(document)
    snapshot = copy.deepcopy(document)
    document["factors"][0]["params"]["period"] = 3
    assert compiled.document == snapshot
    assert compiled.leaf_labels == {"/trade/long/entry/condition": "fast cross_above slow"}


@pytest.mark.parametrize("rows", [0, 1, 3])
def test_plans_on_very_short_histories(rows: int, bars_for: BarsFor) -> None:
    for slug in example_slugs():
        compiled = compile_strategy(get_example(slug))
        plan = compiled.build_plan(bars_for(compiled.symbols).head(rows))
        for side in plan.sides:
            assert side.entry.shape == (rows, len(compiled.symbols)) and not side.entry.any()


def _plan_contents(plan: StrategyPlan) -> dict[str, Any]:
    """Every array and number of a plan by a readable path (arrays as float64 for NaN-aware equality)."""
    contents: dict[str, Any] = {
        "symbols": plan.symbols,
        "index": plan.index,
        "warmup": plan.warmup_bars,
        "max_open": plan.portfolio.max_open_positions,
    }
    for side in plan.sides:
        contents[f"{side.side}.entry"] = side.entry
        contents[f"{side.side}.order"] = (side.order.kind, side.order.valid_bars, side.order.price)
        contents[f"{side.side}.sizing"] = (side.sizing.mode, side.sizing.value)
        contents[f"{side.side}.stop_distance"] = side.sizing.stop_distance
        contents[f"{side.side}.volatility"] = side.sizing.volatility
        for rule in side.exits:
            contents[f"{side.side}.{rule.name}"] = (rule.kind, rule.fraction, rule.reward_ratio, rule.bars)
            contents[f"{side.side}.{rule.name}.signal"] = rule.signal
            contents[f"{side.side}.{rule.name}.distance"] = rule.distance
    contents.update({f"factor {name}": values for name, values in plan.factors.items()})
    contents.update({f"leaf {pointer}": values for pointer, values in plan.leaves.items()})
    if plan.portfolio.rotation is not None:
        contents["rotation"] = plan.portfolio.rotation.score
    return contents


def _assert_same_plan(actual: StrategyPlan, expected: StrategyPlan) -> None:
    got, want = _plan_contents(actual), _plan_contents(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():
        items = value if isinstance(value, tuple) else (value,)
        others = got[key] if isinstance(got[key], tuple) else (got[key],)
        for mine, theirs in zip(others, items, strict=True):
            if isinstance(theirs, np.ndarray):
                assert isinstance(mine, np.ndarray) and mine.dtype == theirs.dtype, key
                np.testing.assert_array_equal(mine, theirs, err_msg=key)
            else:
                assert mine == theirs, key


def test_parameter_sweep_matches_separate_compilation_and_computes_shared_series_once(
    bars_for: BarsFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = get_example("ema_crossover_long_short")
    compiled = compile_strategy(document)
    bars = bars_for(compiled.symbols)
    grid = [
        {
            "/factors/0/params/period": fast,
            "/factors/1/params/period": slow,
            "/trade/long/exits/1/distance/atr_period": atr,
            "/trade/short/exits/1/distance/value": 1.5,
        }
        for fast in (5, 12)
        for slow in (26, 40, 60)
        for atr in (10, 14)
    ]
    computed: list[str] = []
    original = compiler_module.compute_request

    def counting(request: Any, bars: Any, *args: Any) -> Any:
        computed.append(request.label())
        return original(request, bars, *args)

    monkeypatch.setattr(compiler_module, "compute_request", counting)
    plans = compiled.build_plans(bars, grid)
    # 2 fast + 3 slow EMAs and ATR(10), ATR(14) (the short side's stop keeps ATR(14)), each once.
    assert sorted(computed) == sorted(
        [f"ema(period={p}) of close @1d" for p in (5, 12, 26, 40, 60)]
        + ["atr(period=10) @1d", "atr(period=14) @1d"]
    )
    monkeypatch.setattr(compiler_module, "compute_request", original)
    assert len(plans) == len(grid)
    for values, plan in zip(grid, plans, strict=True):
        _assert_same_plan(plan, compile_strategy(apply_parameters(document, values)).build_plan(bars))
    assert not np.array_equal(plans[0].sides[0].entry, plans[-1].sides[0].entry)


def test_variants_refuse_values_apply_parameters_refuses() -> None:
    compiled = compile_strategy(get_example("index_macd_long_short"))
    with pytest.raises(ParameterError, match="integer"):
        compiled.with_parameters({"/factors/0/params/fast_period": 10.5})
    with pytest.raises(ParameterError, match="not a tunable"):
        compiled.with_parameters({"/timeframe": 3})
    with pytest.raises(StrategyValidationError) as caught:
        compiled.with_parameters({"/factors/0/params/fast_period": 30})  # no longer below slow_period
    assert [issue.pointer for issue in caught.value.issues] == ["/factors/0/params/fast_period"]
    variant = compiled.with_parameters({"/factors/0/params/fast_period": 8})
    assert variant.factors["macd"].request.params[0] == ("fast_period", 8)
    assert variant.document_hash == document_hash(variant.document) != compiled.document_hash
    assert compiled.document["factors"][0]["params"]["fast_period"] == 12


def test_a_series_cache_serves_one_bar_set_only(bars_for: BarsFor) -> None:
    compiled = compile_strategy(_document())
    bars = bars_for(compiled.symbols)
    cache = SeriesCache()
    first = compiled.build_plan(bars, cache=cache)
    again = compiled.build_plan(bars, cache=cache)
    assert again.factors["slow"] is first.factors["slow"]  # served from the cache, not recomputed
    with pytest.raises(ValueError, match="SeriesCache"):
        compiled.build_plan(bars.head(100), cache=cache)
    with pytest.raises(ValueError, match="SeriesCache"):
        compiled.build_plan(
            bars,
            cache=cache,
            resampler=lambda base, timeframe: resample_bars(
                base, timeframe, market="us_stocks", base_timeframe="1d"
            ),
        )


def test_factor_series_are_computed_when_first_read(bars_for: BarsFor) -> None:
    compiled = compile_strategy(get_example("mtf_trend_filter_eurusd"))
    plan = compiled.build_plan(bars_for(compiled.symbols))
    assert isinstance(plan.factors, LazySeries) and len(plan.factors) == len(compiled.factors)
    loads: list[str] = []

    def load_a() -> np.ndarray:
        loads.append("a")
        return np.zeros(2)

    series = LazySeries({"a": load_a, "b": lambda: np.ones(2)})
    assert list(series) == ["a", "b"] and loads == []
    assert series["a"] is series["a"] and loads == ["a"]
