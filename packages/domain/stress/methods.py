"""The five stress methods as job parts: each is a ``plan`` (what parts to run), a ``part`` (one
part's computation) and a ``merge`` (the report from every part's result, in plan order).

All three are pure: they read a ``StressContext`` (the strategy compiled over its bars, warm-up
history included, and the requested range) and the request, and return JSON-able values, so the
job kit can run parts on any worker and merge them anywhere. Part results depend only on the
request and the part's spec, never on how many parts there are or where they ran.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.domain.backtest.pipeline import Backtester, BacktestRun, Benchmark
from packages.domain.strategy.limits import DEFAULT_LIMITS
from packages.domain.strategy.tunables import ParameterSpace
from packages.domain.strategy.vocabulary import bars_per_year
from packages.domain.stress import crisis, monte_carlo, optimisation, sensitivity, walk_forward
from packages.domain.stress.errors import StressInputError

_NS_PER_DAY = 86_400 * 10**9
_EPOCH = date(1970, 1, 1)
# Most values a series in a report carries (charts need no more).
CHART_POINTS = 500


@dataclass
class StressContext:
    """One strategy over its bars; rows ``[first_row, stop_row)`` are the range the user asked for."""

    backtester: Backtester
    first_row: int
    stop_row: int
    benchmark: Benchmark | None = None
    threads: int | None = None  # sweep threads per part (None: one per CPU)
    _space: ParameterSpace | None = field(default=None, repr=False)
    _base: BacktestRun | None = field(default=None, repr=False)

    @property
    def index(self) -> npt.NDArray[np.int64]:
        return self.backtester.bars.index

    @property
    def space(self) -> ParameterSpace:
        if self._space is None:
            self._space = ParameterSpace.of_valid_document(self.backtester.strategy.document, DEFAULT_LIMITS)
        return self._space

    def base_run(self) -> BacktestRun:
        """The strategy as written over the requested range (computed once per context)."""
        if self._base is None:
            self._base = self.backtester.run(
                first_row=self.first_row, stop_row=self.stop_row, benchmark=self.benchmark
            )
        return self._base

    def sweep_metrics(
        self, parameter_sets: Sequence[Mapping[str, float]], first_row: int, stop_row: int
    ) -> list[dict[str, Any]]:
        if not parameter_sets:
            return []
        result = self.backtester.sweep(
            parameter_sets, first_row=first_row, stop_row=stop_row, workers=self.threads
        )
        return [dict(row) for row in result.rows()]


def _finite_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _row_of(index: npt.NDArray[np.int64], day: date) -> int:
    return int(np.searchsorted(index, (day - _EPOCH).days * _NS_PER_DAY, side="left"))


def _downsample(values: npt.NDArray[np.float64], points: int = CHART_POINTS) -> tuple[list[int], list[float]]:
    if values.shape[0] <= points:
        steps = np.arange(values.shape[0])
    else:
        steps = np.unique(np.linspace(0, values.shape[0] - 1, points).round().astype(np.int64))
    return [int(s) for s in steps], [float(values[s]) for s in steps]


# ------------------------------------------------------------------------------------ crisis windows
def crisis_plan(windows: Sequence[crisis.CrisisWindow]) -> list[dict[str, Any]]:
    return [window.to_dict() for window in windows]


def crisis_part(
    context: StressContext, spec: Mapping[str, Any], thresholds: crisis.Thresholds
) -> dict[str, Any]:
    """One window: coverage, then (with data) the run's figures and pass or fail."""
    index = context.index
    start, end = date.fromisoformat(spec["start"]), date.fromisoformat(spec["end"])
    first, stop = _row_of(index, start), _row_of(index, end)
    start_ns, end_ns = (start - _EPOCH).days * _NS_PER_DAY, (end - _EPOCH).days * _NS_PER_DAY
    data_first = int(index[0]) if index.shape[0] else None
    data_last = int(index[-1]) if index.shape[0] else None
    coverage = crisis.coverage_of(start_ns, end_ns, data_first, data_last)
    outcome: dict[str, Any] = {
        "window_id": spec["id"],
        "name": spec["name"],
        "start": spec["start"],
        "end": spec["end"],
        "coverage": coverage,
        "needed_coverage": {"start": spec["start"], "end": spec["end"]},
    }
    if coverage == "no_data" or stop - first < 2:
        return {
            **outcome,
            "coverage": "no_data",
            "message": (
                f"No stored bars of {', '.join(context.backtester.strategy.symbols)} between {spec['start']} "
                f"and {spec['end']}; import or sync data covering that period to run this window."
            ),
            "total_return": None,
            "max_drawdown": None,
            "trades": None,
            "sharpe": None,
            "benchmark_return": None,
            "passed": None,
        }
    benchmark = _cut(context.benchmark, index.shape[0])
    run = context.backtester.run(first_row=first, stop_row=stop, benchmark=benchmark)
    metrics = run.result.metrics
    total = _finite_or_none(metrics.get("total_return")) or 0.0
    drawdown = _finite_or_none(metrics.get("max_drawdown")) or 0.0
    benchmark_close = benchmark.close if benchmark is not None else context.backtester.bars.close
    benchmark_return = crisis.buy_and_hold_return(benchmark_close[first:stop])
    return {
        **outcome,
        "data_start": str(np.datetime_as_string(np.int64(index[first]).astype("datetime64[ns]"), unit="D")),
        "data_end": str(np.datetime_as_string(np.int64(index[stop - 1]).astype("datetime64[ns]"), unit="D")),
        "warm_up_rows": first,
        "bars": stop - first,
        "total_return": total,
        "max_drawdown": drawdown,
        "trades": int(metrics.get("trades") or 0),
        "sharpe": _finite_or_none(metrics.get("sharpe")),
        "benchmark_return": benchmark_return,
        "passed": thresholds.passes(total, drawdown),
    }


