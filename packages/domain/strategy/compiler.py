"""Compilation: a valid document becomes a ``CompiledStrategy`` that builds strategy plans.

``compile_strategy(document)`` validates, deduplicates indicator requests across the document
(same indicator, parameters, source and timeframe are computed once, whatever factor ids or exit
distances ask for them), computes the warm-up and compiles conditions to vectorised form.
``CompiledStrategy.build_plan(bars)`` then evaluates everything over bar matrices; the compiled
object is immutable and can build plans for many bar sets (backtests, each runtime tick).

Plan building is on the hot path of every backtest, so it copies nothing it does not have to:
bars already in universe order are read in place (no re-validation), a fully defined single
symbol's indicator outputs are ``(n, 1)`` views of TA-Lib's arrays, which rows are defined is
worked out once per input set, crosses are one compiled pass (``conditions.cross_values``),
warm-up masking copies a signal only when a warm-up bar is actually true, and ``plan.factors``
is computed on first read (only trade snapshots and charts read it).

Parameter sweeps: ``CompiledStrategy.build_plans(bars, parameter_sets)`` returns one plan per set
of tunable values (``{pointer: value}``, see ``tunables``), all of one structure for the
backtest's batch runner. Variants are re-checked only by the rules a numeric change can break
(bounds, cross-parameter rules, look-back caps), not by the full JSON Schema, and share a
``SeriesCache``: a 10 x 10 grid of SMA(fast) x SMA(slow) computes 20 SMAs, not 200. Callers with
their own loop use ``with_parameters(values)`` and pass one ``SeriesCache`` to each
``build_plan(bars, cache=...)`` over the same bars.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import talib

from packages.domain.strategy.bars import (
    BarsLike,
    Buckets,
    Resampler,
    resample_bars,
    session_buckets,
    take_rows,
    universe_view,
    visible_rows,
)
from packages.domain.strategy.canonical import copy_json
from packages.domain.strategy.canonical import document_hash as hash_document
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
    LazySeries,
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
from packages.domain.strategy.tunables import ParameterSpace
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
    """One indicator computation; equal requests are computed once per plan (per ``SeriesCache``)."""

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
    _limits: Limits = field(repr=False, default=DEFAULT_LIMITS)

    @property
    def higher_timeframes(self) -> tuple[str, ...]:
        """Timeframes other than the strategy's that factors are computed on."""
        return tuple(sorted({r.timeframe for r in self.requests if r.timeframe != self.timeframe}))

    @cached_property
    def document_hash(self) -> str:
        """``canonical.document_hash`` of the document (computed on first read: sweeps never need it)."""
        return hash_document(self.document)

    def build_plan(
        self,
        bars: BarsLike,
        *,
        higher_timeframe_bars: Mapping[str, BarsLike] | None = None,
        resampler: Resampler | None = None,
        cache: SeriesCache | None = None,
    ) -> StrategyPlan:
        """Evaluate the strategy over ``bars`` (strategy timeframe, all universe symbols).

        Higher-timeframe factors read ``higher_timeframe_bars[tf]`` when given, else bars built
        by ``resampler`` (default: ``resample_bars`` along the sessions of the universe's market,
        as the market-data store builds them). Either must stamp bars as the store does: each is
        closed at its session bucket's end under the market's calendar (``bars.visible_rows``).
        ``bars`` whose columns already are the universe's symbols are used as they are, without
        a copy; their index is trusted to increase (``BarMatrix`` checks it when built).
        Pass one ``SeriesCache`` to every call over the same bars to compute shared series once.
        """
        cache = cache if cache is not None else SeriesCache()
        cache._bind(
            _CacheSource(
                bars,
                self.symbols,
                self.market,
                self.timeframe,
                higher_timeframe_bars or {},
                resampler,
            )
        )
        return _PlanContext(self, cache).plan()

    def with_parameters(self, values: Mapping[str, float]) -> CompiledStrategy:
        """The strategy compiled with tunable parameters set (pointer -> value, see ``tunables``).

        Raises ``ParameterError`` or ``StrategyValidationError`` like ``apply_parameters``; only
        the rules a numeric change can break are re-checked, so this costs well under a
        millisecond, not a full validation.
        """
        return _Compiler(self._parameter_space.apply(values)).compile(self._limits)

    def build_plans(
        self,
        bars: BarsLike,
        parameter_sets: Iterable[Mapping[str, float]],
        *,
        higher_timeframe_bars: Mapping[str, BarsLike] | None = None,
        resampler: Resampler | None = None,
        cache: SeriesCache | None = None,
    ) -> list[StrategyPlan]:
        """One plan per parameter set (a sweep), in order, sharing every series they have in common.

        Each set maps tunable pointers to values (``tunables.list_tunable_parameters``), e.g.
        ``{"/factors/0/params/period": 12, "/factors/1/params/period": 50}``; unnamed parameters
        keep the document's values. All plans share the document's structure (sides, exits,
        inputs), so the backtest engine can run them as one batch.
        """
        cache = cache if cache is not None else SeriesCache()
        return [
            self.with_parameters(values).build_plan(
                bars, higher_timeframe_bars=higher_timeframe_bars, resampler=resampler, cache=cache
            )
            for values in parameter_sets
        ]

    @cached_property
    def _parameter_space(self) -> ParameterSpace:
        # Symbols are not tunable and passed the symbol checker when this document was compiled.
        return ParameterSpace.of_valid_document(self.document, self._limits, _symbols_already_checked)


