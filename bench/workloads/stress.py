"""Stress-test workloads (issue 11) beside the same computations written with numpy and vectorbt.

Every engine runs in its own subprocess (peak memory is its own), after one untimed warm-up run
(numba cache loads, vectorbt's JIT, page faults), with the allocator settings ``bench.run`` exports.
``rows`` counts simulated steps: trials x bars for Monte Carlo, runs x bars for the scans.

- ``stress_monte_carlo_1000``: 1,000-trial circular block bootstrap of the bar returns of an SMA
  10/30 crossover (long only, all-in, default costs) over ten years of REAL daily S&P 500 closes
  (2009-01-02 to 2018-12-31, 2,516 bars; the 1999-2008 bars before them are warm-up history; the SPX
  file bundled with ``arch``, the one the market-data store serves offline). Seed fixed; the block length
  is fixed at the Politis and White length of the series (``monte_carlo.automatic_block_length``),
  computed once outside the timing, so both engines resample with the same block. Timed: per trial
  compounding, max drawdown, Sharpe and lowest equity, then the report (mean, standard deviation,
  percentiles and confidence interval of each, probability of ruin, VaR, CVaR, fan-chart quantile
  paths). The backtest that produces the returns is not timed (neither engine repeats it).

  - ``minsy``: ``methods.monte_carlo_plan``/``part``/``merge`` in one process, cut into the job
    kit's default parts (``STRESS_TRIALS_PER_PART``), the merge building the per-trial items too.
  - ``numpy``: the same bootstrap written plainly with numpy: block starts from
    ``default_rng(seed).integers``, vectorised index arithmetic, ``cumprod``, running peaks,
    ``np.percentile``; trials in chunks of 250 so the temporaries stay in cache.
  - vectorbt has no bootstrap or Monte Carlo resampler (its returns accessor computes statistics of
    given series only), so it has no row here rather than a row doing other work.

- ``stress_sensitivity_100_100k``: a 100-point one-at-a-time scan of the SMA crossover on 100,000
  SYNTHETIC one-minute bars (the backtest workloads' seeded random walk): written 25/100, each
  period moved by up to ±100% in 25 steps a side (fast 1..50, slow 1 and 4..200; the written point
  and 99 moved ones). Every point reports total return, Sharpe, max drawdown, trades, win rate and
  profit factor. Fees 0.1% a side, fills at the next bar's open, start cash 1e30 (as the backtest
  workloads, so vectorbt's minimum size never binds).

  - ``minsy``: ``methods.sensitivity_plan``/``part``/``merge`` over a fresh ``Backtester`` (compile,
    plans, batch kernel, every run's full summary metrics, the scan's report), in the job kit's default
    parts (``STRESS_POINTS_PER_PART``), sweep threads as the engine picks them (one per CPU).
  - ``vectorbt``: ``MA.run`` over the 100 window pairs, ``ma_crossed_above``/``below`` shifted one
    bar, ``Portfolio.from_signals`` with ``price=open`` over 100 columns, then the six metrics; the
    Sharpe ratio is minsy's (daily returns of the equity at each UTC day's last bar, annualised by
    the observed days per year) through ``ReturnsAccessor.from_value(...).sharpe_ratio()``. Faster of
    its numba and Rust engines, three timed runs each (seconds per run; peak memory is several GB).

- ``stress_walk_forward_10x100_100k``: 10 rolling folds over the same 100,000 bars (in-sample 28,568
  bars, out-of-sample 7,142), each optimising the 10 x 10 grid of ``sweep_100_100k`` (fast 2..20,
  slow 25..250) by Sharpe in-sample, then running the winner out of sample.

  - ``minsy``: ``methods.walk_forward_plan``/``part``/``merge`` over a fresh ``Backtester``.
  - ``vectorbt``: signals of the 100 combinations over all bars (warm indicators, as minsy's history),
    ``rolling_split`` into the same folds, one ``from_signals`` over the 1,000 in-sample columns, the
    best Sharpe per fold, one ``from_signals`` over the 10 winners out of sample, the stitched return.

The parent compares what the engines computed and adds the outcome to both rows' notes: Monte Carlo
trial by trial (the numpy code run once more, untimed, on the block starts minsy's counter-based
streams draw) and in distribution (numpy's own stream); every sensitivity point's six metrics; each
fold's windows, winner and in- and out-of-sample figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.workloads.backtest import (
    CASH,
    FAST_GRID,
    FEE,
    SLOW_GRID,
    _json_line,
    _timed,
    sma_cross_document,
    synthetic_ohlcv,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MONTE_CARLO = "stress_monte_carlo_1000"
SENSITIVITY = "stress_sensitivity_100_100k"
WALK_FORWARD = "stress_walk_forward_10x100_100k"
ENGINES = {
    MONTE_CARLO: ("minsy", "numpy"),
    SENSITIVITY: ("minsy", "vectorbt"),
    WALK_FORWARD: ("minsy", "vectorbt"),
}
Row = dict[str, Any]
FloatArray = npt.NDArray[np.float64]

FAST, SLOW = "/factors/0/params/period", "/factors/1/params/period"
N_BARS = 100_000
PERIODS_PER_YEAR_1M = 525_960.0  # one-minute bars around the clock
NS_PER_DAY = 86_400 * 10**9

# Monte Carlo: the report's figures, as packages.domain.stress.monte_carlo defines them (checked there).
TRIALS = 1_000
SEED = 20_241_124
MC_FIRST_DAY = "2009-01-01"
CONFIDENCE = 0.95
RUIN_THRESHOLD = -0.5
PATH_POINTS = 100
SUMMARY_PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
FAN_QUANTILES = (5, 25, 50, 75, 95)
NUMPY_CHUNK_TRIALS = 250

# Sensitivity: the written periods and the scan around them.
SCAN_BASE = (25, 100)
SCAN_SPAN = 1.0
SCAN_STEPS = 25
SCAN_METRICS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor")

# Walk-forward: rolling folds with the default window lengths (out-of-sample n / (folds + 4), in-sample 4x).
FOLDS = 10
OUT_OF_SAMPLE_BARS = N_BARS // (FOLDS + 4)
IN_SAMPLE_BARS = 4 * OUT_OF_SAMPLE_BARS


# --- shared helpers ----------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry over the parent's peak across exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def scan_points() -> list[tuple[int, int]]:
    """The scan's (fast, slow) pairs in plan order: the written pair, then each period's line.

    A moved value is written +- written * span * k / steps (k = 1..steps), rounded, kept at 1 or more
    (a period's lower bound), counted once and never equal to the written value.
    """

    def line(written: int) -> list[int]:
        moved = {
            max(round(written + written * SCAN_SPAN * k / SCAN_STEPS), 1)
            for k in range(-SCAN_STEPS, SCAN_STEPS + 1)
        }
        return sorted(moved - {written})

    fast, slow = SCAN_BASE
    return [SCAN_BASE, *((f, slow) for f in line(fast)), *((fast, s) for s in line(slow))]


def grid_pairs() -> list[tuple[int, int]]:
    """The walk-forward grid in the optimiser's order (fast outer, slow inner)."""
    return [(f, s) for f in FAST_GRID for s in SLOW_GRID]


def fold_rows() -> list[tuple[int, int, int, int]]:
    """Each fold's (in-sample first, stop, out-of-sample first, stop) rows."""
    return [
        (
            k * OUT_OF_SAMPLE_BARS,
            k * OUT_OF_SAMPLE_BARS + IN_SAMPLE_BARS,
            IN_SAMPLE_BARS + k * OUT_OF_SAMPLE_BARS,
            IN_SAMPLE_BARS + (k + 1) * OUT_OF_SAMPLE_BARS,
        )
        for k in range(FOLDS)
    ]


# --- numpy Monte Carlo (the peer) -------------------------------------------------------------------------


def numpy_block_bootstrap(
    returns: FloatArray,
    starts: npt.NDArray[np.int64],
    block_length: int,
    periods_per_year: float,
    sample_steps: npt.NDArray[np.int64],
) -> dict[str, FloatArray]:
    """Per trial (one row of ``starts``, the first bar of each circular block): final return, max
    drawdown, Sharpe (ddof 1, no risk-free rate), lowest equity and the equity at ``sample_steps``."""
    n = returns.shape[0]
    out: dict[str, list[FloatArray]] = {k: [] for k in ("final", "drawdown", "sharpe", "lowest", "paths")}
    offsets = np.arange(block_length)
    for first in range(0, starts.shape[0], NUMPY_CHUNK_TRIALS):
        chunk = starts[first : first + NUMPY_CHUNK_TRIALS]
        index = (chunk[:, :, None] + offsets).reshape(chunk.shape[0], -1)[:, :n] % n
        drawn = returns[index]
        equity = np.cumprod(1.0 + drawn, axis=1)
        peak = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)
        std = drawn.std(axis=1, ddof=1)
        safe = np.where(std > 1e-12, std, 1.0)
        paths = np.ones((chunk.shape[0], sample_steps.shape[0]))
        later = sample_steps > 0
        paths[:, later] = equity[:, sample_steps[later] - 1]
        out["final"].append(equity[:, -1] - 1.0)
        out["drawdown"].append(np.minimum((equity / peak).min(axis=1) - 1.0, 0.0))
        out["sharpe"].append(
            np.where(std > 1e-12, drawn.mean(axis=1) / safe * np.sqrt(periods_per_year), 0.0)
        )
        out["lowest"].append(np.minimum(equity.min(axis=1), 1.0))
        out["paths"].append(paths)
    return {k: np.concatenate(v) for k, v in out.items()}


