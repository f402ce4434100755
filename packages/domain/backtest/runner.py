"""The user's path from a strategy document to a backtest: compile, build the plan, simulate, measure.

Kept apart from ``engine`` (which only knows plans) so the simulation core does not depend on the DSL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import FinerBars, UniverseBars
from packages.domain.backtest.engine import (
    DEFAULT_CHART_POINTS,
    BacktestCancelled,
    CancelCheck,
    ProgressCallback,
    SweepResult,
    run_sweep_batches,
    simulate,
)
from packages.domain.backtest.result import BacktestResult
from packages.domain.backtest.snapshots import DEFAULT_BARS_AFTER, DEFAULT_BARS_BEFORE, trade_snapshot
from packages.domain.strategy.bars import BarsLike, Resampler
from packages.domain.strategy.compiler import SeriesCache, compile_strategy
from packages.domain.strategy.plan import StrategyPlan


@dataclass(frozen=True, eq=False)
class BacktestRun:
    """A finished backtest together with the plan and bars it ran on (for trade snapshots)."""

    result: BacktestResult
    plan: StrategyPlan
    bars: UniverseBars
    leaf_labels: Mapping[str, str]

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
            leaf_labels=self.leaf_labels,
        )


def run_backtest(
    document: Mapping[str, Any],
    bars: UniverseBars,
    assumptions: ExecutionAssumptions | None = None,
    *,
    finer_bars: FinerBars | None = None,
    higher_timeframe_bars: Mapping[str, BarsLike] | None = None,
    resampler: Resampler | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    chart_points: int = DEFAULT_CHART_POINTS,
) -> BacktestRun:
    """The user's path: compile the strategy document, build its plan over ``bars``, simulate, measure.

    ``bars`` must hold every symbol of the document's universe (extra symbols are ignored);
    raises ``StrategyValidationError`` for an invalid document.
    """
    if progress is not None:
        progress(0.0, "compiling")
    strategy = compile_strategy(document)
    universe = bars.select(strategy.symbols)
    if finer_bars is not None and universe is not bars:
        raise ValueError("finer bars must have exactly the strategy's symbols, in the universe's order")
    plan = strategy.build_plan(universe, higher_timeframe_bars=higher_timeframe_bars, resampler=resampler)
    if should_cancel is not None and should_cancel():
        raise BacktestCancelled("backtest cancelled")
    # The input bars are hashed beside the simulation (the plan's indicators already use both cores).
    result = simulate(
        plan,
        universe,
        assumptions,
        finer_bars=finer_bars,
        dsl_version=str(document.get("dsl_version", "")),
        dsl_hash=strategy.document_hash,
        progress=progress,
        should_cancel=should_cancel,
        chart_points=chart_points,
    )
    return BacktestRun(result=result, plan=plan, bars=universe, leaf_labels=strategy.leaf_labels)


def sweep_backtest(
    document: Mapping[str, Any],
    bars: UniverseBars,
    parameter_sets: Iterable[Mapping[str, float]],
    assumptions: ExecutionAssumptions | None = None,
    *,
    higher_timeframe_bars: Mapping[str, BarsLike] | None = None,
    resampler: Resampler | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    workers: int | None = None,
    plans_per_call: int = 10,
) -> SweepResult:
    """Backtest ``document`` once per parameter set (tunable pointer -> value) and summarise each run.

    The plans share every indicator series they have in common (one ``SeriesCache``); they are built
    batch by batch while earlier batches run as compiled calls on worker threads. The result keeps the
    order of ``parameter_sets``.
    """
    if progress is not None:
        progress(0.0, "compiling")
    strategy = compile_strategy(document)
    universe = bars.select(strategy.symbols)
    sets = list(parameter_sets)
    cache = SeriesCache()

    def batches() -> Iterator[list[StrategyPlan]]:
        for start in range(0, len(sets), plans_per_call):
            yield [
                strategy.with_parameters(values).build_plan(
                    universe, higher_timeframe_bars=higher_timeframe_bars, resampler=resampler, cache=cache
                )
                for values in sets[start : start + plans_per_call]
            ]

    return run_sweep_batches(
        batches(),
        universe,
        assumptions,
        total=len(sets),
        progress=progress,
        should_cancel=should_cancel,
        workers=workers,
    )