def _symbols_already_checked(market: str, symbol: str) -> bool:
    return True


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
    return _Compiler(copy_json(document)).compile(limits)


class _Compiler:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.market = str(document["universe"]["market"])
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
        return scaled_warmup(request.warmup(), offset, request.timeframe, self.timeframe, market=self.market)

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

    def compile(self, limits: Limits) -> CompiledStrategy:
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
            market=self.market,
            symbols=tuple(document["universe"]["symbols"]),
            timeframe=self.timeframe,
            factors=self.factors,
            requests=tuple(self.requests),
            warmup_bars=max(self.warmups),
            leaf_labels=self.leaves,
            max_open_positions=int(portfolio.get("max_open_positions", default_open)),
            _sides=sides,
            _rotation=rotation,
            _limits=limits,
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

# Per symbol column: the rows where an indicator's inputs are all defined, ``None`` when all are.
DefinedRows = list[npt.NDArray[np.intp] | None]


def _derived_field(bars: BarsLike, name: str) -> FloatMatrix:
    if name == "hl2":
        return (bars.high + bars.low) / 2.0
    if name == "hlc3":
        return (bars.high + bars.low + bars.close) / 3.0
    if name == "ohlc4":
        return (bars.open + bars.high + bars.low + bars.close) / 4.0
    return np.asarray(getattr(bars, name), dtype=np.float64)


def defined_rows(matrices: Sequence[FloatMatrix]) -> DefinedRows:
    """Per symbol column of the ``(n_bars, n_symbols)`` matrices, the rows where all are finite."""
    complete = np.logical_and.reduce([np.isfinite(matrix).all(axis=0) for matrix in matrices])
    rows: DefinedRows = []
    for column, whole in enumerate(np.atleast_1d(complete).tolist()):
        if whole:
            rows.append(None)
            continue
        defined = np.logical_and.reduce([np.isfinite(matrix[:, column]) for matrix in matrices])
        rows.append(np.flatnonzero(defined))
    return rows


def compute_request(
    request: IndicatorRequest, bars: BarsLike, defined: DefinedRows | None = None
) -> dict[str, FloatMatrix]:
    """Indicator outputs ``(n_bars, n_symbols)`` for ``bars`` of the request's timeframe.

    Each symbol is computed over its own defined bars only: rows where one of its inputs is NaN
    (no bar for that symbol) are left out and stay NaN in the output. ``defined`` is
    ``defined_rows`` of the request's inputs when the caller already has it.
    """
    spec = request.spec
    params = dict(request.params)
    fields = {
        name: _derived_field(bars, request.source if name == SOURCE_INPUT and request.source else name)
        for name in spec.inputs
    }
    n_bars, n_symbols = bars.close.shape
    if n_bars == 0:
        return {name: np.empty((0, n_symbols)) for name in spec.output_names}
    if defined is None:
        defined = defined_rows(list(fields.values()))
    if n_symbols == 1 and defined[0] is None:
        # One symbol, every bar defined: the 1-D outputs become (n, 1) views, nothing is copied.
        results = spec.compute({name: matrix[:, 0] for name, matrix in fields.items()}, params)
        return {
            name: np.asarray(values, dtype=np.float64).reshape(n_bars, 1) for name, values in results.items()
        }
    outputs = {name: np.full((n_bars, n_symbols), np.nan) for name in spec.output_names}
    for column, rows in enumerate(defined):
        inputs = {name: np.ascontiguousarray(matrix[:, column]) for name, matrix in fields.items()}
        if rows is None:
            for name, values in spec.compute(inputs, params).items():
                outputs[name][:, column] = values
        elif rows.shape[0]:
            for name, values in spec.compute({k: v[rows] for k, v in inputs.items()}, params).items():
                outputs[name][rows, column] = values
    return outputs


def _shift(values: FloatMatrix, offset: int) -> FloatMatrix:
    if offset == 0:
        return values
    shifted = np.empty_like(values)
    shifted[:offset] = np.nan
    shifted[offset:] = values[: max(values.shape[0] - offset, 0)]
    return shifted


