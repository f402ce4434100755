"""The one backtest pipeline: a strategy and bars with warm-up history in, a simulated range out.

Every backtest runs through here: the ``backtest.run`` job and the CPU worker's warm-up
(``pack_backtest``), parameter sweeps and the stress tests built on them (``Backtester``), the
benchmark suite and the tests. Only the plan-level engine (``engine.simulate``, ``engine.run_sweep``)
sits below it.

**Ranges and warm-up.** The bars handed in hold the range to simulate and the history around it:
rows ``[first_row, stop_row)`` are the range, the rows before ``first_row`` are warm-up history.
Plans are built over all the bars, so indicators have read the history and are warm on the range's
first bar; the plan is then cut to the range, and the simulation, every metric, the equity curve,
the trades, the benchmark comparison and the data hash cover exactly the range. Every plan series is
causal (a value at a bar reads nothing after it), so rows after ``stop_row`` change nothing: a range
inside a longer history gives the result of the same range with the history ending at ``stop_row``.
A strategy that needs more warm-up bars than exist before the range cannot enter during its first
bars (``BacktestRun.warnings`` says so).

**Stages.**

1. ``Backtester(strategy_or_document, bars, assumptions)`` compiles a document once and picks the
   universe's columns of ``bars``. Its indicator series are cached, so runs and sweeps with other
   parameters or over other ranges of the same bars compute each shared series once.
2. ``Backtester.run(parameters, first_row=, stop_row=, ...)`` -> ``BacktestRun``: the result, and
   the plan and bars of the range (trade snapshots read them). ``Backtester.sweep(parameter_sets,
   first_row=, stop_row=, ...)`` -> ``SweepResult``: the summary metrics of many parameter sets over
   one range, run as batches of one compiled call.
3. ``pack_backtest(BacktestInputs)`` -> ``PackedBacktest``: a run plus everything a job stores: the
   summary (JSON), the artifacts (``artifacts.pack_artifacts`` of the result's arrays and the rows
   ``snapshot_context`` keeps for trade snapshots) and ``result_hash``, the SHA-256 of both. The same
   inputs always give the same bytes and hash.

**Errors.** ``BacktestInputError`` (``code``, ``pointer`` into the inputs, ``message``, ``hint``) for
inputs the pipeline refuses; ``StrategyValidationError`` for an invalid document;
``BacktestCancelled`` when ``should_cancel`` stops a run. Callers map them to their own terms (the
API reports ``RANGE_POINTER`` problems at its ``/start`` field).

**Progress.** ``progress(fraction, stage)`` covers 0..1 of a run ("computing indicators",
"simulating", "metrics"); ``pack_backtest`` gives the run 0..0.8 and reports "storing" at 0.85.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.domain.backtest.artifacts import pack_artifacts
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import (
    DEFAULT_CHART_POINTS,
    BacktestCancelled,
    CancelCheck,
    ProgressCallback,
    SweepResult,
    run_sweep_batches,
    simulate,
)
from packages.domain.backtest.metrics import benchmark_comparison
from packages.domain.backtest.result import BacktestResult, iso_times
from packages.domain.backtest.serialization import JsonValue, canonical_json, to_jsonable
from packages.domain.backtest.snapshot_context import SNAPSHOT_SPAN_LIMIT, context_blobs
from packages.domain.backtest.snapshots import DEFAULT_BARS_AFTER, DEFAULT_BARS_BEFORE, trade_snapshot
from packages.domain.strategy.compiler import CompiledStrategy, SeriesCache, compile_strategy
from packages.domain.strategy.plan import FloatMatrix, LazySeries, StrategyPlan
from packages.domain.strategy.vocabulary import DSL_VERSION

# Pointers of ``BacktestInputError``: which input a problem concerns.
RANGE_POINTER = "/range"  # the rows [first_row, stop_row) to simulate
SYMBOLS_POINTER = "/bars/symbols"
BENCHMARK_POINTER = "/benchmark"

DEFAULT_SNAPSHOT_CONTEXT_BARS = 20
DEFAULT_SNAPSHOT_VALUES = 500_000
_FEW_TRADES = 30
# A run's share of a packed backtest's progress; packing reports "storing" after it.
_RUN_SHARE = 0.8
_STORING = 0.85


class BacktestInputError(ValueError):
    """Inputs the pipeline refuses: ``code`` names the problem, ``pointer`` the input it concerns
    (``RANGE_POINTER``, ...), ``message`` says what is wrong and ``hint`` what to change."""

    def __init__(self, code: str, pointer: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.code = code
        self.pointer = pointer
        self.message = message
        self.hint = hint


@dataclass(frozen=True, eq=False)
class Benchmark:
    """Another symbol to compare with: its close on every row of the backtest's bars (history rows
    included), NaN where it has no bar."""

    symbol: str
    close: npt.NDArray[np.float64]


@dataclass(frozen=True)
class SnapshotContext:
    """What a packed backtest keeps for trade snapshots (see ``snapshot_context``): the bars from
    ``context_bars`` before each trade's signal to ``context_bars`` after its exit, for as many trades
    (in entry order) as fit ``max_values`` stored values (bars x symbols x series)."""

    context_bars: int = DEFAULT_SNAPSHOT_CONTEXT_BARS
    max_values: int = DEFAULT_SNAPSHOT_VALUES


@dataclass(frozen=True, eq=False)
class BacktestInputs:
    """Everything one packed backtest is computed from (what a backtest job loads)."""

    strategy: CompiledStrategy
    bars: UniverseBars  # warm-up history, then the range (and possibly later rows, see stop_row)
    assumptions: ExecutionAssumptions = field(default_factory=ExecutionAssumptions)
    first_row: int = 0  # row of ``bars`` where the range begins
    stop_row: int | None = None  # row after the range's last; None: the range runs to the last bar
    benchmark: Benchmark | None = None
    max_cells: int | None = None  # most bars x symbols the range may hold; None: no cap
    chart_points: int = DEFAULT_CHART_POINTS
    snapshots: SnapshotContext = field(default_factory=SnapshotContext)


@dataclass(frozen=True, eq=False)
class BacktestRun:
    """A simulated range: its result, and the plan and bars of its rows (trade snapshots read them)."""

    result: BacktestResult
    plan: StrategyPlan
    bars: UniverseBars
    strategy: CompiledStrategy  # with the run's parameters applied
    first_row: int  # rows of warm-up history before the range
    benchmark: Benchmark | None  # close over the range's rows

    def trade_snapshot(
        self,
        trade_index: int,
        *,
        bars_before: int = DEFAULT_BARS_BEFORE,
        bars_after: int = DEFAULT_BARS_AFTER,
    ) -> dict[str, Any]:
        return trade_snapshot(
            self.result,
            self.plan,
            self.bars,
            trade_index,
            bars_before=bars_before,
            bars_after=bars_after,
            leaf_labels=self.strategy.leaf_labels,
        )

    def warnings(self) -> list[str]:
        """What a reader of the result should know: few trades, missing warm-up, rejections..."""
        metrics = self.result.metrics
        warnings: list[str] = []
        trades = self.result.n_trades
        if trades == 0:
            warnings.append("No trades: the entry conditions never held (or no order could be filled).")
        elif trades < _FEW_TRADES:
            warnings.append(f"Only {trades} trades: the trade statistics are noisy.")
        warmup_bars = self.strategy.warmup_bars
        if self.first_row < warmup_bars:
            warnings.append(
                f"Indicators need {warmup_bars} warm-up bars but only {self.first_row} exist before the "
                f"range: no entries during the first {warmup_bars - self.first_row} bars."
            )
        rejected = metrics.get("rejected_orders")
        if isinstance(rejected, int) and rejected > 0:
            warnings.append(f"{rejected} orders were rejected (not enough cash or margin).")
        if metrics.get("liquidated"):
            warnings.append("The account was liquidated: equity fell to zero or below.")
        open_trades = metrics.get("open_trades")
        if isinstance(open_trades, int) and open_trades > 0:
            warnings.append(f"{open_trades} trades are still open at the end and marked to the last close.")
        return warnings

    def benchmark_block(self) -> dict[str, JsonValue] | None:
        """The result's benchmark statistics measured against the benchmark's close instead of the
        universe's, and how many of the range's bars the benchmark lacks."""
        if self.benchmark is None:
            return None
        close = self.benchmark.close
        block: dict[str, JsonValue] = {"symbol": self.benchmark.symbol}
        block.update(benchmark_comparison(self.result, close))
        block["missing_bars"] = int(np.count_nonzero(~np.isfinite(close)))
        return block


@dataclass(frozen=True, eq=False)
class PackedBacktest:
    """A run and everything a job stores of it: summary (JSON-able), artifacts (bytes), result hash."""

    run: BacktestRun
    summary: dict[str, JsonValue]
    artifacts: bytes
    result_hash: str

    @property
    def result(self) -> BacktestResult:
        return self.run.result


def _silent(fraction: float, stage: str) -> None:
    """The progress callback of a caller that does not follow progress."""


def _cut(value: Any, n_bars: int, rows: slice) -> Any:
    """``value`` with every per-bar array (first axis of length ``n_bars``) cut to ``rows``."""
    if isinstance(value, np.ndarray):
        return value[rows] if value.ndim >= 1 and value.shape[0] == n_bars else value
    if isinstance(value, LazySeries):
        # Factor series stay lazy: only trade snapshots read them.
        return LazySeries({name: partial(_series_rows, value, name, rows) for name in value})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _cut(getattr(value, f.name), n_bars, rows) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    if isinstance(value, Mapping):
        return {key: _cut(item, n_bars, rows) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_cut(item, n_bars, rows) for item in value)
    return value


def _series_rows(series: Mapping[str, FloatMatrix], name: str, rows: slice) -> FloatMatrix:
    return series[name][rows]


def plan_rows(plan: StrategyPlan, rows: slice) -> StrategyPlan:
    """The plan of ``rows`` (``slice(first, stop)``); warm-up bars read before them no longer count."""
    n_bars = plan.index.shape[0]
    if rows.start == 0 and rows.stop == n_bars:
        return plan
    cut: StrategyPlan = _cut(plan, n_bars, rows)
    return dataclasses.replace(cut, warmup_bars=max(plan.warmup_bars - rows.start, 0))


def bars_rows(bars: UniverseBars, rows: slice) -> UniverseBars:
    """The bars of ``rows`` (``slice(first, stop)``), as views without a copy."""
    if rows.start == 0 and rows.stop == bars.n_bars:
        return bars
    return UniverseBars(
        index=bars.index[rows],
        symbols=bars.symbols,
        **{name: getattr(bars, name)[rows] for name in ("open", "high", "low", "close", "volume")},
    )


# Plans over all the bars a backtester keeps for the parameter sets it saw last (about 1 MB each
# on 100,000 bars).
PLANS_KEPT = 256


class Backtester:
    """One strategy over one set of bars (warm-up history included), compiled once.

    Runs and sweeps, with the document's parameters or others and over any range of rows, build
    their plans over all the bars through one series cache, so a series they share (the same
    indicator with the same parameters) is computed once. Stress tests call ``run`` and ``sweep``
    many times on one backtester. Not thread-safe (the series cache is not).
    """

    def __init__(
        self,
        strategy: CompiledStrategy | Mapping[str, Any],
        bars: UniverseBars,
        assumptions: ExecutionAssumptions | None = None,
    ) -> None:
        """``strategy``: compiled, or a document (``StrategyValidationError`` when it is invalid).
        ``bars`` must hold every symbol of the strategy's universe (other columns are ignored)."""
        self.strategy = strategy if isinstance(strategy, CompiledStrategy) else compile_strategy(strategy)
        try:
            self.bars = bars.select(self.strategy.symbols)
        except ValueError as exc:
            raise BacktestInputError(
                "missing_symbols", SYMBOLS_POINTER, str(exc), "supply bars of every symbol of the universe"
            ) from exc
        self.assumptions = assumptions or ExecutionAssumptions()
        self._cache = SeriesCache()
        self._plans: OrderedDict[tuple[tuple[str, float], ...], tuple[CompiledStrategy, StrategyPlan]] = (
            OrderedDict()
        )

    def range_rows(
        self, first_row: int = 0, stop_row: int | None = None, *, max_cells: int | None = None
    ) -> slice:
        """The range ``[first_row, stop_row)`` of the bars, checked: inside the bars, not empty and
        at most ``max_cells`` bars x symbols."""
        n_bars = self.bars.n_bars
        stop = n_bars if stop_row is None else stop_row
        if not 0 <= first_row <= stop <= n_bars:
            raise BacktestInputError(
                "bad_range",
                RANGE_POINTER,
                f"Rows {first_row} to {stop} are not a range of the {n_bars} bars.",
                f"pick 0 <= first_row <= stop_row <= {n_bars}",
            )
        cells = (stop - first_row) * self.bars.n_symbols
        if max_cells is not None and cells > max_cells:
            raise BacktestInputError(
                "too_many_bars",
                RANGE_POINTER,
                f"The range holds {cells} bars x symbols; a backtest may simulate at most {max_cells}.",
                "shorten the range or the universe",
            )
        if stop == first_row:
            raise BacktestInputError(
                "empty_range",
                RANGE_POINTER,
                "No bars in the requested range.",
                "the range holds no bars of any symbol",
            )
        return slice(first_row, stop)

    def _with(self, parameters: Mapping[str, float] | None) -> CompiledStrategy:
        return self._planned(parameters)[0]

    def _plan(self, parameters: Mapping[str, float] | None, rows: slice) -> StrategyPlan:
        return plan_rows(self._planned(parameters)[1], rows)

    def _planned(self, parameters: Mapping[str, float] | None) -> tuple[CompiledStrategy, StrategyPlan]:
        """The strategy with ``parameters`` set and its plan over all the bars, kept for the most
        recent parameter sets: walk-forward folds and repeated scans ask for the same ones again."""
        key = tuple(sorted((parameters or {}).items()))
        found = self._plans.get(key)
        if found is None:
            strategy = self.strategy.with_parameters(parameters) if parameters else self.strategy
            found = (strategy, strategy.build_plan(self.bars, cache=self._cache))
            self._plans[key] = found
            if len(self._plans) > PLANS_KEPT:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return found

    def run(
        self,
        parameters: Mapping[str, float] | None = None,
        *,
        first_row: int = 0,
        stop_row: int | None = None,
        benchmark: Benchmark | None = None,
        max_cells: int | None = None,
        chart_points: int = DEFAULT_CHART_POINTS,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> BacktestRun:
        """Backtest rows ``[first_row, stop_row)`` with ``parameters`` (tunable pointer -> value, see
        ``strategy.tunables``; None: the document's) set; the rows before ``first_row`` warm up."""
        report = progress or _silent
        rows = self.range_rows(first_row, stop_row, max_cells=max_cells)
        if benchmark is not None and benchmark.close.shape != (self.bars.n_bars,):
            raise BacktestInputError(
                "benchmark_misaligned",
                BENCHMARK_POINTER,
                f"The benchmark has {benchmark.close.shape[0]} closes for {self.bars.n_bars} bars.",
                "give the benchmark's close on every row of the bars",
            )
        strategy = self._with(parameters)
        report(0.125, "computing indicators")
        plan = self._plan(parameters, rows)
        if should_cancel is not None and should_cancel():
            raise BacktestCancelled("backtest cancelled")
        bars = bars_rows(self.bars, rows)
        result = simulate(
            plan,
            bars,
            self.assumptions,
            dsl_version=DSL_VERSION,
            dsl_hash=strategy.document_hash,
            progress=lambda fraction, stage: report(0.25 + 0.75 * fraction, stage),
            should_cancel=should_cancel,
            chart_points=chart_points,
        )
        return BacktestRun(
            result=result,
            plan=plan,
            bars=bars,
            strategy=strategy,
            first_row=rows.start,
            benchmark=None if benchmark is None else Benchmark(benchmark.symbol, benchmark.close[rows]),
        )

    def sweep(
        self,
        parameter_sets: Iterable[Mapping[str, float]],
        *,
        first_row: int = 0,
        stop_row: int | None = None,
        max_cells: int | None = None,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        workers: int | None = None,
        plans_per_call: int = 10,
    ) -> SweepResult:
        """The summary metrics of one run per parameter set over rows ``[first_row, stop_row)``, in the
        order of ``parameter_sets``; each row equals ``run(parameters, ...)``'s metrics.

        Plans are built batch by batch while earlier batches run as compiled calls on ``workers``
        threads (default: one per CPU).
        """
        rows = self.range_rows(first_row, stop_row, max_cells=max_cells)
        sets = list(parameter_sets)

        def batches() -> Iterator[list[StrategyPlan]]:
            for start in range(0, len(sets), plans_per_call):
                yield [self._plan(values, rows) for values in sets[start : start + plans_per_call]]

        return run_sweep_batches(
            batches(),
            bars_rows(self.bars, rows),
            self.assumptions,
            total=len(sets),
            progress=progress,
            should_cancel=should_cancel,
            workers=workers,
        )


def pack_backtest(
    inputs: BacktestInputs,
    *,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> PackedBacktest:
    """Run ``inputs`` and pack what a job stores: summary, artifacts and their hash."""
    report = progress or _silent
    run = Backtester(inputs.strategy, inputs.bars, inputs.assumptions).run(
        first_row=inputs.first_row,
        stop_row=inputs.stop_row,
        benchmark=inputs.benchmark,
        max_cells=inputs.max_cells,
        chart_points=inputs.chart_points,
        progress=lambda fraction, stage: report(_RUN_SHARE * fraction, stage),
        should_cancel=should_cancel,
    )

    def check_cancelled() -> None:
        if should_cancel is not None and should_cancel():
            raise BacktestCancelled("backtest cancelled")

    check_cancelled()
    report(_STORING, "storing")
    result, bars, plan = run.result, run.bars, run.plan
    summary, blobs = result.to_storage()
    # The chart series are rebuilt from the stored arrays; the summary row stays small.
    summary.pop("chart", None)
    check_cancelled()
    snapshots = inputs.snapshots
    context, kept = context_blobs(result, bars, plan, snapshots.context_bars, snapshots.max_values)
    blobs.update(context)
    summary["snapshot"] = to_jsonable(
        {
            "context_bars": snapshots.context_bars,
            "trades_kept": kept,
            "span_limit": SNAPSHOT_SPAN_LIMIT,
            "factors": sorted(plan.factors),
            "leaf_labels": dict(sorted(run.strategy.leaf_labels.items())),
        }
    )
    summary["range"] = {
        "start": iso_times(bars.index[[0]])[0],
        "end": iso_times(bars.index[[-1]])[0],
        "bars": bars.n_bars,
        "warmup_bars_before_start": run.first_row,
        "strategy_warmup_bars": run.strategy.warmup_bars,
    }
    summary["counts"] = {
        "bars": bars.n_bars,
        "symbols": bars.n_symbols,
        "trades": result.n_trades,
        "orders": int(result.orders.shape[0]),
    }
    benchmark = run.benchmark_block()
    if benchmark is not None:
        summary["benchmark"] = benchmark
    summary["warnings"] = to_jsonable(run.warnings())
    artifacts = pack_artifacts(blobs)
    digest = hashlib.sha256(canonical_json(summary))
    digest.update(artifacts)
    return PackedBacktest(run=run, summary=summary, artifacts=artifacts, result_hash=digest.hexdigest())