def _cut(benchmark: Benchmark | None, n_bars: int) -> Benchmark | None:
    return benchmark if benchmark is None or benchmark.close.shape[0] == n_bars else None


def crisis_merge(outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    summary = crisis.aggregate(outcomes)
    return {"summary": summary, "description": crisis.describe(summary), "items": list(outcomes)}


# ------------------------------------------------------------------------------------ Monte Carlo
def monte_carlo_source(context: StressContext) -> monte_carlo.MonteCarloSource:
    return monte_carlo.MonteCarloSource.from_result(context.base_run().result)


def monte_carlo_plan(
    context: StressContext, spec: monte_carlo.MonteCarloSpec, chunk_size: int
) -> list[dict[str, Any]]:
    plan = monte_carlo.plan_trials(monte_carlo_source(context), spec)
    return [
        {"first_trial": first, "trials": count, "block_length": plan.block_length}
        for first, count in monte_carlo.chunk_bounds(spec.trials, chunk_size)
    ]


def _trial_plan(
    context: StressContext, spec: monte_carlo.MonteCarloSpec, block_length: int
) -> monte_carlo.TrialPlan:
    fixed = monte_carlo.MonteCarloSpec(
        spec.method,
        spec.trials,
        spec.seed,
        block_length,
        spec.ruin_threshold,
        spec.confidence,
        spec.path_points,
    )
    return monte_carlo.plan_trials(monte_carlo_source(context), fixed)


def monte_carlo_part(
    context: StressContext, spec: monte_carlo.MonteCarloSpec, part: Mapping[str, Any]
) -> monte_carlo.TrialChunk:
    plan = _trial_plan(context, spec, int(part["block_length"]))
    return monte_carlo.run_chunk(
        monte_carlo_source(context), plan, int(part["first_trial"]), int(part["trials"])
    )


def monte_carlo_merge(
    context: StressContext,
    spec: monte_carlo.MonteCarloSpec,
    block_length: int,
    chunks: Sequence[monte_carlo.TrialChunk],
) -> dict[str, Any]:
    plan = _trial_plan(context, spec, block_length)
    report = monte_carlo.merge_chunks(monte_carlo_source(context), spec, plan, list(chunks))
    ordered = sorted(chunks, key=lambda chunk: chunk.first_trial)
    items = [
        {
            "trial": chunk.first_trial + i,
            "final_return": float(chunk.final_returns[i]),
            "max_drawdown": float(chunk.max_drawdowns[i]),
            "sharpe": float(chunk.sharpes[i]),
            "lowest_equity": float(chunk.lowest_equity[i]),
        }
        for chunk in ordered
        for i in range(chunk.final_returns.shape[0])
    ]
    return {"summary": report, "description": monte_carlo.describe(report), "items": items}


# ------------------------------------------------------------------------------------ sensitivity
def sensitivity_plan(
    context: StressContext, spec: sensitivity.SensitivitySpec, chunk_size: int
) -> list[dict[str, Any]]:
    points = sensitivity.plan_scan(context.space, spec)
    rows = [
        {
            "position": i,
            "kind": p.kind,
            "values": p.values,
            "parameter": p.parameter,
            "pair": list(p.pair) if p.pair else None,
            "invalid": p.invalid,
        }
        for i, p in enumerate(points)
    ]
    return [{"points": rows[start : start + chunk_size]} for start in range(0, len(rows), chunk_size)]


def sensitivity_part(context: StressContext, part: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    points = part["points"]
    runnable = [p for p in points if p["invalid"] is None]
    measured = iter(
        context.sweep_metrics([p["values"] for p in runnable], context.first_row, context.stop_row)
    )
    return [next(measured) if p["invalid"] is None else None for p in points]


def sensitivity_merge(
    context: StressContext,
    spec: sensitivity.SensitivitySpec,
    parts: Sequence[Mapping[str, Any]],
    results: Sequence[Sequence[dict[str, Any] | None]],
) -> dict[str, Any]:
    # Back in plan order (the base point first) whatever order the parts come in.
    measured = sorted(
        (
            (row, metric)
            for part, result in zip(parts, results, strict=True)
            for row, metric in zip(part["points"], result, strict=True)
        ),
        key=lambda pair: int(pair[0]["position"]),
    )
    rows = [row for row, _ in measured]
    metrics = [metric for _, metric in measured]
    points = [
        sensitivity.ScanPoint(
            r["kind"],
            dict(r["values"]),
            r["parameter"],
            tuple(r["pair"]) if r["pair"] else None,
            r["invalid"],
        )
        for r in rows
    ]
    report = sensitivity.analyse(context.space, spec, points, metrics)
    items = [
        {
            "point": r["position"],
            "kind": r["kind"],
            "values": r["values"],
            "invalid": r["invalid"],
            "metrics": None if m is None else {n: m.get(n) for n in sensitivity.RESPONSE_METRICS},
        }
        for r, m in zip(rows, metrics, strict=True)
    ]
    return {"summary": report, "description": sensitivity.describe(report), "items": items}


# ------------------------------------------------------------------------------------ optimisation
def optimisation_plan(
    context: StressContext, spec: optimisation.OptimisationSpec, chunk_size: int
) -> list[dict[str, Any]]:
    optimisation.check_space(context.space, spec)
    if spec.method == "tpe":
        return [{"tpe": True}]
    rows = [
        {"number": n, "values": values, "invalid": optimisation.invalid_reason(context.space, values)}
        for n, values in enumerate(optimisation.candidates(context.space, spec))
    ]
    return [{"trials": rows[start : start + chunk_size]} for start in range(0, len(rows), chunk_size)]


def _search(
    context: StressContext,
    spec: optimisation.OptimisationSpec,
    rows: Sequence[Mapping[str, Any]] | None,
    first_row: int,
    stop_row: int,
) -> list[tuple[dict[str, float], dict[str, Any] | None, str | None]]:
    """Grid/random rows given, or a TPE study, over rows ``[first_row, stop_row)``."""
    if rows is None:
        return optimisation.run_tpe(
            context.space, spec, lambda sets: list(context.sweep_metrics(sets, first_row, stop_row))
        )
    runnable = [r for r in rows if r["invalid"] is None]
    measured = iter(context.sweep_metrics([r["values"] for r in runnable], first_row, stop_row))
    return [(dict(r["values"]), next(measured) if r["invalid"] is None else None, r["invalid"]) for r in rows]


def optimisation_part(
    context: StressContext, spec: optimisation.OptimisationSpec, part: Mapping[str, Any]
) -> list[Any]:
    found = _search(
        context, spec, None if part.get("tpe") else part["trials"], context.first_row, context.stop_row
    )
    return [[values, metrics, invalid] for values, metrics, invalid in found]


def optimisation_merge(
    context: StressContext, spec: optimisation.OptimisationSpec, results: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    proposals = [(row[0], row[1], row[2]) for result in results for row in result]
    trials = optimisation.trial_rows(context.space, spec, proposals)
    summary = optimisation.summarise(context.space, spec, trials)
    return {"summary": summary, "description": optimisation.describe(summary), "items": trials}


# ------------------------------------------------------------------------------------ walk-forward
def walk_forward_plan(context: StressContext, spec: walk_forward.WalkForwardSpec) -> list[dict[str, Any]]:
    """The folds; a refusal's pointer is into the walk-forward request (its search under ``/optimisation``)."""
    try:
        optimisation.check_space(context.space, spec.optimisation)
    except StressInputError as exc:
        raise StressInputError(exc.code, "/optimisation" + exc.pointer, exc.message) from exc
    if spec.optimisation.method == "grid":
        size = optimisation.grid_size(context.space, spec.optimisation)
        if size > spec.optimisation.budget:
            raise StressInputError(
                "grid_too_large",
                "/optimisation/budget",
                f"Each fold's grid has {size} combinations and the budget is {spec.optimisation.budget}; raise "
                "the budget or coarsen the grid.",
            )
    folds = walk_forward.plan_folds(context.first_row, context.stop_row, spec)
    return [
        {"fold": f.index, "in_sample": list(f.in_sample), "out_of_sample": list(f.out_of_sample)}
        for f in folds
    ]


def walk_forward_part(
    context: StressContext, spec: walk_forward.WalkForwardSpec, part: Mapping[str, Any]
) -> dict[str, Any]:
    is_first, is_stop = part["in_sample"]
    oos_first, oos_stop = part["out_of_sample"]
    search = spec.optimisation
    rows = None
    if search.method != "tpe":
        rows = [
            {"number": n, "values": v, "invalid": optimisation.invalid_reason(context.space, v)}
            for n, v in enumerate(optimisation.candidates(context.space, search))
        ]
    trials = optimisation.trial_rows(context.space, search, _search(context, search, rows, is_first, is_stop))
    best = optimisation.best_trial(trials, search.objectives)
    fold = walk_forward.Fold(int(part["fold"]), (is_first, is_stop), (oos_first, oos_stop)).to_dict(
        context.index
    )
    if best is None:
        return {
            **fold,
            "winner": None,
            "in_sample_metrics": None,
            "out_of_sample_metrics": None,
            "efficiency": None,
            "out_of_sample_returns": [],
        }
    winner = trials[best]["values"]
    run = context.backtester.run(winner, first_row=oos_first, stop_row=oos_stop)
    equity = run.result.equity
    start = run.result.assumptions.initial_cash
    returns = equity / np.concatenate(([start], equity[:-1])) - 1.0
    in_sample, out_of_sample = (
        trials[best]["metrics"],
        {k: _finite_or_none(v) if not isinstance(v, str) else v for k, v in run.result.metrics.items()},
    )
    return {
        **fold,
        "winner": winner,
        "in_sample_metrics": in_sample,
        "out_of_sample_metrics": out_of_sample,
        "efficiency": walk_forward.efficiency(
            _finite_or_none((in_sample or {}).get("annual_return")),
            _finite_or_none(out_of_sample.get("annual_return")),
        ),
        "out_of_sample_returns": [float(r) for r in returns],
    }


def walk_forward_merge(
    context: StressContext, spec: walk_forward.WalkForwardSpec, folds: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    ordered = sorted(folds, key=lambda f: f["fold"])
    stitched = walk_forward.stitch(
        [np.asarray(f["out_of_sample_returns"], dtype=np.float64) for f in ordered]
    )
    strategy = context.backtester.strategy
    periods = bars_per_year(strategy.market, strategy.timeframe)
    summary = walk_forward.summarise(spec, ordered, stitched, periods)
    steps, values = _downsample(stitched)
    summary["stitched_out_of_sample"]["equity"] = {"step": steps, "value": values}
    items = [{k: v for k, v in f.items() if k != "out_of_sample_returns"} for f in ordered]
    return {"summary": summary, "description": walk_forward.describe(summary), "items": items}
