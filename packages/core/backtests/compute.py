"""The CPU part of a backtest job: plan, simulate, and pack everything the views read later.

The engine's ``run_backtest`` plans and simulates over the same bars; a job also reads warm-up
history before its range, so it builds the plan over history and range together and simulates the
range alone (``plan_from_row``): indicators are warm on the first bar and the metrics cover exactly
the requested range.

Runs in a worker thread. Everything here is deterministic: the same document, bars and assumptions
give the same summary and artifact bytes, hence the same ``result_hash``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.core.backtests.artifacts import pack_artifacts
from packages.core.backtests.snapshot_context import SNAPSHOT_SPAN_LIMIT, context_blobs
from packages.core.errors import FieldError, ValidationFailed
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import BacktestCancelled, simulate
from packages.domain.backtest.metrics import benchmark_comparison
from packages.domain.backtest.result import BacktestResult, iso_times
from packages.domain.backtest.serialization import JsonValue, canonical_json, to_jsonable
from packages.domain.strategy.compiler import CompiledStrategy, compile_strategy
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.plan import StrategyPlan
from packages.domain.strategy.vocabulary import DSL_VERSION

Progress = Callable[[float, str], None]
CancelCheck = Callable[[], bool]

_FEW_TRADES = 30


@dataclass(frozen=True)
class RunInputs:
    compiled: CompiledStrategy
    assumptions: ExecutionAssumptions
    bars: UniverseBars  # the range plus warm-up history before it
    first_row: int  # row of ``bars`` where the requested range begins
    benchmark_symbol: str | None
    benchmark_close: npt.NDArray[np.float64] | None  # on ``bars.index``
    max_cells: int
    context_bars: int
    snapshot_budget: int  # values (bars x symbols x series) kept for trade snapshots
    chart_points: int


@dataclass(frozen=True)
class ComputedResult:
    summary: dict[str, JsonValue]
    artifacts: bytes
    result_hash: str


class RunCancelled(Exception):
    """The job's cancellation hook stopped the run."""


def _from_row(value: Any, n_bars: int, first: int) -> Any:
    """``value`` with every per-bar array (first axis of length ``n_bars``) cut to start at ``first``."""
    if isinstance(value, np.ndarray):
        return value[first:] if value.ndim >= 1 and value.shape[0] == n_bars else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _from_row(getattr(value, f.name), n_bars, first) for f in dataclasses.fields(value)
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, Mapping):
        return {key: _from_row(item, n_bars, first) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_from_row(item, n_bars, first) for item in value)
    return value


def plan_from_row(plan: StrategyPlan, first: int) -> StrategyPlan:
    """The plan of bars ``first:``; warm-up bars already read before them no longer count."""
    if first == 0:
        return plan
    cut: StrategyPlan = _from_row(plan, plan.index.shape[0], first)
    return dataclasses.replace(cut, warmup_bars=max(plan.warmup_bars - first, 0))


def bars_from_row(bars: UniverseBars, first: int) -> UniverseBars:
    if first == 0:
        return bars
    return UniverseBars(
        index=bars.index[first:],
        symbols=bars.symbols,
        **{name: getattr(bars, name)[first:] for name in ("open", "high", "low", "close", "volume")},
    )


def compile_document(document: dict[str, Any]) -> CompiledStrategy:
    try:
        return compile_strategy(document)
    except StrategyValidationError as exc:
        raise ValidationFailed(
            "The strategy document is not valid.",
            errors=[FieldError(i.code.value, "/document" + i.pointer, i.message, i.hint) for i in exc.issues],
        ) from exc


def _benchmark_block(
    result: BacktestResult, symbol: str, close: npt.NDArray[np.float64]
) -> dict[str, JsonValue]:
    """The engine's benchmark statistics, measured against ``close`` instead of the universe."""
    block: dict[str, JsonValue] = {"symbol": symbol}
    block.update(benchmark_comparison(result, close))
    block["missing_bars"] = int(np.count_nonzero(~np.isfinite(close)))
    return block


