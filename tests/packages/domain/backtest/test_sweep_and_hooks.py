"""Parameter sweeps in one compiled call, and the progress / cancellation hooks of long runs."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import BacktestCancelled, run_sweep, simulate
from packages.domain.backtest.packing import PlanError
from packages.domain.strategy.plan import ExitPlan, SizingPlan, StrategyPlan
from tests.packages.domain.backtest.kit import plan, side


def sma_plan(bars: UniverseBars, fast: int, slow: int, stop: float = 0.05) -> StrategyPlan:
    close = np.ascontiguousarray(bars.close[:, 0])
    f, s = talib.SMA(close, fast), talib.SMA(close, slow)
    up = np.zeros(close.shape[0], dtype=bool)
    down = np.zeros(close.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):
        up[1:] = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
        down[1:] = (f[:-1] > s[:-1]) & (f[1:] < s[1:])
    exits = [ExitPlan("down", "signal", signal=down[:, None]), ExitPlan("stop", "stop_loss", fraction=stop)]
    return plan(bars, [side(up[:, None], exits, sizing=SizingPlan("percent_equity", 1.0))], warmup=slow)


def test_sweep_matches_individual_runs(aapl: UniverseBars) -> None:
    grid = [(f, s, stop) for f in (5, 10, 20) for s in (30, 60) for stop in (0.03, 0.08)]
    plans = [sma_plan(aapl, f, s, stop) for f, s, stop in grid]
    assumptions = ExecutionAssumptions(spread_bps=2)
    sweep = run_sweep(plans, aapl, assumptions, plans_per_call=5)
    assert sweep.values.shape[0] == len(grid)
    for k, strategy_plan in enumerate(plans):
        single = simulate(strategy_plan, aapl, assumptions)
        for name in (
            "final_equity",
            "sharpe",
            "max_drawdown",
            "trades",
            "win_rate",
            "fees_paid",
            "sqn",
            "var_95",
        ):
            assert sweep.metric(name)[k] == pytest.approx(single.metrics[name], rel=1e-12, nan_ok=True), name
    best = sweep.best("sharpe")
    assert sweep.metric("sharpe")[best] == np.nanmax(sweep.metric("sharpe"))
    assert len(sweep.rows()) == len(grid)


def test_sweep_rejects_plans_of_different_structure(aapl: UniverseBars) -> None:
    other = sma_plan(aapl, 5, 30)
    stripped = plan(aapl, [side(other.sides[0].entry)])
    with pytest.raises(PlanError):
        run_sweep([other, stripped], aapl)


def test_progress_is_reported_and_reaches_the_end(
    aapl: UniverseBars, monkeypatch: pytest.MonkeyPatch
) -> None:
    from packages.domain.backtest import engine

    monkeypatch.setattr(engine, "_CHUNK_CELLS", 500)
    seen: list[tuple[float, str]] = []
    simulate(sma_plan(aapl, 10, 30), aapl, progress=lambda fraction, stage: seen.append((fraction, stage)))
    fractions = [f for f, stage in seen if stage == "simulating"]
    assert len(fractions) >= aapl.n_bars // 500
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][1] == "metrics"


def test_cancellation_stops_a_run(aapl: UniverseBars, monkeypatch: pytest.MonkeyPatch) -> None:
    from packages.domain.backtest import engine

    monkeypatch.setattr(engine, "_CHUNK_CELLS", 500)
    checks = iter([False, False, True])
    with pytest.raises(BacktestCancelled):
        simulate(sma_plan(aapl, 10, 30), aapl, should_cancel=lambda: next(checks))
    with pytest.raises(BacktestCancelled):
        run_sweep([sma_plan(aapl, 10, 30)] * 4, aapl, should_cancel=lambda: True, plans_per_call=2)


def test_chunked_run_equals_one_pass(aapl: UniverseBars, monkeypatch: pytest.MonkeyPatch) -> None:
    from packages.domain.backtest import engine

    strategy_plan = sma_plan(aapl, 10, 30)
    whole = simulate(strategy_plan, aapl)
    monkeypatch.setattr(engine, "_CHUNK_CELLS", 97)
    chunked = simulate(strategy_plan, aapl)
    assert chunked.to_json_bytes() == whole.to_json_bytes()


def test_core_sweep_skips_the_metrics_but_not_the_simulation(aapl: UniverseBars) -> None:
    plans = [sma_plan(aapl, f, 40) for f in (5, 10, 20)]
    full = run_sweep(plans, aapl)
    core = run_sweep(plans, aapl, summarise=False)
    np.testing.assert_array_equal(core.metric("final_equity"), full.metric("final_equity"))
    np.testing.assert_array_equal(core.metric("trades"), full.metric("trades"))
    np.testing.assert_array_equal(core.metric("fees_paid"), full.metric("fees_paid"))
    assert np.isnan(core.metric("sharpe")).all()


def test_sweep_results_do_not_depend_on_threads(aapl: UniverseBars) -> None:
    plans = [sma_plan(aapl, f, s) for f in (4, 8, 12) for s in (30, 50)]
    one = run_sweep(plans, aapl, workers=1, plans_per_call=1)
    two = run_sweep(plans, aapl, workers=2, plans_per_call=2)
    np.testing.assert_array_equal(one.values, two.values)
