"""Backtest workloads beside the peer engines of ``../shared/bench/peers`` (vectorbt, backtesting.py,
the hand-written numba reference), all in one invocation and on identical SYNTHETIC data.

Workloads (data: the peers' seeded geometric random walk of one-minute bars, ``SYNTH`` symbol,
regenerated here draw for draw; every row's notes compare its close sum with the peers'):

- ``sma_cross_100k`` / ``sma_cross_1m``: SMA(10)/SMA(30) crossover, long only, all-in on the cross up,
  flat on the cross down, fills at the next bar's open, 0.1 % commission per side, start cash 1e30.
- ``sweep_100_100k``: the same strategy over a 10 x 10 grid (fast 2..20, slow 25..250) on 100,000 bars.

Engines:

- ``minsy``: the full user path through the backtest pipeline: compile the strategy document, build
  the plan (TA-Lib indicators, vectorised conditions), simulate and compute the whole metric set, hashes
  and chart series (``pipeline.Backtester(document, bars).run()``); the sweep compiles once and builds
  100 plans over a shared series cache, then runs them through the batch kernel with each run's full
  summary metrics (``pipeline.Backtester(document, bars).sweep(sets)``).
- ``minsy-core``: the simulation core alone on the same signals (TA-Lib SMAs and crosses, then the
  numba kernel; no metrics), comparable with the reference's "SMAs + loop".
- ``reference`` / ``vectorbt`` / ``backtesting.py``: the peer scripts, run as subprocesses. vectorbt is
  timed as its pipeline (MA + crossed signals) plus ``Portfolio.from_signals(...).stats()`` on whichever of
  its numba and Rust engines is faster; backtesting.py's ``Backtest.run`` includes its statistics.

Every engine runs in its own subprocess so ``peak_mb`` (``ru_maxrss``) is that engine's alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS = REPO_ROOT.parent / "shared" / "bench" / "peers"
WORKLOADS = {"sma_cross_100k": 100_000, "sma_cross_1m": 1_000_000, "sweep_100_100k": 100_000}
FAST_GRID = tuple(range(2, 21, 2))
SLOW_GRID = tuple(range(25, 251, 25))
FEE = 0.001
CASH = 1e30
SUBPROCESS_TIMEOUT_S = 1800
Row = dict[str, Any]


def synthetic_ohlcv(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    """SYNTHETIC one-minute bars from 2020-01-01: the peers' random walk, draw for draw.

    Per bar: a body return r ~ N(0, 1e-3) and a gap g ~ N(0, 2e-4) (none on the first bar); the close
    compounds g + r from 100, the open sits r below the close, wicks stretch the body by |N(0, 5e-4)|.
    """
    rng = np.random.default_rng(seed)
    body = rng.normal(0.0, 1e-3, n)
    gap = rng.normal(0.0, 2e-4, n)
    gap[0] = 0.0
    log_close = np.log(100.0) + np.cumsum(gap + body)
    close = np.exp(log_close)
    open_ = np.exp(log_close - body)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 5e-4, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 5e-4, n)))
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    index = np.datetime64("2020-01-01T00:00", "ns").astype(np.int64) + 60_000_000_000 * np.arange(
        n, dtype=np.int64
    )
    return {"index": index, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


def sma_cross_document(fast: int = 10, slow: int = 30) -> dict[str, Any]:
    return {
        "dsl_version": "1.0.0",
        "metadata": {"name": f"SMA {fast}/{slow} crossover (synthetic benchmark)"},
        "universe": {"market": "crypto", "symbols": ["SYNTH"]},
        "timeframe": "1m",
        "factors": [
            {"id": "sma_fast", "indicator": "sma", "params": {"period": fast}},
            {"id": "sma_slow", "indicator": "sma", "params": {"period": slow}},
        ],
        "trade": {
            "long": {
                "entry": {
                    "condition": {
                        "op": "cross_above",
                        "left": {"factor": "sma_fast"},
                        "right": {"factor": "sma_slow"},
                    }
                },
                "exits": [
                    {
                        "name": "cross_below",
                        "type": "signal",
                        "condition": {
                            "op": "cross_below",
                            "left": {"factor": "sma_fast"},
                            "right": {"factor": "sma_slow"},
                        },
                    }
                ],
                "sizing": {"mode": "percent_equity", "percent": 100},
            }
        },
    }


# --- our engine, measured inside its own subprocess -------------------------------------------------------


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    out = fn()  # warm-up: numba cache load, TA-Lib and page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, out


def _measure(engine: str, workload: str, repeats: int) -> dict[str, Any]:
    import talib

    from packages.domain.backtest.assumptions import ExecutionAssumptions
    from packages.domain.backtest.bars import UniverseBars
    from packages.domain.backtest.engine import run_sweep, simulate_records
    from packages.domain.backtest.pipeline import Backtester
    from packages.domain.strategy.plan import (
        ExitPlan,
        OrderPlan,
        PortfolioPlan,
        SidePlan,
        SizingPlan,
        StrategyPlan,
    )

    n = WORKLOADS[workload]
    data = synthetic_ohlcv(n)
    bars = UniverseBars.from_arrays(
        data["index"], ["SYNTH"], data["open"], data["high"], data["low"], data["close"], data["volume"]
    )
    assumptions = ExecutionAssumptions(
        initial_cash=CASH, fee_bps=FEE * 1e4, slippage_bps=0.0, close_at_end=False, periods_per_year=525_960.0
    )
    close = np.ascontiguousarray(data["close"])

    def signal_plan(fast_sma: np.ndarray, slow_sma: np.ndarray) -> StrategyPlan:
        # cross above: fast < slow on the previous bar and fast > slow now (NaN never crosses)
        with np.errstate(invalid="ignore"):
            above = fast_sma > slow_sma
            below = fast_sma < slow_sma
        up = np.zeros((n, 1), dtype=bool)
        down = np.zeros((n, 1), dtype=bool)
        np.logical_and(below[:-1], above[1:], out=up[1:, 0])
        np.logical_and(above[:-1], below[1:], out=down[1:, 0])
        side = SidePlan(
            "long",
            up,
            OrderPlan(),
            (ExitPlan("cross_below", "signal", signal=down),),
            SizingPlan("percent_equity", 1.0),
        )
        return StrategyPlan(bars.index, ("SYNTH",), (side,), PortfolioPlan(1), 0)

    sweep = workload.startswith("sweep")
    grid = [(f, s) for f in FAST_GRID for s in SLOW_GRID]
    if engine == "minsy" and not sweep:
        document = sma_cross_document()
        median, times, run = _timed(lambda: Backtester(document, bars, assumptions).run(), repeats)
        metrics = run.result.metrics
        check = {
            "final_ratio": metrics["final_equity"] / CASH,
            "closed_trades": metrics["trades"],
            "metrics": len(metrics),
        }
    elif engine == "minsy" and sweep:
        document = sma_cross_document()
        sets = [{"/factors/0/params/period": f, "/factors/1/params/period": s} for f, s in grid]
        median, times, result = _timed(lambda: Backtester(document, bars, assumptions).sweep(sets), repeats)
        finals = result.metric("final_equity") / CASH
        check = {
            "best_final_ratio": float(finals.max()),
            "sum_trades": int(result.metric("trades").sum()),
            "metrics_per_run": len(result.metric_names),
        }
    elif engine == "minsy-core" and not sweep:

        def core() -> Any:
            return simulate_records(
                signal_plan(talib.SMA(close, 10), talib.SMA(close, 30)), bars, assumptions
            )

        median, times, raw = _timed(core, repeats)
        check = {"final_ratio": float(raw.equity[-1]) / CASH, "trades_incl_open": int(raw.trades.shape[0])}
    else:

        def core_sweep() -> Any:
            fast = {w: talib.SMA(close, w) for w in FAST_GRID}
            slow = {w: talib.SMA(close, w) for w in SLOW_GRID}
            plans = [signal_plan(fast[f], slow[s]) for f, s in grid]
            return run_sweep(plans, bars, assumptions, summarise=False)

        median, times, result = _timed(core_sweep, repeats)
        check = {"best_final_ratio": float((result.metric("final_equity") / CASH).max())}
    return {
        "engine": engine,
        "workload": workload,
        "median_s": median,
        "times_s": times,
        "close_sum": float(close.sum()),
        "check": check,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


# --- subprocess plumbing -----------------------------------------------------------------------------------


def _json_line(args: list[str], cwd: Path) -> dict[str, Any]:
    completed = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(args)} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _row(workload: str, engine: str, rows: int, median_s: float, peak_mb: float, notes: str) -> Row:
    return {
        "workload": workload,
        "engine": engine,
        "rows": rows,
        "median_s": median_s,
        "rows_per_s": rows / median_s,
        "peak_mb": peak_mb,
        "notes": notes,
    }


def _ours(engine: str, workload: str, repeats: int) -> Row:
    # Our runs take milliseconds: three times the peers' repeats steadies the median on a shared machine.
    repeats *= 3
    out = _json_line(
        [
            sys.executable,
            "-m",
            "bench.workloads.backtest",
            "--measure",
            engine,
            "--workload",
            workload,
            "--repeats",
            str(repeats),
        ],
        REPO_ROOT,
    )
    n = WORKLOADS[workload]
    rows = n * len(FAST_GRID) * len(SLOW_GRID) if workload.startswith("sweep") else n
    notes = f"{repeats} timed runs; close_sum {out['close_sum']:.6f}; " + ", ".join(
        f"{k} {v:.10g}" if isinstance(v, float) else f"{k} {v}" for k, v in out["check"].items()
    )
    return _row(workload, engine, rows, out["median_s"], out["peak_mb"], notes)


def _peer(script: str, n: int, args: list[str]) -> dict[str, Any]:
    return _json_line([sys.executable, str(PEERS / script), "--n", str(n), *args], PEERS)


def _peers(workload: str, repeats: int) -> list[Row]:
    n = WORKLOADS[workload]
    rows: list[Row] = []
    if workload.startswith("sweep"):
        evaluations = n * len(FAST_GRID) * len(SLOW_GRID)
        ref = _peer("bench_reference.py", n, ["--workload", "w2", "--repeats", str(repeats)])
        serial = ref["sweep_next_open_serial"]
        rows.append(
            _row(
                workload,
                "reference",
                evaluations,
                serial["median_s"],
                ref["maxrss_mb"]["peak"],
                f"numba serial, SMAs for 20 windows + 100 sims; best_final_ratio {serial['best_final_equity'] / CASH:.10g}",
            )
        )
        vbt = _peer("bench_vectorbt.py", n, ["--workload", "w2", "--repeats", str(repeats)])
        timed = {
            eng: vbt[eng]["sweep"]["median_s"] for eng in ("numba", "rust") if "sweep" in vbt.get(eng, {})
        }
        best = min(timed, key=timed.__getitem__)
        rows.append(
            _row(
                workload,
                "vectorbt",
                evaluations,
                timed[best],
                vbt["maxrss_mb"]["peak"],
                f"faster engine {best} ("
                + ", ".join(f"{k} {v:.3f}s" for k, v in timed.items())
                + "); MA + crossed + from_signals over 100 columns, final_value only",
            )
        )
        return rows
    ref = _peer("bench_reference.py", n, ["--workload", "w1", "--repeats", str(repeats)])
    fill = ref["fill_next_open"]
    rows.append(
        _row(
            workload,
            "reference",
            n,
            fill["median_s"],
            ref["maxrss_mb"]["peak"],
            f"cumsum SMAs + numba loop, next open; +maxDD/Sharpe pass {fill['median_s_with_basic_stats']:.4f}s; final_ratio {fill['final_equity'] / CASH:.10g}; close_sum {ref['close_sum']:.6f}",
        )
    )
    vbt = _peer("bench_vectorbt.py", n, ["--workload", "w1", "--repeats", str(repeats)])
    timed = {
        eng: vbt[eng]["signals_median_s"] + vbt[eng]["sim_plus_stats"]["median_s"]
        for eng in ("numba", "rust")
        if "sim_plus_stats" in vbt.get(eng, {})
    }
    best = min(timed, key=timed.__getitem__)
    rows.append(
        _row(
            workload,
            "vectorbt",
            n,
            timed[best],
            vbt["maxrss_mb"]["peak"],
            f"faster engine {best}: MA+crossed {vbt[best]['signals_median_s']:.4f}s + from_signals+stats() {vbt[best]['sim_plus_stats']['median_s']:.4f}s; pipeline without stats {vbt[best]['full']['median_s']:.4f}s",
        )
    )
    btpy_repeats = 1 if n >= 1_000_000 else repeats
    btpy = _peer("bench_backtestingpy.py", n, ["--workload", "w1", "--repeats", str(btpy_repeats)])
    rows.append(
        _row(
            workload,
            "backtesting.py",
            n,
            btpy["median_s"],
            btpy["maxrss_mb"]["peak"],
            f"Backtest.run incl. stats, {btpy_repeats} timed run(s); final_ratio {btpy['final_ratio']:.10g}",
        )
    )
    return rows


def run(repeats: int = 5) -> list[Row]:
    """All three workloads: our full path and core, then the peers, each in its own subprocess."""
    rows: list[Row] = []
    for workload in WORKLOADS:
        for engine in ("minsy", "minsy-core"):
            print(f"  {workload}: {engine}", file=sys.stderr, flush=True)
            rows.append(_ours(engine, workload, repeats))
        print(f"  {workload}: peers", file=sys.stderr, flush=True)
        rows.extend(_peers(workload, repeats))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="measure one of our engines on one workload (one JSON line)")
    parser.add_argument("--measure", choices=["minsy", "minsy-core"], required=True)
    parser.add_argument("--workload", choices=list(WORKLOADS), required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(_measure(args.measure, args.workload, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
