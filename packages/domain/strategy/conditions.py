"""Condition trees compiled to vectorised evaluation over ``(n_bars, n_symbols)`` matrices.

Each node evaluates every bar and symbol at once with numpy; no Python loop runs per bar.
Semantics at bar ``i`` (all values are those known at bar ``i``'s close):

- comparisons ``gt gte lt lte eq neq`` are false when either side is undefined (NaN), ``neq``
  included; ``eq`` is exact equality, meant for integer-valued outputs (patterns, directions);
- ``cross_above(a, b)``: ``a[i-1] <= b[i-1] and a[i] > b[i]``. A touch (equality) on the previous
  bar followed by ``a > b`` counts as a cross; equality on the current bar does not, so a series
  that rises to meet ``b`` and then moves above it crosses once, on the bar it is strictly above.
  ``cross_below`` mirrors it (``a[i-1] >= b[i-1] and a[i] < b[i]``); undefined values never cross;
- ``all``/``any``/``not``: logical and/or/negation (``not`` of an undefined comparison is true);
- ``within_bars(c, N)``: ``c`` was true on at least one of bars ``i-N+1 .. i``;
- ``bars_since(c, min, max)``: ``k = i - (last bar <= i where c was true)`` satisfies
  ``min <= k <= max`` (false while ``c`` has never been true);
- ``sequence(c1..cK, N)``: there are bars ``t1 < t2 < ... < tK = i`` with ``cj`` true at ``tj`` and
  ``i - t1 <= N - 1``: the steps happened in order, each on a later bar, all inside ``N`` bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numba
import numpy as np
import numpy.typing as npt

from packages.domain.strategy.plan import BoolMatrix, FloatMatrix
from packages.domain.strategy.pointers import join_pointer

IndexMatrix = npt.NDArray[np.int64]


class SeriesProvider(Protocol):
    """What condition evaluation reads: base-timeframe series and a place for leaf results."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def field_series(self, field: str, offset: int) -> FloatMatrix: ...

    def factor_series(self, factor_id: str, output: str, offset: int) -> FloatMatrix: ...

    def record_leaf(self, pointer: str, values: BoolMatrix) -> None: ...


# --- operands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constant:
    value: float

    def series(self, provider: SeriesProvider) -> FloatMatrix | float:
        return self.value

    def label(self) -> str:
        return f"{self.value:g}"


@dataclass(frozen=True)
class FieldOperand:
    field: str
    offset: int

    def series(self, provider: SeriesProvider) -> FloatMatrix | float:
        return provider.field_series(self.field, self.offset)

    def label(self) -> str:
        return self.field + (f"[{self.offset}]" if self.offset else "")


@dataclass(frozen=True)
class FactorOperand:
    factor_id: str
    output: str
    offset: int
    single_output: bool

    def series(self, provider: SeriesProvider) -> FloatMatrix | float:
        return provider.factor_series(self.factor_id, self.output, self.offset)

    def label(self) -> str:
        name = self.factor_id if self.single_output else f"{self.factor_id}.{self.output}"
        return name + (f"[{self.offset}]" if self.offset else "")


Operand = Constant | FieldOperand | FactorOperand


def compile_operand(node: Any, outputs_of: Mapping[str, tuple[str, ...]]) -> Operand:
    """Operand from a schema-valid JSON node; ``outputs_of`` maps factor ids to output names."""
    if not isinstance(node, dict):
        return Constant(float(node))
    offset = int(node.get("offset", 0))
    if "factor" in node:
        outputs = outputs_of[node["factor"]]
        return FactorOperand(node["factor"], str(node.get("output", outputs[0])), offset, len(outputs) == 1)
    return FieldOperand(str(node["field"]), offset)


# --- vectorised helpers ---------------------------------------------------------------------------


def _matrix(value: FloatMatrix | float, shape: tuple[int, int]) -> FloatMatrix:
    """``value`` as a ``shape`` matrix; a constant becomes a read-only broadcast view (no allocation)."""
    if isinstance(value, np.ndarray):
        return value
    return np.broadcast_to(np.float64(value), shape)


@numba.njit(cache=True)
def _cross_series(left: FloatMatrix, right: FloatMatrix, above: bool, out: BoolMatrix) -> None:
    """One pass over two 1-D series: no shifted copies and no temporaries (about twice numpy's speed)."""
    out[:1] = False
    if above:
        for i in range(1, out.shape[0]):
            out[i] = (left[i - 1] <= right[i - 1]) & (left[i] > right[i])
    else:
        for i in range(1, out.shape[0]):
            out[i] = (left[i - 1] >= right[i - 1]) & (left[i] < right[i])


def cross_values(
    left: FloatMatrix | float, right: FloatMatrix | float, op: str, shape: tuple[int, int]
) -> BoolMatrix:
    """``cross_above`` / ``cross_below`` of two operands over ``shape``; row 0 is always false."""
    above = op == "cross_above"
    values = np.empty(shape, dtype=np.bool_)
    if isinstance(left, np.ndarray) and isinstance(right, np.ndarray) and shape[1] == 1:
        # The single-symbol case, on every backtest's hot path.
        _cross_series(left[:, 0], right[:, 0], above, values[:, 0])
        return values
    # Several symbols (a loop down each column would stride across rows) or a constant side:
    # two passes over row-shifted views, "now" into the result, then and-ed with "before".
    left, right = _matrix(left, shape), _matrix(right, shape)
    now, before = (np.greater, np.less_equal) if above else (np.less, np.greater_equal)
    values[:1] = False
    now(left[1:], right[1:], out=values[1:])
    values[1:] &= before(left[:-1], right[:-1])
    return values


