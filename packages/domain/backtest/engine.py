"""Backtest entry points: run a compiled plan (or a batch of plans) over bars.

``simulate`` is the single-run path (plan -> simulation -> metrics -> result); ``run_sweep`` runs many
plans of one structure in one compiled call per chunk and returns their summary metrics. Both accept a
``progress`` callback and a ``should_cancel`` check from the job layer.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import _kernel as k
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import FinerBars, UniverseBars
from packages.domain.backtest.codes import ENGINE_VERSION, N_ORDER_FIELDS, N_TRADE_FIELDS, T_ID
from packages.domain.backtest.hashing import data_snapshot_hash, order_list_hash
from packages.domain.backtest.metrics import assemble_metrics
from packages.domain.backtest.packing import PackedPlans, pack_params, pack_plans, readonly
from packages.domain.backtest.result import BacktestResult, ChartSeries
from packages.domain.strategy.plan import StrategyPlan

ProgressCallback = Callable[[float, str], None]
"""Called with the fraction done (0..1) and a short stage name."""
CancelCheck = Callable[[], bool]
"""Returns True when the run should stop; checked between chunks."""

_NS_PER_YEAR = 365.25 * 86_400 * 1_000_000_000
_DEFAULT_PERIODS_PER_YEAR = 252.0
# Bars x symbols simulated per kernel call between progress/cancel checks.
_CHUNK_CELLS = 1 << 21
DEFAULT_CHART_POINTS = 2000


@functools.cache
def _side_pool() -> ThreadPoolExecutor:
    """Threads for the work that runs beside a simulation (hashes, equity metrics); shared by runs."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="backtest-side")


# A forked child (a Celery prefork pool process) inherits the pool object but none of its threads:
# it must build its own.
os.register_at_fork(after_in_child=_side_pool.cache_clear)


class BacktestCancelled(Exception):
    """The cancellation hook asked the run to stop."""


def infer_periods_per_year(index: npt.NDArray[np.int64]) -> float:
    """Bars per calendar year actually observed (≈252 for exchange daily bars, 525,960 for 24/7 minutes)."""
    if index.shape[0] < 3:
        return _DEFAULT_PERIODS_PER_YEAR
    span = float(index[-1] - index[0])
    if span <= 0:
        return _DEFAULT_PERIODS_PER_YEAR
    return (index.shape[0] - 1) / (span / _NS_PER_YEAR)


@dataclass(frozen=True)
class SimulationRecords:
    """Raw kernel outputs of one plan: run totals, order/trade records (``codes`` columns), per-bar series."""

    state_g: npt.NDArray[np.float64]
    orders: npt.NDArray[np.float64]
    trades: npt.NDArray[np.float64]
    equity: npt.NDArray[np.float64]
    cash: npt.NDArray[np.float64]
    gross: npt.NDArray[np.float64]


def _price_inputs(bars: UniverseBars) -> tuple[npt.NDArray[np.float64], ...]:
    return tuple(readonly(getattr(bars, f)) for f in ("open", "high", "low", "close", "volume"))


def _fine_inputs(
    finer: FinerBars | None, bars: UniverseBars
) -> tuple[npt.NDArray[np.int64], tuple[npt.NDArray[np.float64], ...]]:
    if finer is None:
        empty = readonly(np.empty((0, bars.n_symbols)))
        return readonly(np.zeros(1, dtype=np.int64)), (empty, empty, empty, empty)
    finer.check_against(bars)
    return (
        readonly(finer.parent_start.astype(np.int64)),
        tuple(readonly(getattr(finer, f)) for f in ("open", "high", "low", "close")),
    )


def _initial_capacity(packed: PackedPlans, n_symbols: int) -> int:
    signals = int(np.count_nonzero(packed.entries[0]))
    return max(64, min(2 * signals + 4 * n_symbols + 16, 1 << 20))


