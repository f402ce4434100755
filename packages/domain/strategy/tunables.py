"""Numeric knobs of a strategy, addressed by JSON pointer, for sensitivity scans and optimisation.

``list_tunable_parameters(document)`` enumerates indicator parameters (defaults included, even
when the document omits them), thresholds compared in conditions, temporal windows, order
offsets, exit distances, sizing values and portfolio numbers, each with its current value and
validity bounds. ``apply_parameters(document, {pointer: value})`` returns a new document with
the values set and re-validated. ``ParameterSpace`` does the same for many value sets of one
document (sweeps) and validates the document once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from packages.domain.strategy.canonical import copy_json
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.indicators import get_indicator
from packages.domain.strategy.limits import DEFAULT_LIMITS, Limits
from packages.domain.strategy.pointers import join_pointer, split_pointer
from packages.domain.strategy.schema import (
    MAX_ATR_MULTIPLE,
    MAX_ATR_PERIOD,
    MAX_PERCENT_DISTANCE,
    MAX_REWARD_RATIO,
    MAX_TARGET_VOLATILITY_PERCENT,
    MIN_PERCENT_OFFSET,
)
from packages.domain.strategy.validation import SymbolChecker, validate_semantics, validate_strategy
from packages.domain.strategy.vocabulary import (
    COMPARISON_OPS,
    CROSS_OPS,
    DEFAULT_ATR_PERIOD,
    DEFAULT_VOLATILITY_LOOKBACK,
    SIDES,
)

TunableKind = Literal[
    "indicator_param", "threshold", "temporal_window", "order", "exit", "sizing", "portfolio"
]


@dataclass(frozen=True)
class TunableParameter:
    """One numeric knob. Bounds are the values the language accepts, not a suggested search range.

    An ``int`` knob holds Python ints (value and bounds), so it serialises as JSON integers.
    """

    pointer: str
    label: str
    kind: TunableKind
    value_type: Literal["int", "float"]
    value: float
    minimum: float
    maximum: float
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def accepts(self, value: float) -> bool:
        above = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        below = value < self.maximum if self.exclusive_maximum else value <= self.maximum
        return above and below

    def to_dict(self) -> dict[str, Any]:
        return {
            "pointer": self.pointer,
            "label": self.label,
            "kind": self.kind,
            "type": self.value_type,
            "value": self.value,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "exclusive_minimum": self.exclusive_minimum,
            "exclusive_maximum": self.exclusive_maximum,
        }


class ParameterError(ValueError):
    """Values given to ``apply_parameters`` that do not name a tunable parameter or fit its bounds."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def list_tunable_parameters(
    document: Mapping[str, Any],
    *,
    symbol_checker: SymbolChecker | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[TunableParameter]:
    """Every tunable number of a valid ``document`` (raises ``StrategyValidationError`` otherwise)."""
    space = ParameterSpace.of(document, symbol_checker=symbol_checker, limits=limits)
    return list(space.parameters.values())