@dataclass(frozen=True, eq=False)
class _CacheSource:
    """What a ``SeriesCache`` was filled from; compared by identity, not by content."""

    bars: BarsLike
    symbols: tuple[str, ...]
    market: str
    timeframe: str
    higher_timeframe_bars: Mapping[str, BarsLike]
    resampler: Resampler | None  # None: the market's sessions (``resample_bars``)

    def matches(self, other: _CacheSource) -> bool:
        return (
            self.bars is other.bars
            and self.symbols == other.symbols
            and self.market == other.market
            and self.timeframe == other.timeframe
            and self.resampler is other.resampler
            and self.higher_timeframe_bars.keys() == other.higher_timeframe_bars.keys()
            and all(
                self.higher_timeframe_bars[tf] is other.higher_timeframe_bars[tf]
                for tf in self.higher_timeframe_bars
            )
        )


class SeriesCache:
    """Series computed from one bar set, reused by every plan built with the cache.

    Holds indicator outputs per deduplicated ``IndicatorRequest``, their shifted and
    timeframe-aligned versions, derived price fields, resampled higher-timeframe bars, the rows
    where each symbol's inputs are defined and volatility estimates. Strategies that differ only
    in parameters (a sweep) share most requests: with fast in 10 values and slow in 10 values,
    100 SMA-cross plans need 20 SMAs, and each is computed once.

    The first ``build_plan(bars, ..., cache=cache)`` binds the cache to that ``bars`` object,
    the strategy's symbols and timeframe, the ``higher_timeframe_bars`` objects and the
    resampler; a later call with anything else raises ``ValueError`` (identity, not content, is
    compared, so build the bars once). Cached arrays are shared between plans: never modify a
    plan's arrays in place. Not thread-safe.
    """

    def __init__(self) -> None:
        self._source: _CacheSource | None = None
        self._timeframe_bars: dict[str, BarsLike] = {}
        self._defined: dict[tuple[str, tuple[str, ...]], DefinedRows] = {}
        self._raw: dict[IndicatorRequest, dict[str, FloatMatrix]] = {}
        self._aligned: dict[tuple[IndicatorRequest, str, int], FloatMatrix] = {}
        self._buckets: dict[str, Buckets] = {}
        self._visible: dict[str, npt.NDArray[np.intp]] = {}
        self._fields: dict[tuple[str, int], FloatMatrix] = {}
        self._volatility: dict[tuple[int, float], FloatMatrix] = {}
        self.shape: tuple[int, int] = (0, 0)

    def _bind(self, source: _CacheSource) -> None:
        if self._source is not None:
            if not self._source.matches(source):
                raise ValueError(
                    "this SeriesCache holds series of other bars, symbols, market, timeframe or "
                    "resampler; use one cache per bar set"
                )
            return
        bars = universe_view(source.bars, source.symbols)
        self._source = source
        self._timeframe_bars[source.timeframe] = bars
        self.shape = (bars.index.shape[0], len(source.symbols))

    @property
    def source(self) -> _CacheSource:
        assert self._source is not None, "_bind() comes first"
        return self._source

    @property
    def bars(self) -> BarsLike:
        return self._timeframe_bars[self.source.timeframe]

    def bars_of(self, timeframe: str) -> BarsLike:
        if timeframe not in self._timeframe_bars:
            source = self.source
            higher = source.higher_timeframe_bars.get(timeframe)
            if higher is None and source.resampler is not None:
                higher = source.resampler(self.bars, timeframe)
            if higher is None:
                higher = resample_bars(
                    self.bars,
                    timeframe,
                    market=source.market,
                    base_timeframe=source.timeframe,
                    buckets=self.buckets_of(timeframe),
                )
            self._timeframe_bars[timeframe] = universe_view(higher, source.symbols)
        return self._timeframe_bars[timeframe]

    def buckets_of(self, timeframe: str) -> Buckets:
        """The ``timeframe`` session bucket of every base bar (resampling and visibility share it)."""
        if timeframe not in self._buckets:
            source = self.source
            self._buckets[timeframe] = session_buckets(
                self.bars.index, timeframe, market=source.market, base_timeframe=source.timeframe
            )
        return self._buckets[timeframe]

    def visible_rows(self, timeframe: str) -> npt.NDArray[np.intp]:
        """For each base bar, the row of the last ``timeframe`` bar closed by its open (-1: none)."""
        rows = self._visible.get(timeframe)
        if rows is None:
            source = self.source
            rows = visible_rows(
                self.bars_of(timeframe).index,
                timeframe,
                self.bars.index,
                market=source.market,
                base_timeframe=source.timeframe,
                buckets=self.buckets_of(timeframe),
            )
            self._visible[timeframe] = rows
        return rows

    def request_outputs(self, request: IndicatorRequest) -> dict[str, FloatMatrix]:
        outputs = self._raw.get(request)
        if outputs is None:
            bars = self.bars_of(request.timeframe)
            inputs = tuple(
                request.source if name == SOURCE_INPUT and request.source else name
                for name in request.spec.inputs
            )
            key = (request.timeframe, inputs)
            if key not in self._defined and bars.index.shape[0]:
                self._defined[key] = defined_rows([_derived_field(bars, name) for name in inputs])
            outputs = compute_request(request, bars, self._defined.get(key))
            self._raw[request] = outputs
        return outputs

    def request_series(self, request: IndicatorRequest, output: str, offset: int) -> FloatMatrix:
        key = (request, output, offset)
        values = self._aligned.get(key)
        if values is None:
            values = _shift(self.request_outputs(request)[output], offset)
            if request.timeframe != self.source.timeframe:
                values = take_rows(values, self.visible_rows(request.timeframe))
            self._aligned[key] = values
        return values

    def field_series(self, field_name: str, offset: int) -> FloatMatrix:
        key = (field_name, offset)
        values = self._fields.get(key)
        if values is None:
            values = _shift(_derived_field(self.bars, field_name), offset)
            self._fields[key] = values
        return values

    def annualised_volatility(self, lookback: int, scale: float) -> FloatMatrix:
        """Population standard deviation of log returns over ``lookback`` bars, times ``scale``."""
        key = (lookback, scale)
        if key not in self._volatility:
            close = self.field_series("close", 0)
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
            self._volatility[key] = volatility * scale
        return self._volatility[key]