def _distribution(values: FloatArray) -> dict[str, Any]:
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)),
        "min": float(values.min()),
        "max": float(values.max()),
        "percentiles": {
            f"p{p}": float(v)
            for p, v in zip(SUMMARY_PERCENTILES, np.percentile(values, SUMMARY_PERCENTILES), strict=True)
        },
        "confidence_interval": {"low": float(low), "high": float(high)},
    }


def numpy_report(trials: Mapping[str, FloatArray], backtest_return: float) -> dict[str, Any]:
    finals = trials["final"]
    cutoff = np.percentile(finals, (1.0 - CONFIDENCE) * 100.0)
    fan = np.percentile(trials["paths"], FAN_QUANTILES, axis=0)
    return {
        "final_return": _distribution(finals),
        "max_drawdown": _distribution(trials["drawdown"]),
        "sharpe": _distribution(trials["sharpe"]),
        "probability_of_ruin": float(np.mean(trials["lowest"] <= 1.0 + RUIN_THRESHOLD)),
        "value_at_risk": float(-cutoff),
        "conditional_value_at_risk": float(-finals[finals <= cutoff].mean()),
        "fan_chart": {f"p{q}": row.tolist() for q, row in zip(FAN_QUANTILES, fan, strict=True)},
        "total_return_percentile": float(
            (np.count_nonzero(finals < backtest_return) + 0.5 * np.count_nonzero(finals == backtest_return))
            / finals.shape[0]
            * 100.0
        ),
    }


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


