"""Compilation: a valid document becomes a ``CompiledStrategy`` that builds strategy plans.

``compile_strategy(document)`` validates, deduplicates indicator requests across the document
(same indicator, parameters, source and timeframe are computed once, whatever factor ids or exit
distances ask for them), computes the warm-up and compiles conditions to vectorised form.
``CompiledStrategy.build_plan(bars)`` then evaluates everything over bar matrices; the compiled
object is immutable and can build plans for many bar sets (backtests, each runtime tick).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import talib

from packages.domain.strategy.bars import (
    BarMatrix,
    BarsLike,
    Resampler,
    resample_bars,
    select_symbols,
    take_rows,
    visible_rows,
)
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.conditions import Condition, FactorOperand, compile_condition, compile_operand
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.indicators import SOURCE_INPUT, IndicatorSpec, ParamValue, get_indicator
from packages.domain.strategy.limits import DEFAULT_LIMITS, Limits
from packages.domain.strategy.plan import (
    GOOD_TILL_CANCELLED,
    BoolMatrix,
    ExitKind,
    ExitPlan,
    FloatMatrix,
    OrderKind,
    OrderPlan,
    PortfolioPlan,
    RotationPlan,
    Side,
    SidePlan,
    SizingMode,
    SizingPlan,
    StrategyPlan,
)
from packages.domain.strategy.validation import SymbolChecker, validate_strategy
from packages.domain.strategy.vocabulary import (
    DEFAULT_ATR_PERIOD,
    DEFAULT_VOLATILITY_LOOKBACK,
    SIDES,
    bars_per_year,
)
from packages.domain.strategy.warmup import condition_warmup, scaled_warmup


@dataclass(frozen=True)
class IndicatorRequest:
    """One indicator computation; equal requests are computed once per plan."""

    indicator: str
    params: tuple[tuple[str, ParamValue], ...]  # resolved, in catalogue order
    source: str | None  # None for indicators reading fixed fields
    timeframe: str

    @property
    def spec(self) -> IndicatorSpec:
        spec = get_indicator(self.indicator)
        if spec is None:
            raise KeyError(self.indicator)
        return spec

    def warmup(self) -> int:
        return self.spec.warmup(dict(self.params))

    def label(self) -> str:
        params = ",".join(f"{name}={value}" for name, value in self.params)
        source = f" of {self.source}" if self.source else ""
        return f"{self.indicator}({params}){source} @{self.timeframe}"


@dataclass(frozen=True)
class FactorBinding:
    factor_id: str
    request: IndicatorRequest
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Distance:
    """An exit or order distance: percent of a price, absolute points or a multiple of ATR."""

    unit: str
    value: float
    atr: IndicatorRequest | None


@dataclass(frozen=True)
class _CompiledExit:
    name: str
    kind: ExitKind
    condition: Condition | None = None
    distance: Distance | None = None
    reward_ratio: float | None = None
    bars: int | None = None


@dataclass(frozen=True)
class _CompiledSide:
    side: Side
    entry: Condition
    order_kind: OrderKind
    order_reference: str | None
    order_offset: Distance | None
    valid_bars: int
    exits: tuple[_CompiledExit, ...]
    sizing_mode: SizingMode
    sizing_value: float
    risk_stop: Distance | None  # stop distance used by risk_per_trade sizing
    volatility_lookback: int | None


@dataclass(frozen=True)
class _CompiledRotation:
    score: FactorOperand
    top_n: int
    every_bars: int


@dataclass(frozen=True)
class CompiledStrategy:
    """An executable strategy. Build plans with ``build_plan``; everything else is read-only facts."""

    document: dict[str, Any] = field(repr=False)
    document_hash: str
    market: str
    symbols: tuple[str, ...]
    timeframe: str
    factors: Mapping[str, FactorBinding]
    requests: tuple[IndicatorRequest, ...]  # deduplicated, factors and exit/order ATRs alike
    warmup_bars: int
    leaf_labels: Mapping[str, str]  # condition leaf pointer -> readable text
    max_open_positions: int
    _sides: tuple[_CompiledSide, ...] = field(repr=False)
    _rotation: _CompiledRotation | None = field(repr=False)

    @property
    def higher_timeframes(self) -> tuple[str, ...]:
        """Timeframes other than the strategy's that factors are computed on."""
        return tuple(sorted({r.timeframe for r in self.requests if r.timeframe != self.timeframe}))

    def build_plan(
        self,
        bars: BarsLike,
        *,
        higher_timeframe_bars: Mapping[str, BarsLike] | None = None,
        resampler: Resampler | None = None,
    ) -> StrategyPlan:
        """Evaluate the strategy over ``bars`` (strategy timeframe, all universe symbols).

        Higher-timeframe factors read ``higher_timeframe_bars[tf]`` when given, else bars
        built by ``resampler`` (default: ``resample_bars``, plain UTC calendar buckets).
        """
        context = _PlanContext(self, bars, higher_timeframe_bars or {}, resampler or resample_bars)
        sides = tuple(context.side_plan(side) for side in self._sides)
        rotation = None
        if self._rotation is not None:
            rotation = RotationPlan(
                score=context.factor_series(
                    self._rotation.score.factor_id, self._rotation.score.output, self._rotation.score.offset
                ),
                top_n=self._rotation.top_n,
                every_bars=self._rotation.every_bars,
            )
        factors = {
            (factor_id if len(binding.outputs) == 1 else f"{factor_id}.{output}"): context.factor_series(
                factor_id, output, 0
            )
            for factor_id, binding in self.factors.items()
            for output in binding.outputs
        }
        return StrategyPlan(
            index=context.bars.index,
            symbols=self.symbols,
            sides=sides,
            portfolio=PortfolioPlan(self.max_open_positions, rotation),
            warmup_bars=self.warmup_bars,
            factors=factors,
            leaves=context.leaves,
        )