class _PlanContext:
    """One ``build_plan`` call: the strategy's plan pieces over a (possibly shared) series cache."""

    def __init__(self, strategy: CompiledStrategy, cache: SeriesCache) -> None:
        self.strategy = strategy
        self.cache = cache
        self.shape = cache.shape
        self.leaves: dict[str, BoolMatrix] = {}

    # SeriesProvider
    def field_series(self, field_name: str, offset: int) -> FloatMatrix:
        return self.cache.field_series(field_name, offset)

    def factor_series(self, factor_id: str, output: str, offset: int) -> FloatMatrix:
        return self.cache.request_series(self.strategy.factors[factor_id].request, output, offset)

    def record_leaf(self, pointer: str, values: BoolMatrix) -> None:
        self.leaves[pointer] = values

    # plan pieces
    def signal(self, condition: Condition) -> BoolMatrix:
        values = condition.evaluate(self)
        warmup = self.strategy.warmup_bars
        if values[:warmup].any():
            # A copy: the evaluated array may also be a recorded leaf, which must stay unmasked.
            values = values.copy()
            values[:warmup] = False
        return values

    def distance_matrix(self, distance: Distance, reference: FloatMatrix) -> FloatMatrix:
        """Absolute price distance per bar (percent distances measured from ``reference``)."""
        if distance.unit == "percent":
            return reference * (distance.value / 100.0)
        if distance.unit == "points":
            return np.broadcast_to(np.float64(distance.value), self.shape)
        assert distance.atr is not None
        return self.cache.request_series(distance.atr, "value", 0) * distance.value

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
            scale = math.sqrt(bars_per_year(self.strategy.market, self.strategy.timeframe))
            volatility = self.cache.annualised_volatility(side.volatility_lookback, scale)
        return SizingPlan(side.sizing_mode, side.sizing_value, stop_distance, volatility)

    def plan(self) -> StrategyPlan:
        strategy = self.strategy
        sides = tuple(self.side_plan(side) for side in strategy._sides)
        rotation = None
        if strategy._rotation is not None:
            score = strategy._rotation.score
            rotation = RotationPlan(
                score=self.factor_series(score.factor_id, score.output, score.offset),
                top_n=strategy._rotation.top_n,
                every_bars=strategy._rotation.every_bars,
            )
        # Factor series serve trade snapshots and charts only: computed when first read.
        factors = LazySeries(
            {
                (factor_id if len(binding.outputs) == 1 else f"{factor_id}.{output}"): partial(
                    self.cache.request_series, binding.request, output, 0
                )
                for factor_id, binding in strategy.factors.items()
                for output in binding.outputs
            }
        )
        return StrategyPlan(
            index=np.asarray(self.cache.bars.index, dtype=np.int64),
            symbols=strategy.symbols,
            sides=sides,
            portfolio=PortfolioPlan(strategy.max_open_positions, rotation),
            warmup_bars=strategy.warmup_bars,
            factors=factors,
            leaves=self.leaves,
        )
