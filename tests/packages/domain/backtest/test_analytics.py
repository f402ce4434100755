"""Analysis views, chart downsampling and trade snapshots, checked against direct computations."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from packages.domain.backtest._kernel import minmax_downsample
from packages.domain.backtest.analytics import (
    VIEWS,
    analysis_view,
    exit_reason_breakdown,
    holding_period_bins,
    long_short_breakdown,
    monthly_returns,
    per_symbol_breakdown,
    pnl_by_entry_weekday,
    rolling_metrics,
    underwater_curve,
)
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.result import BacktestResult
from packages.domain.backtest.snapshots import trade_snapshot
from packages.domain.strategy.plan import ExitPlan, SizingPlan, StrategyPlan
from tests.packages.domain.backtest.kit import plan, side, stock_bars


@pytest.fixture(scope="module")
def long_short(stocks) -> tuple[UniverseBars, StrategyPlan, BacktestResult]:
    bars = stock_bars(stocks, ["MSFT", "IBM"])
    close = bars.close
    fast = pd.DataFrame(close).rolling(10).mean().to_numpy()
    slow = pd.DataFrame(close).rolling(40).mean().to_numpy()
    above = fast > slow
    up = np.zeros_like(above)
    down = np.zeros_like(above)
    up[1:] = above[1:] & ~above[:-1]
    down[1:] = ~above[1:] & above[:-1]
    sides = [
        side(
            up,
            [ExitPlan("down", "signal", signal=down), ExitPlan("stop", "stop_loss", fraction=0.07)],
            sizing=SizingPlan("percent_equity", 0.4),
        ),
        side(
            down,
            [ExitPlan("up", "signal", signal=up), ExitPlan("hold", "time_exit", bars=30)],
            direction="short",
            sizing=SizingPlan("percent_equity", 0.4),
        ),
    ]
    strategy_plan = plan(
        bars,
        sides,
        max_open=2,
        warmup=40,
        factors={"fast": fast, "slow": slow},
        leaves={"/entry/fast_above_slow": above, "/exit/fast_below_slow": ~above},
    )
    return bars, strategy_plan, simulate(strategy_plan, bars)


def test_monthly_returns_compound_to_the_total(long_short) -> None:
    _, _, result = long_short
    table = monthly_returns(result)
    growth = np.prod([1 + row["return"] for row in table["months"]])
    assert growth - 1 == pytest.approx(result.metrics["total_return"], rel=1e-9)
    years = np.prod([1 + row["return"] for row in table["years"]])
    assert years == pytest.approx(growth, rel=1e-9)
    # Each month's return is month-end equity over the previous month-end's.
    frame = pd.Series(result.equity, index=pd.to_datetime(result.index)).resample("ME").last().dropna()
    expected = frame / frame.shift(1, fill_value=result.assumptions.initial_cash) - 1
    np.testing.assert_allclose([row["return"] for row in table["months"]], expected.to_numpy(), rtol=1e-12)


def test_breakdowns_partition_the_trades(long_short) -> None:
    _, _, result = long_short
    trades = result.metrics["trades"]
    pnl = sum(result.trade_columns()["pnl"])
    for rows in (
        exit_reason_breakdown(result),
        long_short_breakdown(result),
        per_symbol_breakdown(result),
        pnl_by_entry_weekday(result),
        holding_period_bins(result),
        analysis_view(result, "pnl_by_entry_hour"),
    ):
        assert sum(r["trades"] for r in rows) == trades
        assert sum(r["pnl"] for r in rows) == pytest.approx(pnl, rel=1e-9)
    reasons = {r["reason"]: r["trades"] for r in exit_reason_breakdown(result)}
    assert {"down", "up", "stop", "hold"} <= set(reasons)
    directions = {r["direction"]: r["trades"] for r in long_short_breakdown(result)}
    assert directions == {"long": result.metrics["long_trades"], "short": result.metrics["short_trades"]}
    # Daily stock bars: no weekend entries.
    weekdays = {r["weekday"]: r["trades"] for r in pnl_by_entry_weekday(result)}
    assert weekdays["saturday"] == weekdays["sunday"] == 0


def test_underwater_curve_keeps_the_worst_point(long_short) -> None:
    _, _, result = long_short
    view = underwater_curve(result, max_points=200)
    assert len(view["time"]) <= 200
    assert min(view["drawdown"]) == pytest.approx(result.metrics["max_drawdown"])
    worst = view["worst_episodes"][0]
    assert worst["depth"] == pytest.approx(result.metrics["max_drawdown"])
    assert all(a["depth"] <= b["depth"] for a, b in itertools.pairwise(view["worst_episodes"]))


def test_rolling_metrics_match_pandas(long_short) -> None:
    _, _, result = long_short
    view = rolling_metrics(result, window=63, max_points=10_000)
    returns = (
        pd.Series(result.equity).pct_change().fillna(result.equity[0] / result.assumptions.initial_cash - 1)
    )
    expected_vol = returns.rolling(63).std().dropna() * np.sqrt(result.periods_per_year)
    np.testing.assert_allclose(view["volatility"], expected_vol.to_numpy(), rtol=1e-6)


def test_every_view_is_reachable_by_name(long_short) -> None:
    _, _, result = long_short
    for name in VIEWS:
        assert analysis_view(result, name) is not None
    with pytest.raises(KeyError):
        analysis_view(result, "nope")


def test_downsampling_keeps_extremes_and_ends() -> None:
    rng = np.random.default_rng(7)
    values = np.cumsum(rng.normal(size=100_000))  # synthetic series
    keep = minmax_downsample(values, 500)
    assert len(keep) <= 500
    assert keep[0] == 0 and keep[-1] == values.shape[0] - 1
    assert np.all(np.diff(keep) > 0)
    assert values[keep].max() == values.max() and values[keep].min() == values.min()
    short = np.arange(10.0)
    assert list(minmax_downsample(short, 500)) == list(range(10))


def test_trade_snapshot_shows_bars_factors_and_leaves(long_short) -> None:
    bars, strategy_plan, result = long_short
    cols = result.trade_columns()
    k = int(np.flatnonzero(cols["exit_reason"] == "down")[0])
    snapshot = trade_snapshot(result, strategy_plan, bars, k, bars_before=5, bars_after=3)
    column = bars.symbols.index(snapshot["symbol"])
    first = snapshot["window"]["first_bar"]
    assert first == cols["signal_bar"][k] - 5
    assert len(snapshot["window"]["close"]) == cols["exit_bar"][k] + 3 - first + 1
    assert snapshot["window"]["close"][0] == bars.close[first, column]
    assert snapshot["factors"]["fast"][5] == pytest.approx(strategy_plan.factors["fast"][first + 5, column])
    entry_leaves = {leaf["leaf"]: leaf["value"] for leaf in snapshot["leaves_at_entry"]}
    exit_leaves = {leaf["leaf"]: leaf["value"] for leaf in snapshot["leaves_at_exit"]}
    # Entered on a cross above, left on the cross back below.
    assert entry_leaves == {"/entry/fast_above_slow": True, "/exit/fast_below_slow": False}
    assert exit_leaves == {"/entry/fast_above_slow": False, "/exit/fast_below_slow": True}
    assert snapshot["exit"]["signal_bar"] == snapshot["exit"]["bar"] - 1
    with pytest.raises(IndexError):
        trade_snapshot(result, strategy_plan, bars, result.n_trades)