def _simulate_packed(
    packed: PackedPlans,
    bars: UniverseBars,
    assumptions: ExecutionAssumptions,
    periods_per_year: float,
    finer: FinerBars | None,
    progress: ProgressCallback | None,
    should_cancel: CancelCheck | None,
) -> SimulationRecords:
    n_bars, n_symbols = bars.n_bars, bars.n_symbols
    params = pack_params(assumptions, periods_per_year)
    fine_start, fine = _fine_inputs(finer, bars)
    prices = _price_inputs(bars)
    state_g, state_s, levels = k.new_state(n_symbols, packed.exit_i.shape[0], assumptions.initial_cash)
    capacity = _initial_capacity(packed, n_symbols)
    orders = np.empty((capacity, N_ORDER_FIELDS))
    trades = np.empty((capacity, N_TRADE_FIELDS))
    equity = np.empty(n_bars)
    cash = np.empty(n_bars)
    gross = np.empty(n_bars)
    chunk = max(_CHUNK_CELLS // max(n_symbols, 1), 1)
    bar = 0
    while bar < n_bars:
        if should_cancel is not None and should_cancel():
            raise BacktestCancelled("backtest cancelled")
        stop = min(n_bars, bar + chunk)
        bar = k.run_bars(
            0,
            bar,
            stop,
            prices,
            fine_start,
            fine,
            packed.entries,
            packed.order_price,
            packed.sizing_ref,
            packed.sig_stack,
            packed.dist_stack,
            packed.rot_score,
            packed.entry_any,
            packed.exit_any,
            packed.side_i,
            packed.side_f,
            packed.exit_i,
            packed.exit_f,
            packed.port_i,
            params,
            state_g,
            state_s,
            levels,
            orders,
            trades,
            equity,
            cash,
            gross,
        )
        if bar < stop:
            need = 8 * n_symbols + 8
            orders = k.grow_records(orders, need)
            trades = k.grow_records(trades, need)
        if progress is not None:
            progress(bar / n_bars, "simulating")
    free = min(orders.shape[0] - int(state_g[k.G_N_ORDERS]), trades.shape[0] - int(state_g[k.G_N_TRADES]))
    if free <= n_symbols:
        orders = k.grow_records(orders, n_symbols + 1)
        trades = k.grow_records(trades, n_symbols + 1)
    k.finish(prices[3], prices[4], params, state_g, state_s, orders, trades, equity, cash, gross)
    n_orders = int(state_g[k.G_N_ORDERS])
    n_trades = int(state_g[k.G_N_TRADES])
    trade_records = trades[:n_trades]
    ids = trade_records[:, T_ID]
    if not bool(np.all(ids[1:] > ids[:-1])):  # records are written at exits; report them by entry
        trade_records = trade_records[np.argsort(ids, kind="stable")]
    return SimulationRecords(state_g, orders[:n_orders], trade_records, equity, cash, gross)


def simulate_records(
    plan: StrategyPlan,
    bars: UniverseBars,
    assumptions: ExecutionAssumptions | None = None,
    *,
    finer_bars: FinerBars | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> SimulationRecords:
    """The simulation core alone: fills, cash, equity and records, without metrics or result building."""
    assumptions = assumptions or ExecutionAssumptions()
    periods_per_year = assumptions.periods_per_year or infer_periods_per_year(bars.index)
    packed = pack_plans([plan], bars)
    return _simulate_packed(packed, bars, assumptions, periods_per_year, finer_bars, progress, should_cancel)


def simulate(
    plan: StrategyPlan,
    bars: UniverseBars,
    assumptions: ExecutionAssumptions | None = None,
    *,
    finer_bars: FinerBars | None = None,
    dsl_version: str = "",
    dsl_hash: str = "",
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    chart_points: int = DEFAULT_CHART_POINTS,
) -> BacktestResult:
    """Run one compiled plan over ``bars`` and compute the whole metric set."""
    assumptions = assumptions or ExecutionAssumptions()
    periods_per_year = assumptions.periods_per_year or infer_periods_per_year(bars.index)
    packed = pack_plans([plan], bars)
    # The kernels release the GIL, so the input and order hashes are computed beside them.
    pool = _side_pool()
    data_hash = pool.submit(data_snapshot_hash, bars)
    run = _simulate_packed(packed, bars, assumptions, periods_per_year, finer_bars, progress, should_cancel)
    order_hash = pool.submit(order_list_hash, run.orders)
    if progress is not None:
        progress(1.0, "metrics")
    return build_result(
        run,
        packed,
        bars,
        assumptions,
        periods_per_year,
        dsl_version=dsl_version,
        dsl_hash=dsl_hash,
        chart_points=chart_points,
        hashes=(data_hash, order_hash),
        pool=pool,
    )


def build_result(
    run: SimulationRecords,
    packed: PackedPlans,
    bars: UniverseBars,
    assumptions: ExecutionAssumptions,
    periods_per_year: float,
    *,
    dsl_version: str,
    dsl_hash: str,
    chart_points: int,
    hashes: tuple[Future[str], Future[str]] | None = None,
    pool: ThreadPoolExecutor | None = None,
) -> BacktestResult:
    """Metrics, chart series and provenance of a finished simulation.

    With a ``pool``, the equity-curve metrics run on it beside the trade metrics (both release the GIL).
    """
    drawdown = np.empty(bars.n_bars)
    equity_args = (
        run.equity,
        run.gross,
        bars.close,
        bars.index,
        assumptions.initial_cash,
        periods_per_year,
        assumptions.risk_free_rate,
        drawdown,
    )
    equity_future = pool.submit(k.equity_metrics, *equity_args) if pool is not None else None
    trade_values = k.trade_metrics(run.trades, run.trades.shape[0], bars.index)
    equity_bars = k.minmax_downsample(run.equity, chart_points)
    equity_values, _, _ = (
        equity_future.result() if equity_future is not None else k.equity_metrics(*equity_args)
    )
    metrics = assemble_metrics(
        equity_values,
        trade_values,
        run.state_g,
        bars.index,
        assumptions.initial_cash,
        periods_per_year,
    )
    drawdown_bars = k.minmax_downsample(drawdown, chart_points)
    return BacktestResult(
        engine_version=ENGINE_VERSION,
        dsl_version=dsl_version,
        dsl_hash=dsl_hash,
        data_hash=hashes[0].result() if hashes else data_snapshot_hash(bars),
        order_hash=hashes[1].result() if hashes else order_list_hash(run.orders),
        assumptions=assumptions,
        periods_per_year=periods_per_year,
        symbols=bars.symbols,
        side_names=packed.side_names,
        exit_rule_names=tuple(rule.name for rule in packed.exit_rules),
        index=bars.index,
        metrics=metrics,
        equity=run.equity,
        cash=run.cash,
        gross_exposure=run.gross,
        drawdown=drawdown,
        orders=run.orders,
        trades=run.trades,
        chart=ChartSeries(
            equity_bars=equity_bars,
            equity=run.equity[equity_bars],
            drawdown_bars=drawdown_bars,
            drawdown=drawdown[drawdown_bars],
        ),
    )


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Summary metrics of every plan of a sweep, in input order."""

    metric_names: tuple[str, ...]
    values: npt.NDArray[np.float64]  # (n_plans, n_metrics)
    assumptions: ExecutionAssumptions
    data_hash: str
    engine_version: str = ENGINE_VERSION

    def metric(self, name: str) -> npt.NDArray[np.float64]:
        return self.values[:, self.metric_names.index(name)]

    def best(self, name: str, *, maximize: bool = True) -> int:
        """Index of the best plan by ``name`` (NaN never wins)."""
        column = self.metric(name)
        filled = np.where(np.isnan(column), -np.inf if maximize else np.inf, column)
        return int(np.argmax(filled) if maximize else np.argmin(filled))

    def rows(self) -> list[dict[str, float | None]]:
        return [
            {
                name: (float(v) if np.isfinite(v) else None)
                for name, v in zip(self.metric_names, row, strict=True)
            }
            for row in self.values
        ]


def run_sweep(
    plans: Sequence[StrategyPlan],
    bars: UniverseBars,
    assumptions: ExecutionAssumptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    plans_per_call: int = 10,
    summarise: bool = True,
    workers: int | None = None,
) -> SweepResult:
    """Run plans of one structure (a parameter grid) and return each one's summary metrics.

    Chunks of ``plans_per_call`` plans run as single compiled calls on ``workers`` threads (default:
    one per CPU); progress and cancellation are checked as chunks finish. Results do not depend on the
    number of workers.

    ``summarise=False`` skips the metric kernels and fills only ``final_equity``, ``trades`` (closed and
    still open), ``fees_paid``, ``orders`` and ``traded_notional``: the simulation core alone.
    """
    batches = (plans[start : start + plans_per_call] for start in range(0, len(plans), plans_per_call))
    return run_sweep_batches(
        batches,
        bars,
        assumptions,
        total=len(plans),
        progress=progress,
        should_cancel=should_cancel,
        summarise=summarise,
        workers=workers,
    )


def run_sweep_batches(
    batches: Iterable[Sequence[StrategyPlan]],
    bars: UniverseBars,
    assumptions: ExecutionAssumptions | None = None,
    *,
    total: int,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    summarise: bool = True,
    workers: int | None = None,
) -> SweepResult:
    """``run_sweep`` over batches produced lazily: batch k+1 is built while batch k is simulated.

    Each batch is one compiled call on a worker thread (the kernel releases the GIL), so a caller
    building plans batch by batch overlaps that work with the simulation. ``total`` is the number of
    plans over all batches (for progress). Rows of the result follow the batches' order.
    """
    assumptions = assumptions or ExecutionAssumptions()
    periods_per_year = assumptions.periods_per_year or infer_periods_per_year(bars.index)
    params = pack_params(assumptions, periods_per_year)
    prices = _price_inputs(bars)
    fine_start, fine = _fine_inputs(None, bars)
    index = readonly(bars.index)
    threads = max(1, workers or os.cpu_count() or 1)
    parts: list[npt.NDArray[np.float64]] = []
    done = 0

    def run_batch(packed: PackedPlans, values: npt.NDArray[np.float64]) -> int:
        k.sweep_kernel(
            prices,
            fine_start,
            fine,
            packed.entries,
            packed.order_price,
            packed.sizing_ref,
            packed.sig_stack,
            packed.dist_stack,
            packed.rot_score,
            packed.entry_any,
            packed.exit_any,
            packed.side_i,
            packed.side_f,
            packed.exit_i,
            packed.exit_f,
            packed.port_i,
            params,
            index,
            periods_per_year,
            assumptions.risk_free_rate,
            _initial_capacity(packed, bars.n_symbols),
            summarise,
            values,
        )
        return int(values.shape[0])

    def settle(pending: set[Future[int]], at_most: int) -> set[Future[int]]:
        nonlocal done
        while len(pending) > at_most:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            done += sum(future.result() for future in finished)
            if progress is not None:
                progress(done / max(total, 1), "sweeping")
        return pending

    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: set[Future[int]] = set()
        try:
            for batch in batches:
                if should_cancel is not None and should_cancel():
                    raise BacktestCancelled("sweep cancelled")
                packed = pack_plans(batch, bars)
                values = np.full((packed.n_plans, len(k.SWEEP_METRICS)), np.nan)
                parts.append(values)
                pending.add(pool.submit(run_batch, packed, values))
                # Keep every thread busy and one batch ready, no more (bounded memory).
                pending = settle(pending, threads)
            settle(pending, 0)
        finally:
            for future in pending:
                future.cancel()
    return SweepResult(
        metric_names=k.SWEEP_METRICS,
        values=np.concatenate(parts) if parts else np.empty((0, len(k.SWEEP_METRICS))),
        assumptions=assumptions,
        data_hash=data_snapshot_hash(bars),
    )
