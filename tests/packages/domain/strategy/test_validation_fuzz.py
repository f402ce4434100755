"""Hypothesis fuzzing: validation never crashes, and whatever it accepts compiles and plans."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packages.domain.strategy.bars import BarMatrix
from packages.domain.strategy.compiler import compile_strategy
from packages.domain.strategy.errors import ErrorCode, StrategyValidationError, ValidationIssue
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.pointers import split_pointer
from packages.domain.strategy.tunables import TunableParameter, apply_parameters, list_tunable_parameters
from packages.domain.strategy.validation import validate_strategy
from packages.domain.strategy.vocabulary import (
    CONDITION_OPS,
    EXIT_TYPES,
    SERIES_FIELDS,
    SIZING_MODES,
    TIMEFRAME_NS,
    TIMEFRAMES,
)
from tests.packages.domain.strategy.schema_agreement import validators_agree

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_words = st.sampled_from(
    [
        *CONDITION_OPS,
        *EXIT_TYPES,
        *SIZING_MODES,
        *SERIES_FIELDS,
        *TIMEFRAMES,
        "sma",
        "bbands",
        "macd",
        "upper",
        "histogram",
        "value",
        "fast",
        "slow",
        "percent",
        "atr",
        "points",
        "gtc",
        "bars",
        "long",
        "short",
        "AAPL",
        "",
    ]
)
_numbers = st.one_of(
    st.integers(-5, 5),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, 14, 100, 1_000, 5_000, 0.5, -1, 1e13]),
)
_json = st.recursive(
    st.none() | st.booleans() | _numbers | _words | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_words | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=25,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for token in path[:-1]:
        document = document[token]
    return document


@st.composite
def _mutated_examples(draw: st.DrawFn) -> Any:
    document: Any = get_example(draw(st.sampled_from(example_slugs())))
    for _ in range(draw(st.integers(1, 3))):
        # Small, plausible edits of numbers and words dominate so that many mutants stay valid
        # and reach the compiler; structural edits and random JSON cover the rest.
        kind = draw(
            st.sampled_from(
                ["small_number"] * 4 + ["word"] * 3 + ["replace", "number", "delete", "duplicate", "insert"]
            )
        )
        paths = _paths(document)
        if kind == "small_number":
            paths = [p for p in paths if p and isinstance(_parent(document, p)[p[-1]], int | float)] or paths
        elif kind == "word":
            paths = [p for p in paths if p and isinstance(_parent(document, p)[p[-1]], str)] or paths
        path = draw(st.sampled_from(paths))
        if not path:
            document = draw(_json)
            continue
        parent, key = _parent(document, path), path[-1]
        if kind == "replace":
            parent[key] = draw(_json)
        elif kind == "word":
            parent[key] = draw(_words)
        elif kind == "number":
            parent[key] = draw(_numbers)
        elif kind == "small_number":
            parent[key] = draw(st.integers(0, 60) | st.floats(0.0, 10.0))
        elif kind == "delete":
            del parent[key]
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif isinstance(parent, dict):
            parent[draw(_words)] = draw(_json)
    return document


def _check_issues(document: Any, issues: list[ValidationIssue]) -> None:
    assert isinstance(issues, list)
    for issue in issues:
        assert isinstance(issue.code, ErrorCode)
        assert issue.message.strip()
        tokens = split_pointer(issue.pointer)
        # Every pointer's parent exists in the document (the pointer itself may name a missing field).
        target = document
        for token in tokens[:-1]:
            target = target[int(token)] if isinstance(target, list) else target[token]


def _synthetic_bars(document: dict[str, Any], length: int = 240) -> BarMatrix:
    """Synthetic (generated) random-walk bars for the document's universe."""
    symbols = document["universe"]["symbols"]
    rng = np.random.default_rng(len(symbols))
    step = TIMEFRAME_NS[document["timeframe"]]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(length, len(symbols))), axis=0))
    high = close * (1 + rng.uniform(0, 0.01, size=close.shape))
    low = close * (1 - rng.uniform(0, 0.01, size=close.shape))
    open_ = (high + low) / 2
    volume = rng.uniform(1_000, 2_000, size=close.shape)
    index = 1_500_000_000_000_000_000 // step * step + np.arange(length) * step
    return BarMatrix.from_arrays(index, symbols, open=open_, high=high, low=low, close=close, volume=volume)


@FUZZ
@given(document=_json)
def test_arbitrary_json_never_crashes_validation(document: Any) -> None:
    assert validators_agree(document)
    issues = validate_strategy(document)
    assert issues, "random JSON is never a valid strategy"
    _check_issues(document, issues)


@FUZZ
@given(document=_mutated_examples())
def test_mutated_examples_validate_or_compile_and_plan(document: Any) -> None:
    assert validators_agree(document)
    issues = validate_strategy(document)
    _check_issues(document, issues)
    if not issues:
        compiled = compile_strategy(document)
        plan = compiled.build_plan(_synthetic_bars(document))
        assert len(plan.sides) >= 1


def _value_within(parameter: TunableParameter) -> st.SearchStrategy[float]:
    low = min(parameter.minimum, 1e6) if parameter.minimum > -1e6 else -1e6
    high = min(parameter.maximum, max(low, 0.0) + 500.0)
    if parameter.value_type == "int":
        return st.integers(int(low), int(high)).map(float)
    return st.floats(low, high, exclude_min=parameter.exclusive_minimum).filter(parameter.accepts)


@st.composite
def _retuned_examples(draw: st.DrawFn) -> Any:
    document = get_example(draw(st.sampled_from(example_slugs())))
    parameters = list_tunable_parameters(document)
    chosen = draw(
        st.lists(st.sampled_from(parameters), min_size=1, max_size=4, unique_by=lambda p: p.pointer)
    )
    return document, {p.pointer: draw(_value_within(p)) for p in chosen}


@settings(FUZZ, max_examples=60)
@given(case=_retuned_examples())
def test_any_in_bounds_parameters_compile_and_plan_or_are_refused_cleanly(case: Any) -> None:
    document, values = case
    try:
        updated = apply_parameters(document, values)
    except StrategyValidationError as refused:
        # A combination broke a cross-parameter rule; pointers refer to the updated copy.
        assert refused.issues and all(isinstance(issue.code, ErrorCode) for issue in refused.issues)
        return
    plan = compile_strategy(updated).build_plan(_synthetic_bars(updated))
    for side in plan.sides:
        assert not side.entry[: plan.warmup_bars].any()