def _warnings(result: BacktestResult, first_row: int, warmup_bars: int) -> list[str]:
    metrics = result.metrics
    warnings: list[str] = []
    trades = result.n_trades
    if trades == 0:
        warnings.append("No trades: the entry conditions never held (or no order could be filled).")
    elif trades < _FEW_TRADES:
        warnings.append(f"Only {trades} trades: the trade statistics are noisy.")
    if first_row < warmup_bars:
        warnings.append(
            f"Indicators need {warmup_bars} warm-up bars but only {first_row} exist before the range: "
            f"no entries during the first {warmup_bars - first_row} bars."
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


def run_backtest_job(inputs: RunInputs, progress: Progress, should_cancel: CancelCheck) -> ComputedResult:
    compiled = inputs.compiled
    bars = bars_from_row(inputs.bars, inputs.first_row)
    cells = bars.n_bars * bars.n_symbols
    if cells > inputs.max_cells:
        raise ValidationFailed(
            f"The range holds {cells} bars x symbols; a backtest may simulate at most {inputs.max_cells}.",
            errors=[FieldError("too_many_bars", "/start", "shorten the range or the universe")],
        )
    if bars.n_bars == 0:
        raise ValidationFailed(
            "No bars in the requested range.",
            errors=[FieldError("empty_range", "/start", "the range holds no bars of any symbol")],
        )
    progress(0.1, "computing indicators")
    plan = plan_from_row(compiled.build_plan(inputs.bars), inputs.first_row)
    if should_cancel():
        raise RunCancelled
    try:
        result = simulate(
            plan,
            bars,
            inputs.assumptions,
            dsl_version=DSL_VERSION,
            dsl_hash=compiled.document_hash,
            progress=lambda fraction, stage: progress(0.2 + 0.6 * fraction, stage),
            should_cancel=should_cancel,
            chart_points=inputs.chart_points,
        )
    except BacktestCancelled as exc:
        raise RunCancelled from exc
    if should_cancel():
        raise RunCancelled
    progress(0.85, "storing")
    summary, blobs = result.to_storage()
    # The chart series are rebuilt from the stored arrays; the summary row stays small.
    summary.pop("chart", None)
    if should_cancel():
        raise RunCancelled
    context, kept = context_blobs(result, bars, plan, inputs.context_bars, inputs.snapshot_budget)
    blobs.update(context)
    summary["snapshot"] = to_jsonable(
        {
            "context_bars": inputs.context_bars,
            "trades_kept": kept,
            "span_limit": SNAPSHOT_SPAN_LIMIT,
            "factors": sorted(plan.factors),
            "leaf_labels": dict(sorted(compiled.leaf_labels.items())),
        }
    )
    summary["range"] = {
        "start": iso_times(bars.index[[0]])[0],
        "end": iso_times(bars.index[[-1]])[0],
        "bars": bars.n_bars,
        "warmup_bars_before_start": inputs.first_row,
        "strategy_warmup_bars": compiled.warmup_bars,
    }
    summary["counts"] = {
        "bars": bars.n_bars,
        "symbols": bars.n_symbols,
        "trades": result.n_trades,
        "orders": int(result.orders.shape[0]),
    }
    if inputs.benchmark_symbol is not None and inputs.benchmark_close is not None:
        summary["benchmark"] = _benchmark_block(
            result, inputs.benchmark_symbol, inputs.benchmark_close[inputs.first_row :]
        )
    summary["warnings"] = to_jsonable(_warnings(result, inputs.first_row, compiled.warmup_bars))
    artifacts = pack_artifacts(blobs)
    digest = hashlib.sha256(canonical_json(summary))
    digest.update(artifacts)
    return ComputedResult(summary=summary, artifacts=artifacts, result_hash=digest.hexdigest())