def _splitmix_output(state: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    z = (state ^ (state >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return z ^ (z >> np.uint64(31))


def minsy_stream_starts(seed: int, trials: int, n: int, blocks: int) -> npt.NDArray[np.int64]:
    """The block starts minsy's Monte Carlo kernel draws: per trial a splitmix64 stream seeded from
    (seed, trial), each draw mapped to [0, n) by Lemire's multiply-shift on its top 32 bits. Only for
    the trial-by-trial cross-check (the timed numpy run draws from numpy's own generator)."""
    trial = np.arange(trials, dtype=np.uint64)
    state = _splitmix_output((np.uint64(seed) ^ (trial * _GOLDEN + np.uint64(1))) + _GOLDEN)
    starts = np.empty((trials, blocks), dtype=np.int64)
    for block in range(blocks):
        state = state + _GOLDEN
        top = (_splitmix_output(state) >> np.uint64(32)).astype(np.int64)
        starts[:, block] = (top * n) >> 32
    return starts


def _measure_numpy_monte_carlo(repeats: int, scratch: Path) -> dict[str, Any]:
    source = np.load(scratch / "monte_carlo_source.npz")
    returns = np.ascontiguousarray(source["bar_returns"])
    block_length = int(source["block_length"])
    periods_per_year = float(source["periods_per_year"])
    sample_steps = source["sample_steps"]
    backtest_return = float(source["total_return"])
    n = returns.shape[0]
    blocks = -(-n // block_length)

    def job() -> dict[str, Any]:
        starts = np.random.default_rng(SEED).integers(0, n, size=(TRIALS, blocks))
        trials = numpy_block_bootstrap(returns, starts, block_length, periods_per_year, sample_steps)
        return numpy_report(trials, backtest_return)

    median, times, report = _timed(job, repeats)
    same_stream = numpy_block_bootstrap(
        returns, minsy_stream_starts(SEED, TRIALS, n, blocks), block_length, periods_per_year, sample_steps
    )
    return {
        "median_s": median,
        "times_s": times,
        "peak_mb": _peak_rss_mb(),
        "steps": n,
        "summary": _mc_figures(report),
        "same_stream": {k: same_stream[k].tolist() for k in ("final", "drawdown", "sharpe")},
        "same_stream_summary": _mc_figures(numpy_report(same_stream, backtest_return)),
    }


def _mc_figures(report: Mapping[str, Any]) -> dict[str, float]:
    """The headline figures both engines report, flat."""
    figures = {
        f"{name}_{p}": float(report[name]["percentiles"][p])
        for name in ("final_return", "max_drawdown", "sharpe")
        for p in ("p5", "p50", "p95")
    }
    figures["final_return_std"] = float(report["final_return"]["std"])
    figures["fan_p50_last"] = float(report["fan_chart"]["p50"][-1])
    for name in ("probability_of_ruin", "value_at_risk", "conditional_value_at_risk"):
        value = report[name]
        figures[name] = float(value["loss"] if isinstance(value, dict) else value)
    backtest = report.get("backtest", report)
    figures["total_return_percentile"] = float(backtest["total_return_percentile"])
    return figures


# --- minsy -------------------------------------------------------------------------------------------------


def _synthetic_universe(n: int) -> Any:
    from packages.domain.backtest.bars import UniverseBars

    data = synthetic_ohlcv(n)
    return UniverseBars.from_arrays(
        data["index"], ["SYNTH"], data["open"], data["high"], data["low"], data["close"], data["volume"]
    )


def _minute_assumptions() -> Any:
    from packages.domain.backtest.assumptions import ExecutionAssumptions

    return ExecutionAssumptions(
        initial_cash=CASH,
        fee_bps=FEE * 1e4,
        slippage_bps=0.0,
        close_at_end=False,
        periods_per_year=PERIODS_PER_YEAR_1M,
    )


def _default_part_size(name: str) -> int:
    from packages.shared_settings.settings import StressSettings

    return int(StressSettings.model_fields[name].default)


def spx_document() -> dict[str, Any]:
    document = sma_cross_document(10, 30)
    document["metadata"]["name"] = "SMA 10/30 crossover (S&P 500 daily, real data, benchmark)"
    document["universe"] = {"market": "us_stocks", "symbols": ["SPX"]}
    document["timeframe"] = "1d"
    return document


def _spx_bars() -> Any:
    """REAL daily S&P 500 bars, 1999-2018, as bundled with ``arch`` (read with pandas)."""
    import pandas as pd

    from packages.domain.backtest.bars import UniverseBars
    from packages.infra.market_data.packaged_data import locate_package_file

    path = locate_package_file("arch", "data/sp500/sp500.csv.gz")
    if path is None:
        raise RuntimeError("arch is not installed: its S&P 500 file is the Monte Carlo workload's data")
    frame = pd.read_csv(path)
    frame["Date"] = pd.to_datetime(frame["Date"], format="%m/%d/%Y")
    frame = frame.sort_values("Date")

    def column(name: str) -> FloatArray:
        return frame[name].to_numpy(dtype=np.float64)

    return UniverseBars.from_arrays(
        frame["Date"].to_numpy(dtype="datetime64[ns]").view(np.int64),
        ["SPX"],
        column("Open"),
        column("High"),
        column("Low"),
        column("Close"),
        column("Volume"),
    )


def _measure_minsy_monte_carlo(repeats: int, scratch: Path) -> dict[str, Any]:
    from packages.domain.backtest.pipeline import Backtester
    from packages.domain.stress import methods, monte_carlo

    if (monte_carlo.SUMMARY_PERCENTILES, monte_carlo.FAN_QUANTILES) != (SUMMARY_PERCENTILES, FAN_QUANTILES):
        raise RuntimeError("the Monte Carlo report's percentiles changed: update the numpy peer")
    bars = _spx_bars()
    first_row = int(np.searchsorted(bars.index, np.datetime64(MC_FIRST_DAY, "ns").astype(np.int64)))
    context = methods.StressContext(Backtester(spx_document(), bars), first_row, bars.n_bars)
    source = methods.monte_carlo_source(context)  # the backtest, not timed
    block_length = monte_carlo.automatic_block_length(source.bar_returns)
    spec = monte_carlo.MonteCarloSpec(
        "block_bootstrap", TRIALS, SEED, block_length, RUIN_THRESHOLD, CONFIDENCE, PATH_POINTS
    )
    part_size = _default_part_size("trials_per_part")

    def job() -> dict[str, Any]:
        parts = methods.monte_carlo_plan(context, spec, part_size)
        chunks = [methods.monte_carlo_part(context, spec, part) for part in parts]
        return methods.monte_carlo_merge(context, spec, int(parts[0]["block_length"]), chunks)

    median, times, report = _timed(job, repeats)
    plan = monte_carlo.plan_trials(source, spec)
    np.savez(
        scratch / "monte_carlo_source.npz",
        bar_returns=source.bar_returns,
        block_length=block_length,
        periods_per_year=source.periods_per_year,
        sample_steps=plan.sample_steps,
        total_return=source.total_return,
    )
    if source.risk_free_rate != 0.0:
        raise RuntimeError("the numpy peer assumes no risk-free rate")
    items = report["items"]
    return {
        "median_s": median,
        "times_s": times,
        "peak_mb": _peak_rss_mb(),
        "steps": int(source.bar_returns.shape[0]),
        "block_length": block_length,
        "parts": -(-TRIALS // part_size),
        "range": [
            str(np.datetime64(int(bars.index[first_row]), "ns").astype("datetime64[D]")),
            str(np.datetime64(int(bars.index[-1]), "ns").astype("datetime64[D]")),
        ],
        "backtest_return": source.total_return,
        "summary": _mc_figures(report["summary"]),
        "trials": {
            "final": [i["final_return"] for i in items],
            "drawdown": [i["max_drawdown"] for i in items],
            "sharpe": [i["sharpe"] for i in items],
        },
    }


def _measure_minsy_sensitivity(repeats: int) -> dict[str, Any]:
    from packages.domain.backtest.pipeline import Backtester
    from packages.domain.stress import methods, sensitivity

    bars = _synthetic_universe(N_BARS)
    assumptions = _minute_assumptions()
    document = sma_cross_document(*SCAN_BASE)
    spec = sensitivity.SensitivitySpec(parameters=(FAST, SLOW), span=SCAN_SPAN, steps=SCAN_STEPS)
    part_size = _default_part_size("points_per_part")

    def job() -> dict[str, Any]:
        context = methods.StressContext(Backtester(document, bars, assumptions), 0, N_BARS)
        parts = methods.sensitivity_plan(context, spec, part_size)
        results = [methods.sensitivity_part(context, part) for part in parts]
        return methods.sensitivity_merge(context, spec, parts, results)

    median, times, report = _timed(job, repeats)
    items = report["items"]
    return {
        "median_s": median,
        "times_s": times,
        "peak_mb": _peak_rss_mb(),
        "close_sum": float(bars.close.sum()),
        "points": [
            [int(i["values"].get(FAST, SCAN_BASE[0])), int(i["values"].get(SLOW, SCAN_BASE[1]))]
            for i in items
        ],
        "invalid": sum(1 for i in items if i["invalid"]),
        "metrics": [[i["metrics"][m] for m in SCAN_METRICS] for i in items],
        "stability": {p["pointer"]: p["stability"] for p in report["summary"]["parameters"]},
    }


def _measure_minsy_walk_forward(repeats: int) -> dict[str, Any]:
    from packages.domain.backtest.pipeline import Backtester
    from packages.domain.stress import methods, optimisation, walk_forward

    bars = _synthetic_universe(N_BARS)
    assumptions = _minute_assumptions()
    step_fast, step_slow = FAST_GRID[1] - FAST_GRID[0], SLOW_GRID[1] - SLOW_GRID[0]
    search = optimisation.OptimisationSpec(
        "grid",
        (
            optimisation.Dimension(FAST, FAST_GRID[0], FAST_GRID[-1], step_fast),
            optimisation.Dimension(SLOW, SLOW_GRID[0], SLOW_GRID[-1], step_slow),
        ),
        (optimisation.Objective("sharpe"),),
        budget=len(FAST_GRID) * len(SLOW_GRID),
    )
    spec = walk_forward.WalkForwardSpec(search, folds=FOLDS)
    document = sma_cross_document()

    def job() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        context = methods.StressContext(Backtester(document, bars, assumptions), 0, N_BARS)
        folds = methods.walk_forward_plan(context, spec)
        results = [methods.walk_forward_part(context, spec, fold) for fold in folds]
        return folds, methods.walk_forward_merge(context, spec, results)

    median, times, (folds, report) = _timed(job, repeats)
    items = report["items"]
    return {
        "median_s": median,
        "times_s": times,
        "peak_mb": _peak_rss_mb(),
        "close_sum": float(bars.close.sum()),
        "folds": [[*f["in_sample"], *f["out_of_sample"]] for f in folds],
        "winners": [[int(i["winner"][FAST]), int(i["winner"][SLOW])] for i in items],
        "in_sample_sharpe": [i["in_sample_metrics"]["sharpe"] for i in items],
        "out_of_sample_sharpe": [i["out_of_sample_metrics"]["sharpe"] for i in items],
        "out_of_sample_return": [i["out_of_sample_metrics"]["total_return"] for i in items],
        "stitched_return": report["summary"]["stitched_out_of_sample"]["total_return"],
    }


# --- vectorbt (the peer) -----------------------------------------------------------------------------------


def _vectorbt_frames() -> tuple[Any, Any]:
    import pandas as pd

    data = synthetic_ohlcv(N_BARS)
    index = pd.DatetimeIndex(data["index"].astype("datetime64[ns]"))
    return pd.Series(data["close"], index=index), pd.Series(data["open"], index=index)


def _vectorbt_daily_sharpe(value: Any, index: Any) -> FloatArray:
    """minsy's Sharpe with vectorbt: returns of the equity at each UTC day's last bar (the first
    against the start cash), annualised by the days observed per year of the span."""
    import pandas as pd
    from vectorbt.returns.accessors import ReturnsAccessor

    daily = pd.DataFrame(np.asarray(value), index=index).resample("1D").last()
    span_years = (index[-1] - index[0]) / pd.Timedelta(days=365.25)
    year = pd.Timedelta(days=1) * (daily.shape[0] / span_years)
    returns = ReturnsAccessor.from_value(daily, init_value=CASH, freq="1D", year_freq=year)
    return np.asarray(returns.sharpe_ratio(), dtype=np.float64)


def _vectorbt_portfolio(close: Any, entries: Any, exits: Any, open_: Any) -> Any:
    """All-in long, fees 0.1% a side, signals read at the close and filled at the next open."""
    import vectorbt as vbt

    return vbt.Portfolio.from_signals(
        close,
        entries.shift(1, fill_value=False),
        exits.shift(1, fill_value=False),
        price=open_,
        fees=FEE,
        init_cash=CASH,
        freq="1min",
    )


def _vectorbt_sensitivity(close: Any, open_: Any) -> dict[str, Any]:
    import vectorbt as vbt

    points = scan_points()
    fast = vbt.MA.run(close, window=[f for f, _ in points], short_name="fast")
    slow = vbt.MA.run(close, window=[s for _, s in points], short_name="slow")
    portfolio = _vectorbt_portfolio(close, fast.ma_crossed_above(slow), fast.ma_crossed_below(slow), open_)
    closed = portfolio.trades.closed
    columns = {
        "total_return": portfolio.total_return(),
        "sharpe": _vectorbt_daily_sharpe(portfolio.value(), close.index),
        "max_drawdown": portfolio.max_drawdown(),
        "trades": closed.count(),
        "win_rate": closed.win_rate(),
        "profit_factor": closed.profit_factor(),
    }
    metrics = np.column_stack([np.asarray(columns[m], dtype=np.float64) for m in SCAN_METRICS])
    return {"points": [list(p) for p in points], "metrics": metrics.tolist()}


def _vectorbt_walk_forward(close: Any, open_: Any) -> dict[str, Any]:
    import pandas as pd
    import vectorbt as vbt

    pairs = grid_pairs()
    combos = len(pairs)
    fast = vbt.MA.run(close, window=[f for f, _ in pairs], short_name="fast")
    slow = vbt.MA.run(close, window=[s for _, s in pairs], short_name="slow")
    used = IN_SAMPLE_BARS + FOLDS * OUT_OF_SAMPLE_BARS
    split = {
        "n": FOLDS,
        "window_len": IN_SAMPLE_BARS + OUT_OF_SAMPLE_BARS,
        "set_lens": (OUT_OF_SAMPLE_BARS,),
        "left_to_right": False,
    }
    (entries_in, index_in), (entries_out, index_out) = (
        fast.ma_crossed_above(slow).iloc[:used].vbt.rolling_split(**split)
    )
    (exits_in, _), (exits_out, _) = fast.ma_crossed_below(slow).iloc[:used].vbt.rolling_split(**split)
    (close_in, _), (close_out, _) = close.iloc[:used].vbt.rolling_split(**split)
    (open_in, _), (open_out, _) = open_.iloc[:used].vbt.rolling_split(**split)

    def per_column(prices: Any, like: Any, repeat: int) -> Any:
        return pd.DataFrame(np.repeat(prices.to_numpy(), repeat, axis=1), columns=like.columns)

    in_sample = _vectorbt_portfolio(
        per_column(close_in, entries_in, combos),
        entries_in,
        exits_in,
        per_column(open_in, entries_in, combos),
    )
    value_in = in_sample.value().to_numpy()
    sharpe_in = np.stack(
        [
            _vectorbt_daily_sharpe(value_in[:, k * combos : (k + 1) * combos], index_in[k])
            for k in range(FOLDS)
        ]
    )
    best = np.nanargmax(sharpe_in, axis=1)
    winners = [k * combos + int(b) for k, b in enumerate(best)]
    entries_won, exits_won = entries_out.iloc[:, winners], exits_out.iloc[:, winners]
    out_of_sample = _vectorbt_portfolio(
        per_column(close_out, entries_won, 1), entries_won, exits_won, per_column(open_out, entries_won, 1)
    )
    value_out = out_of_sample.value().to_numpy()
    sharpe_out = [float(_vectorbt_daily_sharpe(value_out[:, [k]], index_out[k])[0]) for k in range(FOLDS)]
    stitched = float(np.prod(1.0 + out_of_sample.returns().to_numpy().T.ravel()) - 1.0)
    position = close.index.get_indexer
    return {
        "folds": [
            [
                int(position(index_in[k][:1])[0]),
                int(position(index_in[k][-1:])[0]) + 1,
                int(position(index_out[k][:1])[0]),
                int(position(index_out[k][-1:])[0]) + 1,
            ]
            for k in range(FOLDS)
        ],
        "winners": [list(pairs[int(b)]) for b in best],
        "in_sample_sharpe": sharpe_in[np.arange(FOLDS), best].tolist(),
        "out_of_sample_sharpe": sharpe_out,
        "out_of_sample_return": np.asarray(out_of_sample.total_return(), dtype=np.float64).tolist(),
        "stitched_return": stitched,
    }


def _measure_vectorbt(workload: str, repeats: int) -> dict[str, Any]:
    import warnings

    import vectorbt as vbt

    warnings.filterwarnings("ignore")
    close, open_ = _vectorbt_frames()
    compute = _vectorbt_sensitivity if workload == SENSITIVITY else _vectorbt_walk_forward
    # vectorbt's Rust engine is an optional wheel (vectorbt-rust); time it too when it is there.
    engines = ("numba", "rust") if importlib.util.find_spec("vectorbt_rust") else ("numba",)
    timed: dict[str, tuple[float, list[float], dict[str, Any]]] = {}
    for engine in engines:
        vbt.settings["engine"] = engine
        timed[engine] = _timed(lambda: compute(close, open_), repeats)
    best = min(timed, key=lambda engine: timed[engine][0])
    median, times, out = timed[best]
    return {
        "median_s": median,
        "times_s": times,
        "peak_mb": _peak_rss_mb(),
        "close_sum": float(close.sum()),
        "engine": best,
        "engines_s": {engine: timed[engine][0] for engine in engines},
        "version": vbt.__version__,
        **out,
    }


# --- cross-checks -----------------------------------------------------------------------------------------


def _max_relative(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    same_nan = np.isnan(x) & np.isnan(y)
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return float("inf")
    difference = np.abs(x - y) / np.maximum(np.abs(y), 1e-12)
    return float(difference[~same_nan].max(initial=0.0))


def check_monte_carlo(minsy: Mapping[str, Any], numpy_: Mapping[str, Any]) -> str:
    same = numpy_["same_stream"]
    ours = minsy["trials"]
    worst = {k: float(np.max(np.abs(np.subtract(ours[k], same[k])))) for k in ("final", "drawdown", "sharpe")}
    summary_gap = max(
        abs(minsy["summary"][k] - numpy_["same_stream_summary"][k])
        for k in minsy["summary"]
        if k in numpy_["summary"]
    )
    own, theirs = minsy["summary"], numpy_["summary"]
    # Two independent streams: their medians differ by sampling error alone (about 1.25 sd / sqrt(n)).
    median_error = 1.2533 * own["final_return_std"] / np.sqrt(TRIALS)
    apart = abs(theirs["final_return_p50"] - own["final_return_p50"]) / median_error
    ok = max(worst.values()) < 1e-9 and summary_gap < 1e-9 and apart < 4.0
    return (
        f"{'agree' if ok else 'DISAGREE'}: numpy on minsy's streams, trial by trial max |diff| final "
        f"{worst['final']:.1e}, drawdown {worst['drawdown']:.1e}, Sharpe {worst['sharpe']:.1e}, report "
        f"{summary_gap:.1e}; numpy's own stream: median final return {theirs['final_return_p50']:.4f} vs "
        f"{own['final_return_p50']:.4f} ({apart:.1f} standard errors apart), median drawdown "
        f"{theirs['max_drawdown_p50']:.4f} vs {own['max_drawdown_p50']:.4f}"
    )


def check_sensitivity(minsy: Mapping[str, Any], vectorbt: Mapping[str, Any]) -> str:
    if minsy["points"] != vectorbt["points"] or minsy["points"] != [list(p) for p in scan_points()]:
        return "DISAGREE: the engines scanned different points"
    ours, theirs = (
        np.asarray(minsy["metrics"], dtype=np.float64),
        np.asarray(vectorbt["metrics"], dtype=np.float64),
    )
    gaps = {m: _max_relative(ours[:, j], theirs[:, j]) for j, m in enumerate(SCAN_METRICS)}
    ok = all(g < 1e-9 for g in gaps.values()) and minsy["close_sum"] == vectorbt["close_sum"]
    return f"{'agree' if ok else 'DISAGREE'} on all {len(ours)} points, max relative diff " + ", ".join(
        f"{m} {g:.0e}" for m, g in gaps.items()
    )


def check_walk_forward(minsy: Mapping[str, Any], vectorbt: Mapping[str, Any]) -> str:
    windows = minsy["folds"] == vectorbt["folds"] == [list(f) for f in fold_rows()]
    winners = minsy["winners"] == vectorbt["winners"]
    gaps = {
        name: _max_relative(minsy[key], vectorbt[key])
        for name, key in (
            ("in-sample Sharpe", "in_sample_sharpe"),
            ("out-of-sample Sharpe", "out_of_sample_sharpe"),
            ("out-of-sample return", "out_of_sample_return"),
            ("stitched return", "stitched_return"),
        )
    }
    ok = windows and winners and all(g < 1e-9 for g in gaps.values())
    return (
        f"{'agree' if ok else 'DISAGREE'}: same fold windows {windows}, same winner in every fold {winners}; "
        + ", ".join(f"{name} max relative diff {g:.0e}" for name, g in gaps.items())
    )


# --- parent: subprocesses and rows ------------------------------------------------------------------------


def _child(engine: str, workload: str, repeats: int, scratch: Path) -> dict[str, Any]:
    return _json_line(
        [
            sys.executable,
            "-m",
            "bench.workloads.stress",
            "--measure",
            engine,
            "--workload",
            workload,
            "--repeats",
            str(repeats),
            "--scratch",
            str(scratch),
        ],
        REPO_ROOT,
    )


def _row(workload: str, engine: str, rows: int, out: Mapping[str, Any], notes: str) -> Row:
    median = float(out["median_s"])
    return {
        "workload": workload,
        "engine": engine,
        "rows": rows,
        "median_s": median,
        "rows_per_s": rows / median,
        "peak_mb": float(out["peak_mb"]),
        "notes": f"{notes}; {len(out['times_s'])} timed runs",
    }


def _monte_carlo_rows(repeats: int, scratch: Path) -> list[Row]:
    minsy = _child("minsy", MONTE_CARLO, repeats * 5, scratch)
    numpy_ = _child("numpy", MONTE_CARLO, repeats * 5, scratch)
    verdict = check_monte_carlo(minsy, numpy_)
    print(f"  {MONTE_CARLO} cross-check: {verdict}", file=sys.stderr, flush=True)
    rows = TRIALS * int(minsy["steps"])
    data = (
        f"REAL S&P 500 daily {minsy['range'][0]}..{minsy['range'][1]} ({minsy['steps']} bars, SMA 10/30 "
        f"backtest return {minsy['backtest_return']:.4f}); block bootstrap, {TRIALS} trials, seed {SEED}, "
        f"block length fixed at {minsy['block_length']} (Politis-White, chosen once, untimed)"
    )
    return [
        _row(
            MONTE_CARLO,
            "minsy",
            rows,
            minsy,
            f"{data}; methods plan/part/merge, {minsy['parts']} parts in one process, serial numba kernel; "
            f"{verdict}",
        ),
        _row(
            MONTE_CARLO,
            "numpy",
            rows,
            numpy_,
            f"{data}; vectorised numpy, default_rng block starts, {NUMPY_CHUNK_TRIALS}-trial chunks; vectorbt: "
            "no bootstrap or Monte Carlo resampler, so no row; "
            f"{verdict}",
        ),
    ]


def _scan_rows(workload: str, repeats: int, scratch: Path) -> list[Row]:
    minsy = _child("minsy", workload, repeats * 3, scratch)
    # vectorbt takes seconds per run: three timed runs on each of its engines are enough for a median.
    vectorbt = _child("vectorbt", workload, min(repeats, 3), scratch)
    sensitivity = workload == SENSITIVITY
    verdict = (check_sensitivity if sensitivity else check_walk_forward)(minsy, vectorbt)
    print(f"  {workload} cross-check: {verdict}", file=sys.stderr, flush=True)
    if sensitivity:
        rows = len(scan_points()) * N_BARS
        what = (
            f"SYNTHETIC 1m bars, close_sum {minsy['close_sum']:.6f}; {len(scan_points())} points (SMA 25/100, "
            f"±{SCAN_SPAN:.0%} in {SCAN_STEPS} steps a side)"
        )
        ours = "methods plan/part/merge, full summary metrics per point, sweep threads one per CPU"
    else:
        combos = len(grid_pairs())
        rows = FOLDS * (combos * IN_SAMPLE_BARS + OUT_OF_SAMPLE_BARS)
        what = (
            f"SYNTHETIC 1m bars, close_sum {minsy['close_sum']:.6f}; {FOLDS} rolling folds "
            f"{IN_SAMPLE_BARS}/{OUT_OF_SAMPLE_BARS} bars, {combos}-combination grid by Sharpe"
        )
        ours = "methods plan/part/merge, fresh Backtester per run, sweep threads one per CPU"
    engines = ", ".join(f"{k} {v:.2f}s" for k, v in vectorbt["engines_s"].items())
    theirs = (
        "MA.run + crossed + from_signals over 100 columns + six metrics"
        if sensitivity
        else "rolling_split, from_signals over 1,000 in-sample and 10 out-of-sample columns"
    )
    return [
        _row(workload, "minsy", rows, minsy, f"{what}; {ours}; {verdict}"),
        _row(
            workload,
            "vectorbt",
            rows,
            vectorbt,
            f"{what}; vectorbt {vectorbt['version']} faster engine {vectorbt['engine']} ({engines}): {theirs}; "
            f"{verdict}",
        ),
    ]


def run(repeats: int = 5) -> list[Row]:
    """The three stress workloads, each engine in its own subprocess, with their cross-checks."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="minsy-bench-stress-") as directory:
        scratch = Path(directory)
        print(f"  {MONTE_CARLO}: minsy, numpy", file=sys.stderr, flush=True)
        rows.extend(_monte_carlo_rows(repeats, scratch))
        for workload in (SENSITIVITY, WALK_FORWARD):
            print(f"  {workload}: minsy, vectorbt", file=sys.stderr, flush=True)
            rows.extend(_scan_rows(workload, repeats, scratch))
    return rows


def _measure(engine: str, workload: str, repeats: int, scratch: Path) -> dict[str, Any]:
    if engine not in ENGINES[workload]:
        raise ValueError(f"{workload} has no engine {engine}; it has {ENGINES[workload]}")
    if engine == "vectorbt":
        return _measure_vectorbt(workload, repeats)
    if workload == MONTE_CARLO:
        measure = _measure_minsy_monte_carlo if engine == "minsy" else _measure_numpy_monte_carlo
        return measure(repeats, scratch)
    return (_measure_minsy_sensitivity if workload == SENSITIVITY else _measure_minsy_walk_forward)(repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="measure one engine on one stress workload (one JSON line)")
    parser.add_argument("--measure", choices=["minsy", "numpy", "vectorbt"], required=True)
    parser.add_argument("--workload", choices=list(ENGINES), required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scratch", type=Path, required=True, help="folder the Monte Carlo engines share")
    args = parser.parse_args(argv)
    print(json.dumps(_measure(args.measure, args.workload, args.repeats, args.scratch)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
