"""Condition semantics on hand-written arrays, checked against plain per-bar loops written here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from packages.domain.strategy.conditions import compile_condition, cross_values


class _Provider:
    """Series by name for condition evaluation; every factor has the single output ``value``."""

    def __init__(self, series: dict[str, Any]) -> None:
        self.series = {
            name: np.asarray(values, dtype=float).reshape(len(values), -1) for name, values in series.items()
        }
        first = next(iter(self.series.values()))
        self.shape = first.shape
        self.leaves: dict[str, np.ndarray] = {}

    def field_series(self, field: str, offset: int) -> np.ndarray:
        return self._shifted(self.series[field], offset)

    def factor_series(self, factor_id: str, output: str, offset: int) -> np.ndarray:
        return self._shifted(self.series[factor_id], offset)

    def record_leaf(self, pointer: str, values: np.ndarray) -> None:
        self.leaves[pointer] = values

    @staticmethod
    def _shifted(values: np.ndarray, offset: int) -> np.ndarray:
        out = np.full_like(values, np.nan)
        out[offset:] = values[: len(values) - offset]
        return out


def _evaluate(node: dict[str, Any], series: dict[str, Any]) -> tuple[np.ndarray, _Provider]:
    provider = _Provider(series)
    outputs = {name: ("value",) for name in series}
    condition = compile_condition(node, "/c", outputs, {})
    return condition.evaluate(provider)[:, 0], provider


def _ref(name: str, offset: int = 0) -> dict[str, Any]:
    return {"factor": name, "offset": offset}


def _is(name: str) -> dict[str, Any]:
    """Leaf true where the 0/1 series ``name`` is 1."""
    return {"op": "gt", "left": _ref(name), "right": 0.5}


def test_cross_above_counts_a_touch_then_a_move_above_once() -> None:
    a = [1.0, 2.0, 2.0, 3.0, 1.0, 1.0, 2.5, np.nan, 3.0, 1.0]
    b = [2.0] * len(a)
    above, _ = _evaluate({"op": "cross_above", "left": _ref("a"), "right": _ref("b")}, {"a": a, "b": b})
    # bar 1 touches (2 == 2, not above); bar 3 is above after a touch; bar 6 crosses from below;
    # bar 8 follows an undefined bar so nothing is known about the previous side.
    assert above.tolist() == [False, False, False, True, False, False, True, False, False, False]
    below, _ = _evaluate({"op": "cross_below", "left": _ref("a"), "right": 2.0}, {"a": a, "b": b})
    assert below.tolist() == [False, False, False, False, True, False, False, False, False, True]


def test_cross_matches_its_definition_on_random_series() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, size=300).astype(float)
    b = rng.integers(0, 4, size=300).astype(float)
    a[rng.random(300) < 0.05] = np.nan
    result, provider = _evaluate(
        {"op": "cross_above", "left": _ref("a"), "right": _ref("b")}, {"a": a, "b": b}
    )
    expected = [False] + [bool(a[i - 1] <= b[i - 1] and a[i] > b[i]) for i in range(1, 300)]
    assert result.tolist() == expected
    assert provider.leaves["/c"][:, 0].tolist() == expected


@pytest.mark.parametrize("op", ["cross_above", "cross_below"])
@pytest.mark.parametrize("columns", [1, 3])
@pytest.mark.parametrize("constant_right", [False, True])
def test_every_cross_path_matches_the_definition(op: str, columns: int, constant_right: bool) -> None:
    """One symbol with two series takes the compiled loop; several symbols or a constant take numpy."""
    rng = np.random.default_rng(columns * 2 + constant_right)
    a = rng.integers(0, 4, size=(200, columns)).astype(float)
    a[rng.random(a.shape) < 0.05] = np.nan
    b: np.ndarray | float = 2.0 if constant_right else rng.integers(0, 4, size=(200, columns)).astype(float)
    full_b = np.broadcast_to(b, a.shape)
    result = cross_values(a, b, op, a.shape)
    for column in range(columns):
        x, y = a[:, column], full_b[:, column]
        if op == "cross_above":
            expected = [False] + [bool(x[i - 1] <= y[i - 1] and x[i] > y[i]) for i in range(1, len(x))]
        else:
            expected = [False] + [bool(x[i - 1] >= y[i - 1] and x[i] < y[i]) for i in range(1, len(x))]
        assert result[:, column].tolist() == expected
    assert cross_values(a[:0], b if constant_right else full_b[:0], op, (0, columns)).shape == (0, columns)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("gt", [False, False, True, False]),
        ("gte", [False, True, True, False]),
        ("lt", [True, False, False, False]),
        ("lte", [True, True, False, False]),
        ("eq", [False, True, False, False]),
        ("neq", [True, False, True, False]),
    ],
)
def test_comparisons_are_false_on_undefined_values(op: str, expected: list[bool]) -> None:
    result, _ = _evaluate({"op": op, "left": _ref("x"), "right": 2}, {"x": [1.0, 2.0, 3.0, np.nan]})
    assert result.tolist() == expected


def test_offsets_read_earlier_bars() -> None:
    result, _ = _evaluate(
        {"op": "gt", "left": _ref("x"), "right": _ref("x", 2)}, {"x": [1.0, 3.0, 2.0, 1.0, 5.0]}
    )
    assert result.tolist() == [False, False, True, False, True]


def test_groups_and_negation() -> None:
    series = {"p": [0, 1, 1, 0], "q": [0, 0, 1, 1]}
    both, _ = _evaluate({"op": "all", "conditions": [_is("p"), _is("q")]}, series)
    either, _ = _evaluate({"op": "any", "conditions": [_is("p"), _is("q")]}, series)
    neither, _ = _evaluate(
        {"op": "not", "condition": {"op": "any", "conditions": [_is("p"), _is("q")]}}, series
    )
    assert both.tolist() == [False, False, True, False]
    assert either.tolist() == [False, True, True, True]
    assert neither.tolist() == [True, False, False, False]


def _random_masks(seed: int, count: int, length: int, density: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(length) < density for _ in range(count)]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("window", [1, 3, 7])
def test_within_bars(seed: int, window: int) -> None:
    (mask,) = _random_masks(seed, 1, 80, 0.1)
    result, _ = _evaluate({"op": "within_bars", "bars": window, "condition": _is("c")}, {"c": mask})
    expected = [bool(mask[max(0, i - window + 1) : i + 1].any()) for i in range(len(mask))]
    assert result.tolist() == expected


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("low", "high"), [(0, 0), (2, None), (None, 4), (1, 6)])
def test_bars_since(seed: int, low: int | None, high: int | None) -> None:
    (mask,) = _random_masks(seed, 1, 80, 0.08)
    node: dict[str, Any] = {"op": "bars_since", "condition": _is("c")}
    if low is not None:
        node["min"] = low
    if high is not None:
        node["max"] = high
    result, _ = _evaluate(node, {"c": mask})
    expected = []
    for i in range(len(mask)):
        past = [t for t in range(i + 1) if mask[t]]
        if not past:
            expected.append(False)
            continue
        elapsed = i - past[-1]
        expected.append((low is None or elapsed >= low) and (high is None or elapsed <= high))
    assert result.tolist() == expected


def _sequence_brute_force(masks: list[np.ndarray], window: int) -> list[bool]:
    def chain_exists(step: int, after: int, end: int, start: int) -> bool:
        if step == len(masks) - 1:
            return bool(masks[step][end]) and end > after
        return any(
            masks[step][t] and chain_exists(step + 1, t, end, start)
            for t in range(max(after + 1, start), end)
        )

    n = len(masks[0])
    return [
        any(masks[0][t1] and chain_exists(1, t1, i, t1) for t1 in range(max(0, i - window + 1), i))
        for i in range(n)
    ]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("steps", "window"), [(2, 2), (2, 5), (3, 4), (3, 9), (4, 12)])
def test_sequence(seed: int, steps: int, window: int) -> None:
    masks = _random_masks(seed * 10 + steps, steps, 60, 0.25)
    node = {"op": "sequence", "within_bars": window, "steps": [_is(f"s{k}") for k in range(steps)]}
    result, _ = _evaluate(node, {f"s{k}": mask for k, mask in enumerate(masks)})
    assert result.tolist() == _sequence_brute_force(masks, window)


def test_sequence_requires_order_and_distinct_bars() -> None:
    first = np.array([0, 1, 0, 0, 0, 0, 1, 1], dtype=bool)
    second = np.array([1, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    node = {"op": "sequence", "within_bars": 3, "steps": [_is("a"), _is("b")]}
    result, _ = _evaluate(node, {"a": first, "b": second})
    # b at bar 0 precedes every a; b at bar 1 is the same bar as a; b at bar 3 follows a at bar 1
    # within 3 bars; b at bar 6 is the same bar as a at 6 and a at 1 is too far back.
    assert result.tolist() == [False, False, False, True, False, False, False, False]