def compile_strategy(
    document: Any,
    *,
    symbol_checker: SymbolChecker | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> CompiledStrategy:
    """Validate and compile ``document``; raises ``StrategyValidationError`` listing every issue."""
    issues = validate_strategy(document, symbol_checker=symbol_checker, limits=limits)
    if issues:
        raise StrategyValidationError(issues)
    return _Compiler(copy.deepcopy(document)).compile()


class _Compiler:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.timeframe = str(document["timeframe"])
        self.requests: dict[IndicatorRequest, IndicatorRequest] = {}
        self.factors: dict[str, FactorBinding] = {}
        self.leaves: dict[str, str] = {}
        self.warmups: list[int] = [0]

    def request(
        self, indicator: str, params: Mapping[str, ParamValue], source: str | None, timeframe: str
    ) -> IndicatorRequest:
        spec = get_indicator(indicator)
        assert spec is not None, "validated documents only name catalogue indicators"
        resolved = spec.resolve_params(params)
        candidate = IndicatorRequest(
            indicator,
            tuple(resolved.items()),
            (source or "close") if spec.accepts_source else None,
            timeframe,
        )
        # setdefault keeps the first instance, so equal requests are literally one object.
        return self.requests.setdefault(candidate, candidate)

    def factor_warmup(self, factor_id: str, offset: int) -> int:
        request = self.factors[factor_id].request
        return scaled_warmup(request.warmup(), offset, request.timeframe, self.timeframe)

    def condition(self, node: Mapping[str, Any], pointer: str) -> Condition:
        self.warmups.append(condition_warmup(node, self.factor_warmup))
        return compile_condition(node, pointer, self.outputs_of, self.leaves)

    @property
    def outputs_of(self) -> dict[str, tuple[str, ...]]:
        return {factor_id: binding.outputs for factor_id, binding in self.factors.items()}

    def distance(self, node: Mapping[str, Any]) -> Distance:
        atr = None
        if node["unit"] == "atr":
            period = int(node.get("atr_period", DEFAULT_ATR_PERIOD))
            atr = self.request("atr", {"period": period}, None, self.timeframe)
            self.warmups.append(atr.warmup())
        return Distance(str(node["unit"]), float(node["value"]), atr)

    def compile(self) -> CompiledStrategy:
        document = self.document
        for factor in document.get("factors", []):
            spec = get_indicator(factor["indicator"])
            assert spec is not None
            request = self.request(
                spec.name,
                factor.get("params", {}),
                factor.get("source"),
                str(factor.get("timeframe", self.timeframe)),
            )
            self.factors[factor["id"]] = FactorBinding(factor["id"], request, spec.output_names)
        sides = tuple(
            self.side(cast(Side, side), document["trade"][side])
            for side in SIDES
            if side in document["trade"]
        )
        portfolio = document.get("portfolio", {})
        rotation = None
        if "rotation" in portfolio:
            node = portfolio["rotation"]
            score = compile_operand(node["rank_by"], self.outputs_of)
            assert isinstance(score, FactorOperand)
            self.warmups.append(self.factor_warmup(score.factor_id, score.offset))
            rotation = _CompiledRotation(score, int(node["top_n"]), int(node["rebalance_every_bars"]))
        default_open = rotation.top_n if rotation else len(document["universe"]["symbols"])
        return CompiledStrategy(
            document=document,
            document_hash=document_hash(document),
            market=str(document["universe"]["market"]),
            symbols=tuple(document["universe"]["symbols"]),
            timeframe=self.timeframe,
            factors=self.factors,
            requests=tuple(self.requests),
            warmup_bars=max(self.warmups),
            leaf_labels=self.leaves,
            max_open_positions=int(portfolio.get("max_open_positions", default_open)),
            _sides=sides,
            _rotation=rotation,
        )

    def side(self, side: Side, node: Mapping[str, Any]) -> _CompiledSide:
        pointer = f"/trade/{side}"
        entry = self.condition(node["entry"]["condition"], f"{pointer}/entry/condition")
        order = node["entry"].get("order", {"type": "market"})
        order_kind = cast(OrderKind, order["type"])
        reference = offset = None
        valid_bars = 1
        if order_kind != "market":
            reference = str(order["price"]["reference"])
            offset = self.distance(order["price"]["offset"])
            time_in_force = order.get("time_in_force", {"type": "bars", "bars": 1})
            valid_bars = GOOD_TILL_CANCELLED if time_in_force["type"] == "gtc" else int(time_in_force["bars"])
        exits = tuple(
            self.exit(rule, f"{pointer}/exits/{index}") for index, rule in enumerate(node.get("exits", []))
        )
        sizing = node["sizing"]
        mode = cast(SizingMode, sizing["mode"])
        value = {
            "fixed_quantity": lambda: float(sizing["quantity"]),
            "fixed_cash": lambda: float(sizing["cash"]),
            "percent_equity": lambda: float(sizing["percent"]) / 100.0,
            "risk_per_trade": lambda: float(sizing["percent"]) / 100.0,
            "volatility_target": lambda: float(sizing["annual_percent"]) / 100.0,
        }[mode]()
        risk_stop = None
        if mode == "risk_per_trade":
            risk_stop = next(
                rule.distance
                for kind in ("stop_loss", "bracket", "trailing_stop")
                for rule in exits
                if rule.kind == kind
            )
        lookback = None
        if mode == "volatility_target":
            lookback = int(sizing.get("lookback_bars", DEFAULT_VOLATILITY_LOOKBACK))
            self.warmups.append(lookback)
        return _CompiledSide(
            side=side,
            entry=entry,
            order_kind=order_kind,
            order_reference=reference,
            order_offset=offset,
            valid_bars=valid_bars,
            exits=exits,
            sizing_mode=mode,
            sizing_value=value,
            risk_stop=risk_stop,
            volatility_lookback=lookback,
        )

    def exit(self, rule: Mapping[str, Any], pointer: str) -> _CompiledExit:
        kind = cast(ExitKind, rule["type"])
        name = str(rule["name"])
        if kind == "signal":
            return _CompiledExit(
                name, kind, condition=self.condition(rule["condition"], f"{pointer}/condition")
            )
        if kind == "time_exit":
            return _CompiledExit(name, kind, bars=int(rule["bars"]))
        if kind == "bracket":
            return _CompiledExit(
                name, kind, distance=self.distance(rule["stop"]), reward_ratio=float(rule["reward_ratio"])
            )
        return _CompiledExit(name, kind, distance=self.distance(rule["distance"]))


# --- plan building --------------------------------------------------------------------------------


def _derived_field(bars: BarsLike, name: str) -> FloatMatrix:
    if name == "hl2":
        return (bars.high + bars.low) / 2.0
    if name == "hlc3":
        return (bars.high + bars.low + bars.close) / 3.0
    if name == "ohlc4":
        return (bars.open + bars.high + bars.low + bars.close) / 4.0
    return np.asarray(getattr(bars, name), dtype=np.float64)


def compute_request(request: IndicatorRequest, bars: BarsLike) -> dict[str, FloatMatrix]:
    """Indicator outputs ``(n_bars, n_symbols)`` for ``bars`` of the request's timeframe.

    Each symbol is computed over its own defined bars only: rows where one of its inputs is NaN
    (no bar for that symbol) are left out and stay NaN in the output.
    """
    spec = request.spec
    params = dict(request.params)
    fields = {
        name: _derived_field(bars, request.source if name == SOURCE_INPUT and request.source else name)
        for name in spec.inputs
    }
    n_bars, n_symbols = bars.close.shape
    outputs = {name: np.full((n_bars, n_symbols), np.nan) for name in spec.output_names}
    for column in range(n_symbols):
        inputs = {name: np.ascontiguousarray(matrix[:, column]) for name, matrix in fields.items()}
        defined = np.logical_and.reduce([np.isfinite(values) for values in inputs.values()])
        if not defined.any():
            continue
        if defined.all():
            results = spec.compute(inputs, params)
            for name, values in results.items():
                outputs[name][:, column] = values
            continue
        rows = np.flatnonzero(defined)
        results = spec.compute({name: values[rows] for name, values in inputs.items()}, params)
        for name, values in results.items():
            outputs[name][rows, column] = values
    return outputs


def _shift(values: FloatMatrix, offset: int) -> FloatMatrix:
    if offset == 0:
        return values
    shifted = np.full_like(values, np.nan)
    if offset < values.shape[0]:
        shifted[offset:] = values[:-offset]
    return shifted


class _PlanContext:
    """Series of one ``build_plan`` call, each computed at most once."""

    def __init__(
        self,
        strategy: CompiledStrategy,
        bars: BarsLike,
        higher_timeframe_bars: Mapping[str, BarsLike],
        resampler: Resampler,
    ) -> None:
        self.strategy = strategy
        self.bars = select_symbols(bars, strategy.symbols)
        self.higher_timeframe_bars = higher_timeframe_bars
        self.resampler = resampler
        self.timeframe_bars: dict[str, BarMatrix] = {strategy.timeframe: self.bars}
        self.raw: dict[IndicatorRequest, dict[str, FloatMatrix]] = {}
        self.aligned: dict[tuple[IndicatorRequest, str, int], FloatMatrix] = {}
        self.fields: dict[tuple[str, int], FloatMatrix] = {}
        self.leaves: dict[str, BoolMatrix] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return (self.bars.index.shape[0], len(self.strategy.symbols))

    def bars_of(self, timeframe: str) -> BarMatrix:
        if timeframe not in self.timeframe_bars:
            supplied = self.higher_timeframe_bars.get(timeframe)
            source = supplied if supplied is not None else self.resampler(self.bars, timeframe)
            self.timeframe_bars[timeframe] = select_symbols(source, self.strategy.symbols)
        return self.timeframe_bars[timeframe]

    def request_outputs(self, request: IndicatorRequest) -> dict[str, FloatMatrix]:
        if request not in self.raw:
            self.raw[request] = compute_request(request, self.bars_of(request.timeframe))
        return self.raw[request]

    def request_series(self, request: IndicatorRequest, output: str, offset: int) -> FloatMatrix:
        key = (request, output, offset)
        if key not in self.aligned:
            values = _shift(self.request_outputs(request)[output], offset)
            if request.timeframe != self.strategy.timeframe:
                higher = self.bars_of(request.timeframe)
                values = take_rows(values, visible_rows(higher.index, request.timeframe, self.bars.index))
            self.aligned[key] = values
        return self.aligned[key]

    # SeriesProvider
    def field_series(self, field_name: str, offset: int) -> FloatMatrix:
        key = (field_name, offset)
        if key not in self.fields:
            self.fields[key] = _shift(_derived_field(self.bars, field_name), offset)
        return self.fields[key]

    def factor_series(self, factor_id: str, output: str, offset: int) -> FloatMatrix:
        return self.request_series(self.strategy.factors[factor_id].request, output, offset)

    def record_leaf(self, pointer: str, values: BoolMatrix) -> None:
        self.leaves[pointer] = values

    # plan pieces
    def signal(self, condition: Condition) -> BoolMatrix:
        # A copy: the evaluated array may also be a recorded leaf, which must stay unmasked.
        values = condition.evaluate(self).copy()
        values[: self.strategy.warmup_bars] = False
        return values

    def distance_matrix(self, distance: Distance, reference: FloatMatrix) -> FloatMatrix:
        """Absolute price distance per bar (percent distances measured from ``reference``)."""
        if distance.unit == "percent":
            return reference * (distance.value / 100.0)
        if distance.unit == "points":
            return np.full(self.shape, distance.value)
        assert distance.atr is not None
        return self.request_series(distance.atr, "value", 0) * distance.value

    def side_plan(self, side: _CompiledSide) -> SidePlan:
        entry = self.signal(side.entry)
        price = None
        if side.order_kind != "market":
            assert side.order_reference is not None and side.order_offset is not None
            reference = self.field_series(side.order_reference, 0)
            # A signed distance: negative offsets place the order below the reference.
            price = np.where(entry, reference + self.distance_matrix(side.order_offset, reference), np.nan)
        exits = tuple(self.exit_plan(rule) for rule in side.exits)
        return SidePlan(
            side=side.side,
            entry=entry,
            order=OrderPlan(side.order_kind, price, side.valid_bars),
            exits=exits,
            sizing=self.sizing_plan(side),
        )

    def exit_plan(self, rule: _CompiledExit) -> ExitPlan:
        if rule.kind == "signal":
            assert rule.condition is not None
            return ExitPlan(rule.name, rule.kind, signal=self.signal(rule.condition))
        if rule.kind == "time_exit":
            return ExitPlan(rule.name, rule.kind, bars=rule.bars)
        assert rule.distance is not None
        if rule.distance.unit == "percent":
            return ExitPlan(
                rule.name, rule.kind, fraction=rule.distance.value / 100.0, reward_ratio=rule.reward_ratio
            )
        distance = self.distance_matrix(rule.distance, self.field_series("close", 0))
        return ExitPlan(rule.name, rule.kind, distance=distance, reward_ratio=rule.reward_ratio)

    def sizing_plan(self, side: _CompiledSide) -> SizingPlan:
        stop_distance = volatility = None
        if side.risk_stop is not None:
            # Percent stops are measured from the signal bar's close, the best estimate of the fill.
            stop_distance = self.distance_matrix(side.risk_stop, self.field_series("close", 0))
        if side.volatility_lookback is not None:
            volatility = self.annualised_volatility(side.volatility_lookback)
        return SizingPlan(side.sizing_mode, side.sizing_value, stop_distance, volatility)

    def annualised_volatility(self, lookback: int) -> FloatMatrix:
        close = self.bars.close
        returns = np.full_like(close, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = close[1:] / close[:-1]
            returns[1:] = np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)), np.nan)
        volatility = np.full_like(close, np.nan)
        for column in range(close.shape[1]):
            series = returns[:, column]
            rows = np.flatnonzero(np.isfinite(series))
            if rows.shape[0]:
                volatility[rows, column] = talib.STDDEV(np.ascontiguousarray(series[rows]), lookback, 1.0)
        scale = math.sqrt(bars_per_year(self.strategy.market, self.strategy.timeframe))
        return volatility * scale