def apply_parameters(
    document: Mapping[str, Any],
    values: Mapping[str, float],
    *,
    symbol_checker: SymbolChecker | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """A copy of ``document`` with each pointer set to its value, validated as a whole.

    Raises ``ParameterError`` for unknown pointers, non-numbers, non-integers for integer
    parameters and out-of-bounds values, and ``StrategyValidationError`` when the values are
    each fine but together break a rule (e.g. a fast period no longer below the slow one).
    """
    return ParameterSpace.of(document, symbol_checker=symbol_checker, limits=limits).apply(values)


@dataclass(frozen=True, eq=False)
class ParameterSpace:
    """The tunable parameters of one valid document, for applying many value sets (sweeps).

    ``apply`` re-checks only what a numeric change can break. Each tunable's bounds lie inside
    what the JSON Schema accepts at its pointer and values keep their JSON type (the tunables
    tests check this bound by bound on every example), so a document stays schema-valid and only
    the semantic stage runs: indicator parameter rules, look-back caps, exits and sizing. That
    is about 0.1 ms per set instead of the schema's few milliseconds.
    """

    document: Mapping[str, Any]
    parameters: Mapping[str, TunableParameter]  # by pointer, in document order
    limits: Limits = DEFAULT_LIMITS
    symbol_checker: SymbolChecker | None = None

    @classmethod
    def of(
        cls,
        document: Mapping[str, Any],
        *,
        symbol_checker: SymbolChecker | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> ParameterSpace:
        """Validate ``document`` (raises ``StrategyValidationError``) and collect its parameters."""
        issues = validate_strategy(document, symbol_checker=symbol_checker, limits=limits)
        if issues:
            raise StrategyValidationError(issues)
        return cls.of_valid_document(document, limits, symbol_checker)

    @classmethod
    def of_valid_document(
        cls, document: Mapping[str, Any], limits: Limits, symbol_checker: SymbolChecker | None = None
    ) -> ParameterSpace:
        """For a document that already passed ``validate_strategy`` with ``limits`` (not re-checked)."""
        parameters = {parameter.pointer: parameter for parameter in _Collector(document, limits).collect()}
        return cls(document, parameters, limits, symbol_checker)

    def apply(self, values: Mapping[str, float]) -> dict[str, Any]:
        """A copy of the document with ``values`` set; errors as ``apply_parameters``."""
        problems: list[str] = []
        updated = copy_json(dict(self.document))
        for pointer, value in values.items():
            parameter = self.parameters.get(pointer)
            if parameter is None:
                problems.append(f"{pointer}: not a tunable parameter of this strategy")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                problems.append(f"{pointer}: {value!r} is not a number")
                continue
            if parameter.value_type == "int" and not float(value).is_integer():
                problems.append(f"{pointer}: {parameter.label} must be an integer, got {value}")
                continue
            if not parameter.accepts(value):
                low = f"> {parameter.minimum}" if parameter.exclusive_minimum else f">= {parameter.minimum}"
                high = f"< {parameter.maximum}" if parameter.exclusive_maximum else f"<= {parameter.maximum}"
                problems.append(f"{pointer}: {value} is outside {parameter.label}'s bounds ({low}, {high})")
                continue
            _set(updated, pointer, int(value) if parameter.value_type == "int" else float(value))
        if problems:
            raise ParameterError(problems)
        issues = validate_semantics(updated, symbol_checker=self.symbol_checker, limits=self.limits)
        if issues:
            raise StrategyValidationError(issues)
        return updated


def _set(document: dict[str, Any], pointer: str, value: float) -> None:
    """Set ``pointer``; a factor's missing ``params`` object is created (defaults are tunable too)."""
    tokens = split_pointer(pointer)
    target: Any = document
    for token in tokens[:-1]:
        target = target[int(token)] if isinstance(target, list) else target.setdefault(token, {})
    if isinstance(target, list):
        target[int(tokens[-1])] = value
    else:
        target[tokens[-1]] = value


class _Collector:
    def __init__(self, document: Mapping[str, Any], limits: Limits) -> None:
        self.document = document
        self.limits = limits
        self.magnitude = limits.max_literal_magnitude
        self.output_ranges: dict[str, dict[str, tuple[float, float] | None]] = {}

    def collect(self) -> Iterator[TunableParameter]:
        yield from self.factor_params()
        for side in SIDES:
            if side in self.document["trade"]:
                yield from self.side(side, self.document["trade"][side])
        yield from self.portfolio()

    def factor_params(self) -> Iterator[TunableParameter]:
        for index, factor in enumerate(self.document.get("factors", [])):
            spec = get_indicator(factor["indicator"])
            assert spec is not None, "validated documents only name catalogue indicators"
            self.output_ranges[factor["id"]] = {output.name: output.value_range for output in spec.outputs}
            given = factor.get("params", {})
            for param in spec.params:
                if param.type == "enum":
                    continue
                assert param.minimum is not None and param.maximum is not None
                pointer = join_pointer("/factors", index, "params", param.name)
                label = f"{factor['id']}.{param.name}"
                value = given.get(param.name, param.default)
                assert not isinstance(value, str), "numeric parameters hold numbers"
                if param.type == "int":
                    yield self.integer(pointer, label, "indicator_param", value, param.minimum, param.maximum)
                else:
                    yield TunableParameter(
                        pointer, label, "indicator_param", "float", float(value), param.minimum, param.maximum
                    )

    def conditions(self, node: Mapping[str, Any], pointer: str) -> Iterator[TunableParameter]:
        op = node["op"]
        window = self.limits.max_temporal_window
        if op in ("all", "any"):
            for index, child in enumerate(node["conditions"]):
                yield from self.conditions(child, join_pointer(pointer, "conditions", index))
        elif op == "not":
            yield from self.conditions(node["condition"], f"{pointer}/condition")
        elif op == "within_bars":
            yield self.integer(
                f"{pointer}/bars", "within_bars.bars", "temporal_window", node["bars"], 1, window
            )
            yield from self.conditions(node["condition"], f"{pointer}/condition")
        elif op == "bars_since":
            for bound in ("min", "max"):
                if bound in node:
                    yield self.integer(
                        f"{pointer}/{bound}", f"bars_since.{bound}", "temporal_window", node[bound], 0, window
                    )
            yield from self.conditions(node["condition"], f"{pointer}/condition")
        elif op == "sequence":
            steps = len(node["steps"])
            yield self.integer(
                f"{pointer}/within_bars",
                "sequence.within_bars",
                "temporal_window",
                node["within_bars"],
                steps,
                window,
            )
            for index, step in enumerate(node["steps"]):
                yield from self.conditions(step, join_pointer(pointer, "steps", index))
        elif op in COMPARISON_OPS or op in CROSS_OPS:
            for here, other in (("left", "right"), ("right", "left")):
                if isinstance(node[here], dict):
                    continue
                low, high = self.threshold_range(node[other])
                yield TunableParameter(
                    pointer=f"{pointer}/{here}",
                    label=f"threshold {op} {self.describe(node[other])}",
                    kind="threshold",
                    value_type="float",
                    value=float(node[here]),
                    minimum=low,
                    maximum=high,
                )

    def threshold_range(self, other: Any) -> tuple[float, float]:
        """A bounded output (e.g. RSI 0..100) bounds the threshold; otherwise the literal cap does."""
        if isinstance(other, dict) and "factor" in other:
            ranges = self.output_ranges.get(other["factor"], {})
            output = other.get("output") or next(iter(ranges), None)
            bounded = ranges.get(output) if output else None
            if bounded is not None:
                return bounded
        return (-self.magnitude, self.magnitude)

    @staticmethod
    def describe(operand: Any) -> str:
        if isinstance(operand, dict):
            if "factor" in operand:
                return str(operand["factor"]) + (f".{operand['output']}" if "output" in operand else "")
            return str(operand["field"])
        return str(operand)

    def integer(
        self, pointer: str, label: str, kind: TunableKind, value: float, minimum: float, maximum: float
    ) -> TunableParameter:
        return TunableParameter(pointer, label, kind, "int", int(value), int(minimum), int(maximum))

    def positive(
        self,
        pointer: str,
        label: str,
        kind: TunableKind,
        value: float,
        maximum: float,
        *,
        exclusive_maximum: bool = False,
    ) -> TunableParameter:
        return TunableParameter(
            pointer,
            label,
            kind,
            "float",
            float(value),
            0.0,
            maximum,
            exclusive_minimum=True,
            exclusive_maximum=exclusive_maximum,
        )

    def distance_cap(self, unit: str) -> float:
        """The schema's cap on a distance in ``unit``; points are prices, bounded by the literal cap."""
        return {"percent": MAX_PERCENT_DISTANCE, "atr": MAX_ATR_MULTIPLE}.get(unit, self.magnitude)

    def offset(self, node: Mapping[str, Any], pointer: str, label: str) -> Iterator[TunableParameter]:
        """A signed order offset: a percent one must keep the order price above zero."""
        unit, cap = node["unit"], self.distance_cap(node["unit"])
        minimum = MIN_PERCENT_OFFSET if unit == "percent" else -cap
        yield TunableParameter(
            f"{pointer}/value",
            f"{label}.value",
            "order",
            "float",
            float(node["value"]),
            minimum,
            cap,
            exclusive_minimum=unit == "percent",
        )
        yield from self.atr_period(node, pointer, label, "order")

    def distance(
        self, node: Mapping[str, Any], pointer: str, label: str, *, reaches_zero: bool
    ) -> Iterator[TunableParameter]:
        """An exit distance. ``reaches_zero``: the exit's price moves toward zero by the distance (a
        long's stop, a short's target), so a percent one of 100 or more could never trigger (the
        validator refuses it)."""
        if node["unit"] == "percent" and reaches_zero:
            maximum, exclusive = 100.0, True
        else:
            maximum, exclusive = self.distance_cap(node["unit"]), False
        yield self.positive(
            f"{pointer}/value", f"{label}.value", "exit", node["value"], maximum, exclusive_maximum=exclusive
        )
        yield from self.atr_period(node, pointer, label, "exit")

    def atr_period(
        self, node: Mapping[str, Any], pointer: str, label: str, kind: TunableKind
    ) -> Iterator[TunableParameter]:
        if node["unit"] == "atr":
            yield self.integer(
                f"{pointer}/atr_period",
                f"{label}.atr_period",
                kind,
                node.get("atr_period", DEFAULT_ATR_PERIOD),
                1,
                MAX_ATR_PERIOD,
            )

    def side(self, side: str, node: Mapping[str, Any]) -> Iterator[TunableParameter]:
        pointer = f"/trade/{side}"
        yield from self.conditions(node["entry"]["condition"], f"{pointer}/entry/condition")
        order = node["entry"].get("order")
        if order and order["type"] != "market":
            yield from self.offset(
                order["price"]["offset"], f"{pointer}/entry/order/price/offset", f"{side}.order_offset"
            )
            time_in_force = order.get("time_in_force", {})
            if time_in_force.get("type") == "bars":
                yield self.integer(
                    f"{pointer}/entry/order/time_in_force/bars",
                    f"{side}.order_valid_bars",
                    "order",
                    time_in_force["bars"],
                    1,
                    self.limits.max_order_valid_bars,
                )
        for index, rule in enumerate(node.get("exits", [])):
            exit_pointer = join_pointer(pointer, "exits", index)
            label = f"{side}.{rule['name']}"
            if rule["type"] == "signal":
                yield from self.conditions(rule["condition"], f"{exit_pointer}/condition")
            elif rule["type"] == "time_exit":
                yield self.integer(
                    f"{exit_pointer}/bars",
                    f"{label}.bars",
                    "exit",
                    rule["bars"],
                    1,
                    self.limits.max_time_exit_bars,
                )
            elif rule["type"] == "bracket":
                # A short's bracket target is bounded jointly with reward_ratio: the validator checks it.
                yield from self.distance(
                    rule["stop"], f"{exit_pointer}/stop", f"{label}.stop", reaches_zero=side == "long"
                )
                yield self.positive(
                    f"{exit_pointer}/reward_ratio",
                    f"{label}.reward_ratio",
                    "exit",
                    rule["reward_ratio"],
                    MAX_REWARD_RATIO,
                )
            else:
                stop = rule["type"] in ("stop_loss", "trailing_stop")
                yield from self.distance(
                    rule["distance"],
                    f"{exit_pointer}/distance",
                    f"{label}.distance",
                    reaches_zero=stop == (side == "long"),
                )
        sizing = node["sizing"]
        fields = {
            "fixed_quantity": ("quantity", self.magnitude),
            "fixed_cash": ("cash", self.magnitude),
            "percent_equity": ("percent", 100.0),
            "risk_per_trade": ("percent", 100.0),
            "volatility_target": ("annual_percent", MAX_TARGET_VOLATILITY_PERCENT),
        }
        name, maximum = fields[sizing["mode"]]
        yield self.positive(
            f"{pointer}/sizing/{name}", f"{side}.sizing.{name}", "sizing", sizing[name], maximum
        )
        if sizing["mode"] == "volatility_target":
            yield self.integer(
                f"{pointer}/sizing/lookback_bars",
                f"{side}.sizing.lookback_bars",
                "sizing",
                sizing.get("lookback_bars", DEFAULT_VOLATILITY_LOOKBACK),
                2,
                self.limits.max_temporal_window,
            )

    def portfolio(self) -> Iterator[TunableParameter]:
        portfolio = self.document.get("portfolio", {})
        symbols = len(self.document["universe"]["symbols"])
        if "max_open_positions" in portfolio:
            yield self.integer(
                "/portfolio/max_open_positions",
                "portfolio.max_open_positions",
                "portfolio",
                portfolio["max_open_positions"],
                1,
                self.limits.max_symbols * 2,
            )
        rotation = portfolio.get("rotation")
        if rotation:
            yield self.integer(
                "/portfolio/rotation/top_n", "rotation.top_n", "portfolio", rotation["top_n"], 1, symbols - 1
            )
            yield self.integer(
                "/portfolio/rotation/rebalance_every_bars",
                "rotation.rebalance_every_bars",
                "portfolio",
                rotation["rebalance_every_bars"],
                1,
                self.limits.max_time_exit_bars,
            )
