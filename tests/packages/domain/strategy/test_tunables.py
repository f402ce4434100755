"""Tunable parameters: enumeration, bounds and apply round trips."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from packages.domain.strategy.compiler import compile_strategy
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.pointers import split_pointer
from packages.domain.strategy.tunables import (
    ParameterError,
    ParameterSpace,
    apply_parameters,
    list_tunable_parameters,
)
from packages.domain.strategy.validation import validate_semantics, validate_strategy


def _by_pointer(slug: str) -> dict[str, object]:
    return {p.pointer: p for p in list_tunable_parameters(get_example(slug))}


def test_kinds_values_and_bounds() -> None:
    params = _by_pointer("rsi_mean_reversion")
    rsi = params["/factors/0/params/period"]
    assert (rsi.kind, rsi.value_type, rsi.value, rsi.minimum, rsi.label) == (
        "indicator_param",
        "int",
        14,
        2,
        "rsi.period",
    )  # type: ignore[attr-defined]
    threshold = params["/trade/long/entry/condition/conditions/0/right"]
    assert (threshold.kind, threshold.value, threshold.minimum, threshold.maximum) == (
        "threshold",
        30,
        0,
        100,
    )  # type: ignore[attr-defined]
    assert params["/trade/long/exits/1/bars"].kind == "exit"  # type: ignore[attr-defined]
    stop = params["/trade/long/exits/2/distance/value"]
    assert stop.exclusive_minimum and not stop.accepts(0) and stop.accepts(0.01)  # type: ignore[attr-defined]
    assert params["/trade/long/sizing/cash"].kind == "sizing"  # type: ignore[attr-defined]
    rotation = _by_pointer("momentum_rotation")
    assert rotation["/portfolio/rotation/top_n"].maximum == 3  # type: ignore[attr-defined]
    temporal = _by_pointer("macd_sequence_pullback")
    window = temporal["/trade/long/entry/condition/conditions/0/within_bars"]
    assert (window.kind, window.minimum) == ("temporal_window", 2)  # type: ignore[attr-defined]


def test_defaulted_parameters_are_listed_and_can_be_set() -> None:
    document = get_example("macd_sequence_pullback")
    params = {p.pointer: p for p in list_tunable_parameters(document)}
    assert params["/factors/0/params/slow_period"].value == 26
    updated = apply_parameters(
        document, {"/factors/0/params/slow_period": 35, "/factors/2/params/period": 20}
    )
    assert updated["factors"][0]["params"] == {"slow_period": 35}
    assert updated["factors"][2]["params"] == {"period": 20}
    assert "params" not in document["factors"][0]


@pytest.mark.parametrize("slug", example_slugs())
def test_round_trip_every_tunable(slug: str) -> None:
    document = get_example(slug)
    parameters = list_tunable_parameters(document)
    assert parameters
    assert apply_parameters(document, {p.pointer: p.value for p in parameters}) is not document
    nudged = {}
    for p in parameters:
        candidate = p.value + 1 if p.value_type == "int" else p.value * 1.1
        if p.accepts(candidate):
            nudged[p.pointer] = candidate
    try:
        updated = apply_parameters(document, nudged)
    except StrategyValidationError:
        # Moving every knob at once may break a cross-parameter rule; each alone must not crash.
        for pointer, value in nudged.items():
            try:
                apply_parameters(document, {pointer: value})
            except StrategyValidationError:
                continue
        return
    relisted = {p.pointer: p.value for p in list_tunable_parameters(updated)}
    for pointer, value in nudged.items():
        assert relisted[pointer] == pytest.approx(value)
        target = updated
        for token in split_pointer(pointer):
            target = target[int(token)] if isinstance(target, list) else target[token]
        assert target == pytest.approx(value)
    compile_strategy(updated)


def test_bad_values_are_refused() -> None:
    document = get_example("sma_crossover_trend")
    with pytest.raises(ParameterError) as caught:
        apply_parameters(
            document,
            {
                "/factors/0/params/period": 10.5,
                "/factors/1/params/period": 0,
                "/metadata/name": 3,
                "/factors/0/params/period_x": 3,
                "/trade/long/sizing/quantity": "ten",
            },
        )
    assert len(caught.value.problems) == 5
    with pytest.raises(StrategyValidationError):
        apply_parameters(get_example("momentum_rotation"), {"/portfolio/rotation/top_n": 3})
    macd = get_example("index_macd_long_short")
    with pytest.raises(StrategyValidationError):
        apply_parameters(macd, {"/factors/0/params/fast_period": 30})


def _with_value(document: dict[str, Any], pointer: str, value: float) -> dict[str, Any]:
    """Set ``pointer`` directly (creating a factor's missing params object), bypassing every check."""
    updated = copy.deepcopy(document)
    *parents, last = split_pointer(pointer)
    target: Any = updated
    for token in parents:
        target = target[int(token)] if isinstance(target, list) else target.setdefault(token, {})
    target[last] = value
    return updated


@pytest.mark.parametrize("slug", example_slugs())
def test_every_value_inside_tunable_bounds_keeps_the_schema_satisfied(slug: str) -> None:
    """What lets ``ParameterSpace.apply`` skip the schema stage: at both ends of every bound the
    full validation reports exactly what the semantic stage alone reports."""
    document = get_example(slug)
    for parameter in list_tunable_parameters(document):
        low = (
            math.nextafter(parameter.minimum, math.inf) if parameter.exclusive_minimum else parameter.minimum
        )
        high = (
            math.nextafter(parameter.maximum, -math.inf) if parameter.exclusive_maximum else parameter.maximum
        )
        for value in (low, high):
            typed = int(value) if parameter.value_type == "int" else float(value)
            updated = _with_value(document, parameter.pointer, typed)
            assert validate_strategy(updated) == validate_semantics(updated), (parameter.pointer, typed)


def test_a_parameter_space_validates_once_and_applies_many_sets() -> None:
    document = get_example("sma_crossover_trend")
    space = ParameterSpace.of(document)
    assert list(space.parameters) == [p.pointer for p in list_tunable_parameters(document)]
    for fast, slow in ((5, 20), (20, 100)):
        values = {"/factors/0/params/period": fast, "/factors/1/params/period": slow}
        assert space.apply(values) == apply_parameters(document, values)
    with pytest.raises(ParameterError):
        space.apply({"/factors/0/params/period": 0})
    with pytest.raises(StrategyValidationError):
        ParameterSpace.of({**document, "timeframe": "3h"})
