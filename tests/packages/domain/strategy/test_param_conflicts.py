"""PARAM_CONFLICT: parameters that are valid alone but contradict each other.

One table row per rule: the catalogue's parameter rules (with why each exists, checked against
TA-Lib on real MSFT bars) and two operands of a comparison that read one and the same series.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from packages.domain.strategy.errors import ErrorCode
from packages.domain.strategy.examples import get_example
from packages.domain.strategy.indicators import SOURCE_INPUT, get_indicator, list_indicators
from packages.domain.strategy.validation import validate_strategy

PROBE = "/factors/2"  # the factor under test is appended after the example's two


def _with_probe(indicator: str, params: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(get_example("sma_crossover_trend"))
    document["factors"].append({"id": "probe", "indicator": indicator, "params": params})
    return document


CONFLICTS = [
    # (indicator, params set by the factor, parameter the error points at)
    ("macd", {"fast_period": 30, "slow_period": 10}, "fast_period"),
    ("macd", {"slow_period": 10}, "slow_period"),  # fast_period defaults to 12
    ("macd", {"fast_period": 26}, "fast_period"),  # equal to the default slow_period
    ("macdext", {"fast_period": 40}, "fast_period"),
    ("apo", {"fast_period": 30, "slow_period": 30}, "fast_period"),
    ("ppo", {"slow_period": 5}, "slow_period"),
    ("pvo", {"fast_period": 50}, "fast_period"),
    ("adosc", {"fast_period": 10, "slow_period": 3}, "fast_period"),
    ("ao", {"fast_period": 34, "slow_period": 5}, "fast_period"),
    ("ac", {"slow_period": 4}, "slow_period"),
    ("mama", {"fast_limit": 0.05, "slow_limit": 0.5}, "slow_limit"),
    ("mama", {"fast_limit": 0.05}, "fast_limit"),  # equal to the default slow_limit
    ("ultosc", {"period1": 28}, "period1"),
    ("ultosc", {"period2": 30}, "period2"),
    ("ultosc", {"period3": 10}, "period3"),
    ("sar", {"acceleration": 0.5, "maximum": 0.2}, "acceleration"),
    ("sar", {"acceleration": 0.3}, "acceleration"),  # maximum defaults to 0.2
    ("hurst", {"period": 20, "max_lag": 16}, "max_lag"),
    ("hurst", {"period": 30}, "period"),  # max_lag defaults to 16
    ("volatility_regime_ratio", {"fast_period": 100}, "fast_period"),
]


@pytest.mark.parametrize(("indicator", "params", "offending"), CONFLICTS)
def test_contradicting_parameters_are_a_conflict_at_the_parameter_set(
    indicator: str, params: dict[str, Any], offending: str
) -> None:
    issues = validate_strategy(_with_probe(indicator, params))
    assert [(i.code, i.pointer) for i in issues] == [
        (ErrorCode.PARAM_CONFLICT, f"{PROBE}/params/{offending}")
    ]
    (issue,) = issues
    assert offending in issue.message and indicator in issue.message
    assert issue.hint and offending in issue.hint


ALLOWED = [
    ("macd", {"fast_period": 5, "slow_period": 35}),
    ("ultosc", {"period1": 7, "period2": 7, "period3": 28}),  # equal windows: no reordering
    ("sar", {"acceleration": 0.2, "maximum": 0.2}),
    ("smi", {"fast_period": 25, "slow_period": 2}),  # its two smoothings commute (see below)
    ("hurst", {"period": 32, "max_lag": 16}),
    ("stoch", {"fastk_period": 3, "slowk_period": 14, "slowd_period": 14}),
    ("massi", {"fast_period": 30, "slow_period": 9}),  # an EMA length and a sum length, no order
]


@pytest.mark.parametrize(("indicator", "params"), ALLOWED)
def test_parameters_without_a_contradiction_are_valid(indicator: str, params: dict[str, Any]) -> None:
    assert validate_strategy(_with_probe(indicator, params)) == []


def test_every_broken_rule_of_a_factor_is_reported() -> None:
    issues = validate_strategy(_with_probe("ultosc", {"period1": 30, "period2": 20, "period3": 10}))
    assert [(i.code, i.pointer) for i in issues] == [
        (ErrorCode.PARAM_CONFLICT, f"{PROBE}/params/period1"),
        (ErrorCode.PARAM_CONFLICT, f"{PROBE}/params/period2"),
    ]


@pytest.mark.parametrize(
    "spec", [spec for spec in list_indicators() if spec.constraints], ids=lambda spec: spec.name
)
def test_rules_name_real_parameters_hold_at_defaults_and_explain_themselves(spec: Any) -> None:
    names = {param.name for param in spec.params}
    for constraint in spec.constraints:
        assert set(constraint.params) <= names
        assert constraint.holds(spec.resolve_params({}))
        assert constraint.params[0] in constraint.hint


# Why the rules exist: what TA-Lib does with contradicting values (real MSFT daily bars).


def _compute(data: dict[str, Any], name: str, **params: Any) -> dict[str, np.ndarray]:
    spec = get_indicator(name)
    assert spec is not None
    inputs = {field: data["close" if field == SOURCE_INPUT else field] for field in spec.inputs}
    return spec.compute(inputs, spec.resolve_params(params))


def _tail(values: np.ndarray) -> np.ndarray:
    return values[-1000:]  # well past every warm-up and seed


@pytest.mark.parametrize("name", ["macd", "macdext", "apo", "ppo", "pvo"])
def test_talib_swaps_reversed_fast_and_slow_periods(name: str, msft_columns: dict[str, Any]) -> None:
    reversed_ = _compute(msft_columns, name, fast_period=26, slow_period=12)
    ordered = _compute(msft_columns, name, fast_period=12, slow_period=26)
    for output in ordered:
        np.testing.assert_allclose(reversed_[output], ordered[output], equal_nan=True)
    first = next(iter(ordered))
    assert np.nanmax(np.abs(_compute(msft_columns, name, fast_period=20, slow_period=20)[first])) == 0


@pytest.mark.parametrize("name", ["adosc", "ao", "ac"])
def test_reversed_fast_and_slow_periods_turn_the_oscillator_upside_down(
    name: str, msft_columns: dict[str, Any]
) -> None:
    ordered = _compute(msft_columns, name, fast_period=5, slow_period=20)["value"]
    reversed_ = _compute(msft_columns, name, fast_period=20, slow_period=5)["value"]
    np.testing.assert_allclose(_tail(reversed_), -_tail(ordered), atol=1e-6)
    assert np.nanmax(np.abs(_compute(msft_columns, name, fast_period=9, slow_period=9)["value"])) == 0


def test_talib_sorts_the_ultimate_oscillator_periods(msft_columns: dict[str, Any]) -> None:
    named = _compute(msft_columns, "ultosc", period1=28, period2=14, period3=7)["value"]
    sorted_ = _compute(msft_columns, "ultosc", period1=7, period2=14, period3=28)["value"]
    np.testing.assert_allclose(named, sorted_, equal_nan=True)


def test_talib_cuts_the_sar_step_down_to_the_maximum(msft_columns: dict[str, Any]) -> None:
    too_large = _compute(msft_columns, "sar", acceleration=0.5, maximum=0.2)["value"]
    at_maximum = _compute(msft_columns, "sar", acceleration=0.2, maximum=0.2)["value"]
    np.testing.assert_allclose(too_large, at_maximum, equal_nan=True)


def test_smi_smoothing_order_does_not_matter(msft_columns: dict[str, Any]) -> None:
    usual = _compute(msft_columns, "smi", fast_period=2, slow_period=25)
    swapped = _compute(msft_columns, "smi", fast_period=25, slow_period=2)
    for output in usual:
        np.testing.assert_allclose(_tail(swapped[output]), _tail(usual[output]), atol=1e-9)


# Two sides of one comparison reading the same series.

_EXTRA_FACTORS = [
    {"id": "twin", "indicator": "sma", "params": {"period": 10}},  # the same SMA as sma_fast
    {"id": "sma_default", "indicator": "sma"},  # SMA's default period is 30, as sma_slow's
    {"id": "ema_fast", "indicator": "ema", "params": {"period": 10}},
    {"id": "sma_fast_open", "indicator": "sma", "params": {"period": 10}, "source": "open"},
    {"id": "sma_fast_weekly", "indicator": "sma", "params": {"period": 10}, "timeframe": "1w"},
    {"id": "bands", "indicator": "bbands"},
]
ENTRY = "/trade/long/entry/condition"


def _comparison(op: str, left: Any, right: Any) -> dict[str, Any]:
    document = copy.deepcopy(get_example("sma_crossover_trend"))
    document["factors"].extend(copy.deepcopy(_EXTRA_FACTORS))
    document["trade"]["long"]["entry"]["condition"] = {"op": op, "left": left, "right": right}
    return document


def _factor(factor_id: str, **more: Any) -> dict[str, Any]:
    return {"factor": factor_id, **more}


SAME_SERIES = [
    ("cross_above", _factor("sma_fast"), _factor("twin")),
    ("cross_below", _factor("sma_fast"), _factor("sma_fast")),
    ("cross_above", _factor("sma_slow"), _factor("sma_default")),
    ("gt", _factor("sma_fast"), _factor("twin")),
    ("lt", _factor("twin", offset=2), _factor("sma_fast", offset=2)),
    ("neq", _factor("sma_fast"), _factor("twin")),
    ("gt", {"field": "close"}, {"field": "close", "offset": 0}),
    ("cross_above", _factor("bands", output="upper"), _factor("bands", output="upper")),
]


@pytest.mark.parametrize(("op", "left", "right"), SAME_SERIES)
def test_a_comparison_that_can_never_hold_is_a_conflict(op: str, left: Any, right: Any) -> None:
    issues = validate_strategy(_comparison(op, left, right))
    assert [(i.code, i.pointer) for i in issues] == [(ErrorCode.PARAM_CONFLICT, f"{ENTRY}/right")]
    assert issues[0].hint


DIFFERENT_SERIES = [
    # A "fast" average above the "slow" one is a legitimate (if unusual) rule, not a conflict.
    ("cross_above", _factor("sma_slow"), _factor("sma_fast")),
    ("cross_above", _factor("sma_fast"), _factor("sma_fast", offset=1)),
    ("cross_above", _factor("sma_fast"), _factor("ema_fast")),
    ("cross_above", _factor("sma_fast"), _factor("sma_fast_open")),
    ("cross_above", _factor("sma_fast"), _factor("sma_fast_weekly")),
    ("cross_above", _factor("bands", output="upper"), _factor("bands", output="lower")),
    ("gt", {"field": "close"}, {"field": "close", "offset": 1}),
    ("gt", {"field": "close"}, {"field": "open"}),
    ("gte", _factor("sma_fast"), _factor("twin")),  # always true, never contradictory
    ("eq", _factor("sma_fast"), _factor("twin")),
    ("gt", _factor("sma_fast"), 100),
]


@pytest.mark.parametrize(("op", "left", "right"), DIFFERENT_SERIES)
def test_comparisons_of_different_series_are_valid(op: str, left: Any, right: Any) -> None:
    assert validate_strategy(_comparison(op, left, right)) == []
