"""Golden statistics on real daily data (bokeh-sampledata AAPL/MSFT/IBM, 2000-2013, unadjusted).

Two layers: key numbers are recomputed here independently (a plain-Python simulation of the same
rules, numpy formulas for the statistics), and the full metric dictionary is compared with a stored
golden file that was generated once and reviewed by hand (``golden/*.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import talib

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.result import BacktestResult
from packages.domain.strategy.plan import ExitPlan, SizingPlan
from tests.packages.domain.backtest.kit import plan, side, stock_bars

GOLDEN = Path(__file__).parent / "golden"
FEE = 0.001
SLIP = 0.0005
ASSUMPTIONS = ExecutionAssumptions(fee_bps=10, slippage_bps=5)


def crosses(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    f = talib.SMA(close, fast)
    s = talib.SMA(close, slow)
    up = np.zeros(close.shape[0], dtype=bool)
    down = np.zeros(close.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):
        up[1:] = (f[:-1] < s[:-1]) & (f[1:] > s[1:])
        down[1:] = (f[:-1] > s[:-1]) & (f[1:] < s[1:])
    return up, down


def sma_cross_result(bars: UniverseBars) -> BacktestResult:
    up, down = crosses(np.ascontiguousarray(bars.close[:, 0]), 10, 30)
    sides = [
        side(
            up[:, None],
            [ExitPlan("cross_down", "signal", signal=down[:, None])],
            sizing=SizingPlan("percent_equity", 1.0),
        )
    ]
    return simulate(plan(bars, sides, warmup=30), bars, ASSUMPTIONS)


def python_sma_cross(bars: UniverseBars) -> tuple[np.ndarray, list[tuple[int, float, int, float]]]:
    """The same rules written as a plain loop: signal at a close, all-in fill at the next open."""
    open_, close = bars.open[:, 0], bars.close[:, 0]
    up, down = crosses(np.ascontiguousarray(close), 10, 30)
    cash, units, pending = 100_000.0, 0.0, 0
    equity = np.empty(bars.n_bars)
    trades: list[tuple[int, float, int, float]] = []
    entry: tuple[int, float] = (0, 0.0)
    for i in range(bars.n_bars):
        if pending == 1:
            price = open_[i] * (1 + SLIP)
            units = cash / (price * (1 + FEE))
            cash -= units * price + units * price * FEE
            entry = (i, price)
        elif pending == -1:
            price = open_[i] * (1 - SLIP)
            cash += units * price - units * price * FEE
            trades.append((entry[0], entry[1], i, price))
            units = 0.0
        pending = 0
        if i >= 30 and units == 0 and up[i]:
            pending = 1
        elif units > 0 and down[i]:
            pending = -1
        equity[i] = cash + units * close[i]
    if units > 0:  # closed at the last close (close_at_end)
        price = close[-1] * (1 - SLIP)
        cash += units * price - units * price * FEE
        trades.append((entry[0], entry[1], bars.n_bars - 1, price))
        equity[-1] = cash
    return equity, trades


def test_sma_cross_matches_an_independent_loop(aapl: UniverseBars) -> None:
    result = sma_cross_result(aapl)
    equity, trades = python_sma_cross(aapl)
    cols = result.trade_columns()
    got = list(zip(cols["entry_bar"], cols["entry_price"], cols["exit_bar"], cols["exit_price"], strict=True))
    assert len(got) == len(trades) > 20
    for (eb, ep, xb, xp), (reb, rep, rxb, rxp) in zip(got, trades, strict=True):
        assert (eb, xb) == (reb, rxb)
        assert ep == pytest.approx(rep, rel=1e-12)
        assert xp == pytest.approx(rxp, rel=1e-12)
    np.testing.assert_allclose(result.equity, equity, rtol=1e-10)


def independent_metrics(result: BacktestResult, bars: UniverseBars) -> dict[str, float]:
    """Key statistics from the equity curve and trade list with plain numpy (daily bars: one period per bar)."""
    equity = result.equity
    n = equity.shape[0]
    years_span = (bars.index[-1] - bars.index[0]) / (365.25 * 86_400e9)
    per_year = (n - 1) / years_span
    returns = np.diff(np.concatenate([[100_000.0], equity])) / np.concatenate([[100_000.0], equity[:-1]])
    peaks = np.maximum.accumulate(np.concatenate([[100_000.0], equity]))[1:]
    drawdown = equity / peaks - 1
    downside = np.minimum(returns, 0.0)
    cols = result.trade_columns()
    closed = ~cols["is_open"]
    pnl = cols["pnl"][closed]
    trade_returns = (cols["pnl"] / (cols["quantity"] * cols["entry_price"]))[closed]
    wins, losses = pnl[pnl > 0], pnl[pnl <= 0]
    win_rate = wins.size / pnl.size
    payoff = wins.mean() / -losses.mean()
    instant = {"open": 0.0, "intrabar": 0.5, "close": 1.0}
    holding = np.array(
        [
            x + instant[xa] - (e + instant[ea])
            for e, ea, x, xa in zip(
                cols["entry_bar"], cols["entry_at"], cols["exit_bar"], cols["exit_at"], strict=True
            )
        ]
    )[closed]
    close = bars.close[:, 0]
    bench = close / close[0]
    bench_returns = np.diff(np.concatenate([[1.0], bench])) / np.concatenate([[1.0], bench[:-1]])
    beta = np.cov(returns, bench_returns, ddof=1)[0, 1] / np.var(bench_returns, ddof=1)
    q05, q95 = np.percentile(returns, [5, 95])
    underwater = drawdown < 0
    longest = 0
    peak_bar = -1
    for i in range(n):
        if not underwater[i]:
            if i > 0 and underwater[i - 1]:
                longest = max(longest, i - peak_bar)
            peak_bar = i
    if underwater[-1]:
        longest = max(longest, n - 1 - peak_bar)
    return {
        "total_return": equity[-1] / 100_000.0 - 1,
        "annual_return": (equity[-1] / 100_000.0) ** (per_year / n) - 1,
        "annual_volatility": returns.std(ddof=1) * np.sqrt(per_year),
        "sharpe": returns.mean() / returns.std(ddof=1) * np.sqrt(per_year),
        "sortino": returns.mean() / np.sqrt(np.mean(downside**2)) * np.sqrt(per_year),
        "max_drawdown": drawdown.min(),
        "max_drawdown_duration_bars": longest,
        "calmar": ((equity[-1] / 100_000.0) ** (per_year / n) - 1) / -drawdown.min(),
        "ulcer_index": np.sqrt(np.mean(drawdown**2)),
        "var_95": q05,
        "cvar_95": returns[returns <= q05].mean(),
        "tail_ratio": abs(q95) / abs(q05),
        "omega": returns[returns > 0].sum() / -returns[returns < 0].sum(),
        "win_rate": win_rate,
        "profit_factor": wins.sum() / -losses.sum(),
        "expectancy": pnl.mean(),
        "payoff_ratio": payoff,
        "sqn": np.sqrt(pnl.size) * pnl.mean() / pnl.std(ddof=1),
        "kelly": win_rate - (1 - win_rate) / payoff,
        "best_trade_return": trade_returns.max(),
        "worst_trade_return": trade_returns.min(),
        "avg_trade_return": trade_returns.mean(),
        "fees_to_gross_profit": (cols["entry_fee"] + cols["exit_fee"]).sum() / wins.sum(),
        "avg_holding_bars": holding.mean(),
        "median_holding_bars": float(np.median(holding)),
        "exposure": np.mean(result.gross_exposure > 0),
        "fees_paid": (cols["entry_fee"] + cols["exit_fee"]).sum(),
        "turnover": (cols["quantity"] * (cols["entry_price"] + cols["exit_price"])).sum() / equity.mean(),
        "benchmark_return": close[-1] / close[0] - 1,
        "beta": beta,
        "alpha": (returns.mean() - beta * bench_returns.mean()) * per_year,
        "skew": ((returns - returns.mean()) ** 3).mean() / returns.std() ** 3,
        "kurtosis": ((returns - returns.mean()) ** 4).mean() / returns.var() ** 2 - 3,
    }


def test_key_metrics_match_independent_formulas(aapl: UniverseBars) -> None:
    result = sma_cross_result(aapl)
    expected = independent_metrics(result, aapl)
    assert len(result.metrics) >= 30
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_trade_returns_and_excursions_are_fractions_of_the_entry_price(aapl: UniverseBars) -> None:
    # The output convention: a return is a fraction (0.0123 = 1.23%), never a percent; recomputed here
    # from the bars and the trade's own cash figures.
    result = sma_cross_result(aapl)
    cols = result.trade_columns()
    assert not any(name.endswith("_pct") for name in [*cols, *result.metrics])
    high, low, open_ = aapl.high[:, 0], aapl.low[:, 0], aapl.open[:, 0]
    exits_at_open = np.flatnonzero(cols["exit_at"] == "open")
    assert exits_at_open.size > 20
    for k in exits_at_open:
        # Held from the entry bar's open to the exit bar's open (where the raw exit price is the open).
        held = slice(cols["entry_bar"][k], cols["exit_bar"][k])
        lowest = min(low[held].min(), open_[cols["exit_bar"][k]])
        highest = max(high[held].max(), open_[cols["exit_bar"][k]])
        price = cols["entry_price"][k]
        trade_return = cols["pnl"][k] / (cols["quantity"][k] * price)
        assert cols["trade_return"][k] == pytest.approx(trade_return, rel=1e-12), k
        assert cols["mae"][k] == pytest.approx(min(lowest / price - 1, 0.0), rel=1e-12, abs=1e-15), k
        assert cols["mfe"][k] == pytest.approx(max(highest / price - 1, 0.0), rel=1e-12, abs=1e-15), k
    closed = ~cols["is_open"]
    assert result.metrics["avg_trade_return"] == pytest.approx(cols["trade_return"][closed].mean(), rel=1e-12)
    assert result.metrics["avg_mae"] == pytest.approx(cols["mae"][closed].mean(), rel=1e-12)
    assert result.metrics["avg_mfe"] == pytest.approx(cols["mfe"][closed].mean(), rel=1e-12)


def portfolio_result(stocks) -> BacktestResult:
    """Three symbols sharing cash: SMA 20/50 cross long, an 8% stop, at most two positions of 45% each."""
    bars = stock_bars(stocks, ["AAPL", "MSFT", "IBM"])
    up = np.zeros(bars.close.shape, dtype=bool)
    down = np.zeros(bars.close.shape, dtype=bool)
    for column in range(3):
        up[:, column], down[:, column] = crosses(np.ascontiguousarray(bars.close[:, column]), 20, 50)
    sides = [
        side(
            up,
            [
                ExitPlan("cross_down", "signal", signal=down),
                ExitPlan("stop_8pct", "stop_loss", fraction=0.08),
            ],
            sizing=SizingPlan("percent_equity", 0.45),
        )
    ]
    return simulate(plan(bars, sides, max_open=2, warmup=50), bars, ASSUMPTIONS)


def golden_cases(stocks) -> dict[str, BacktestResult]:
    return {
        "aapl_sma_10_30": sma_cross_result(stock_bars(stocks, ["AAPL"])),
        "portfolio_sma_20_50_stop": portfolio_result(stocks),
    }


@pytest.mark.parametrize("case", ["aapl_sma_10_30", "portfolio_sma_20_50_stop"])
def test_full_metric_dictionary_matches_the_golden_file(stocks, case: str) -> None:
    result = golden_cases(stocks)[case]
    golden = json.loads((GOLDEN / f"{case}.json").read_text())
    metrics = json.loads(json.dumps(result.summary_dict()["metrics"]))
    assert sorted(metrics) == sorted(golden["metrics"])
    for name, value in golden["metrics"].items():
        if isinstance(value, float):
            assert metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
        else:
            assert metrics[name] == value, name
    assert result.order_hash == golden["order_hash"]
    assert result.data_hash == golden["data_hash"]


def test_portfolio_cash_and_positions_add_up_to_equity(stocks) -> None:
    result = portfolio_result(stocks)
    bars = stock_bars(stocks, ["AAPL", "MSFT", "IBM"])
    orders = result.order_columns()
    positions = np.zeros(bars.close.shape)
    for bar, column, side_, quantity in zip(
        orders["bar"],
        [bars.symbols.index(s) for s in orders["symbol"]],
        orders["side"],
        orders["quantity"],
        strict=True,
    ):
        positions[bar:, column] += quantity if side_ == "buy" else -quantity
    marks = np.where(np.isfinite(bars.close), bars.close, np.nan)
    for column in range(3):  # a missing close keeps the previous mark
        series = marks[:, column]
        valid = np.isfinite(series)
        series[~valid] = np.interp(np.flatnonzero(~valid), np.flatnonzero(valid), series[valid])
    value = np.nansum(positions * marks, axis=1)
    np.testing.assert_allclose(result.cash + value, result.equity, rtol=1e-12)
    assert result.metrics["trades"] > 50
    assert {"cross_down", "stop_8pct"} <= set(result.trade_columns()["exit_reason"])