def last_true_index(mask: BoolMatrix) -> IndexMatrix:
    """Row of the latest true value at or before each row, -1 where there is none yet."""
    rows = np.arange(mask.shape[0], dtype=np.int64)[:, None]
    return np.maximum.accumulate(np.where(mask, rows, -1), axis=0)


def _rows(shape: tuple[int, int]) -> IndexMatrix:
    return np.arange(shape[0], dtype=np.int64)[:, None]


# --- nodes ----------------------------------------------------------------------------------------


class Condition(Protocol):
    def evaluate(self, provider: SeriesProvider) -> BoolMatrix: ...


_COMPARE = {
    "gt": np.greater,
    "gte": np.greater_equal,
    "lt": np.less,
    "lte": np.less_equal,
    "eq": np.equal,
}


@dataclass(frozen=True)
class Comparison:
    pointer: str
    op: str
    left: Operand
    right: Operand

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        left = self.left.series(provider)
        right = self.right.series(provider)
        if self.op == "neq":
            result = np.not_equal(left, right)
            # NaN != x is true in IEEE arithmetic; an undefined side makes the comparison false.
            result &= ~np.isnan(left)
            result &= ~np.isnan(right)
        else:
            result = _COMPARE[self.op](left, right)
        shape = provider.shape
        values = (
            result
            if isinstance(result, np.ndarray) and result.shape == shape
            else np.broadcast_to(np.asarray(result, dtype=np.bool_), shape).copy()
        )
        provider.record_leaf(self.pointer, values)
        return values

    def label(self) -> str:
        symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "neq": "!="}[self.op]
        return f"{self.left.label()} {symbol} {self.right.label()}"


@dataclass(frozen=True)
class Cross:
    pointer: str
    op: str
    left: Operand
    right: Operand

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        left = self.left.series(provider)
        right = self.right.series(provider)
        values = cross_values(left, right, self.op, provider.shape)
        provider.record_leaf(self.pointer, values)
        return values

    def label(self) -> str:
        return f"{self.left.label()} {self.op} {self.right.label()}"


@dataclass(frozen=True)
class Group:
    op: str  # "all" or "any"
    children: tuple[Condition, ...]

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        combine = np.logical_and if self.op == "all" else np.logical_or
        first, *rest = [child.evaluate(provider) for child in self.children]
        if not rest:
            return first
        # A fresh result accumulated in place; children may be recorded leaves and stay untouched.
        values = combine(first, rest[0])
        for child in rest[1:]:
            combine(values, child, out=values)
        return values


@dataclass(frozen=True)
class Negation:
    child: Condition

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        return ~self.child.evaluate(provider)


@dataclass(frozen=True)
class WithinBars:
    child: Condition
    bars: int

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        last = last_true_index(self.child.evaluate(provider))
        return (last >= 0) & (_rows(provider.shape) - last <= self.bars - 1)


@dataclass(frozen=True)
class BarsSince:
    child: Condition
    minimum: int | None
    maximum: int | None

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        last = last_true_index(self.child.evaluate(provider))
        elapsed = _rows(provider.shape) - last
        values = last >= 0
        if self.minimum is not None:
            values &= elapsed >= self.minimum
        if self.maximum is not None:
            values &= elapsed <= self.maximum
        return values


@dataclass(frozen=True)
class Sequence:
    steps: tuple[Condition, ...]
    within_bars: int

    def evaluate(self, provider: SeriesProvider) -> BoolMatrix:
        """Track, per bar, the latest possible first-step bar of a chain of the steps so far.

        ``start`` = latest t1 over chains of steps 1..j ending at or before the bar; a later t1
        is always better because the whole chain must fit in the window.
        """
        rows = _rows(provider.shape)
        masks = [step.evaluate(provider) for step in self.steps]
        start = np.maximum.accumulate(np.where(masks[0], rows, -1), axis=0)
        ending_here = start
        for mask in masks[1:]:
            before = np.empty_like(start)
            before[:1] = -1
            before[1:] = start[:-1]
            ending_here = np.where(mask & (before >= 0), before, -1)
            start = np.maximum.accumulate(ending_here, axis=0)
        return (ending_here >= 0) & (rows - ending_here <= self.within_bars - 1)


def compile_condition(
    node: Mapping[str, Any],
    pointer: str,
    outputs_of: Mapping[str, tuple[str, ...]],
    leaves: dict[str, str],
) -> Condition:
    """Condition from a schema-valid JSON node; collects leaf labels by pointer into ``leaves``."""
    op = node["op"]
    if op in ("all", "any"):
        children = tuple(
            compile_condition(child, join_pointer(pointer, "conditions", index), outputs_of, leaves)
            for index, child in enumerate(node["conditions"])
        )
        return Group(op, children)
    if op == "not":
        return Negation(compile_condition(node["condition"], f"{pointer}/condition", outputs_of, leaves))
    if op == "within_bars":
        child = compile_condition(node["condition"], f"{pointer}/condition", outputs_of, leaves)
        return WithinBars(child, int(node["bars"]))
    if op == "bars_since":
        child = compile_condition(node["condition"], f"{pointer}/condition", outputs_of, leaves)
        return BarsSince(child, node.get("min"), node.get("max"))
    if op == "sequence":
        steps = tuple(
            compile_condition(step, join_pointer(pointer, "steps", index), outputs_of, leaves)
            for index, step in enumerate(node["steps"])
        )
        return Sequence(steps, int(node["within_bars"]))
    left = compile_operand(node["left"], outputs_of)
    right = compile_operand(node["right"], outputs_of)
    leaf: Comparison | Cross = (
        Cross(pointer, op, left, right) if op.startswith("cross") else Comparison(pointer, op, left, right)
    )
    leaves[pointer] = leaf.label()
    return leaf
