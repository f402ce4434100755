"""THE KEY PROPERTY: a deployment driven bar by bar (paper broker, ledger, cycle, gate) over real data
trades exactly as the backtest of the same period with the same assumptions, and reconciliation finds
no unexplained difference; a planted manual close, risk block or kill switch shows up with its cause.

Data: daily AAPL/MSFT/IBM/GOOG (bokeh-sampledata), S&P 500 and NASDAQ Composite (arch), hourly
EURUSD (backtesting.py). The backtest runs rows ``[first, stop)`` with every earlier row as warm-up
history and ``close_at_end`` off (paper holds its last position open too: open trades compare on
their entries, the backtest marks them to the last close and so does the paper ledger). Decisions
(bars, symbols, sides, exit reasons) must be identical; prices, quantities, fees and PnL too, up to
1e-12 relative: indicators read over the cycle's bounded window instead of all history differ in the
last bits where TA-Lib keeps running sums (the settling window removes everything else).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.pipeline import Backtester, BacktestRun
from packages.domain.strategy.compiler import compile_strategy
from packages.domain.trading.costs import CostBook
from packages.domain.trading.manual import ManualAction
from packages.domain.trading.reconciliation import backtest_trades, paper_trades, reconcile
from packages.domain.trading.risk import KillSwitch, RiskLimits
from packages.domain.trading.session import PaperSession
from tests.packages.domain.backtest.kit import backtesting_csv, index_bars, stock_bars, stocks_frame

EXAMPLES = Path(__file__).parents[4] / "packages" / "domain" / "strategy" / "examples"
REL = 1e-12
BASE = ExecutionAssumptions(close_at_end=False)


@cache
def stocks(*symbols: str) -> UniverseBars:
    return stock_bars(stocks_frame(), list(symbols))


@cache
def indices() -> UniverseBars:
    return index_bars(["SPX", "IXIC"])


@cache
def eurusd() -> UniverseBars:
    frame = backtesting_csv("EURUSD")
    index = pd.DatetimeIndex(frame.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return UniverseBars.from_arrays(
        index.as_unit("ns").asi8,
        ["EURUSD"],
        frame["Open"].to_numpy(),
        frame["High"].to_numpy(),
        frame["Low"].to_numpy(),
        frame["Close"].to_numpy(),
        frame["Volume"].to_numpy(),
    )


FOUR = ("AAPL", "MSFT", "IBM", "GOOG")
# example, bars, first row, stop row, assumptions (each case also covers one cost model)
CASES: list[tuple[str, Callable[[], UniverseBars], int, int, ExecutionAssumptions]] = [
    ("sma_crossover_trend", lambda: stocks("AAPL"), 1200, 2400, BASE.model_copy(update={"spread_bps": 2.0})),
    ("index_macd_long_short", indices, 1200, 2400, BASE),
    (
        "keltner_squeeze_breakout",
        lambda: stocks("MSFT"),
        1200,
        2400,
        BASE.model_copy(update={"slippage_model": "volume_share"}),
    ),
    (
        "bollinger_reversion_limit",
        lambda: stocks("GOOG"),
        300,
        1800,
        BASE.model_copy(update={"limit_fill_on_touch": True, "spread_bps": 10.0}),
    ),
    (
        "donchian_breakout",
        lambda: stocks(*FOUR),
        1200,
        2400,
        BASE.model_copy(update={"quantity_step": 1.0, "fee_fixed": 1.0}),
    ),
    ("momentum_rotation", lambda: stocks(*FOUR), 1200, 2400, BASE),
    (
        "ema_crossover_long_short",
        lambda: stocks("MSFT"),
        1200,
        2400,
        BASE.model_copy(update={"allow_margin": True}),
    ),
    ("volatility_expansion_breakout", lambda: stocks("IBM"), 1200, 3000, BASE),
    ("rsi_mean_reversion", lambda: stocks("IBM"), 1200, 3000, BASE),
    ("zscore_reversion_eurusd", eurusd, 2000, 3500, BASE),
    ("mtf_trend_filter_eurusd", eurusd, 2000, 3500, BASE),
]


def run_both(
    name: str,
    bars: UniverseBars,
    first: int,
    stop: int,
    assumptions: ExecutionAssumptions,
    *,
    limits: RiskLimits | None = None,
    actions: Mapping[int, Sequence[ManualAction]] | None = None,
    switches: Mapping[int, Sequence[KillSwitch]] | None = None,
) -> tuple[BacktestRun, PaperSession]:
    strategy = compile_strategy(json.loads((EXAMPLES / f"{name}.json").read_text()))
    backtester = Backtester(strategy, bars, assumptions)
    run = backtester.run(first_row=first, stop_row=stop)
    session = PaperSession(
        f"deployment-{name}",
        strategy,
        assumptions.initial_cash,
        CostBook.from_assumptions(assumptions),
        limits=limits or RiskLimits(),
    )
    for row in range(first, stop):
        session.step(
            backtester.bars,
            row,
            manual_actions=(actions or {}).get(row, ()),
            kill_switches=(switches or {}).get(row, ()),
        )
    return run, session


@pytest.mark.parametrize(("name", "bars", "first", "stop", "assumptions"), CASES, ids=[c[0] for c in CASES])
def test_paper_trades_exactly_as_the_backtest(
    name: str, bars: Callable[[], UniverseBars], first: int, stop: int, assumptions: ExecutionAssumptions
) -> None:
    run, session = run_both(name, bars(), first, stop, assumptions)
    backtest = backtest_trades(run.result)
    paper = paper_trades(session.trades())
    assert len(backtest) >= 3 and len(paper) == len(backtest)
    for bt, pt in zip(backtest, paper, strict=True):
        assert (bt.symbol, bt.direction, bt.signal_time, bt.entry_time, bt.is_open) == (
            pt.symbol,
            pt.direction,
            pt.signal_time,
            pt.entry_time,
            pt.is_open,
        )
        assert (bt.exit_time, bt.exit_reason) == (pt.exit_time, pt.exit_reason)
        for field in ("quantity", "entry_price", "entry_fee", "exit_price", "exit_fee"):
            expected, got = getattr(bt, field), getattr(pt, field)
            assert got == expected if expected is None else math.isclose(got, expected, rel_tol=REL), field
    columns = run.result.trade_columns()
    closed = [t for t in session.trades() if not t.is_open]
    assert np.allclose([t.pnl for t in closed], columns["pnl"][~columns["is_open"]], rtol=1e-9, atol=1e-9)
    equity = session.broker.state.equity(session.broker.marks, session.strategy.symbols)
    assert equity == pytest.approx(run.result.equity[-1], rel=REL)
    reconciliation = reconcile(backtest, paper, session.events)
    assert reconciliation.counts() == {"none": len(backtest)}
    assert session.status.state == "ACTIVE"


def planted(**kw: object) -> tuple[BacktestRun, PaperSession]:
    return run_both("sma_crossover_trend", stocks("AAPL"), 1200, 2400, BASE, **kw)  # type: ignore[arg-type]


@cache
def reference() -> BacktestRun:
    run, _ = planted()
    return run


def row_of(time: int) -> int:
    return int(np.searchsorted(stocks("AAPL").index, time))


def test_a_manual_close_is_the_one_explained_difference() -> None:
    trades = backtest_trades(reference().result)
    target = next(
        t for t in trades if t.exit_time is not None and row_of(t.exit_time) - row_of(t.entry_time) > 5
    )
    close_row = row_of(target.entry_time) + 2
    run, session = planted(actions={close_row: [ManualAction("a-1", "close", "AAPL")]})
    result = reconcile(backtest_trades(run.result), paper_trades(session.trades()), session.events)
    differing = [c for c in result.comparisons if c.cause != "none"]
    assert len(differing) == 1 and not result.unexplained
    (comparison,) = differing
    assert comparison.cause == "manual_action" and comparison.backtest == target
    assert comparison.paper is not None and comparison.paper.exit_time == int(
        stocks("AAPL").index[close_row + 1]
    )
    assert comparison.paper.exit_reason == "manual"
    assert {d.field for d in comparison.differences} >= {"exit_time", "exit_price", "exit_reason"}


def test_entries_refused_by_a_risk_limit_are_explained_as_blocked() -> None:
    bars = stocks("AAPL")
    trades = backtest_trades(reference().result)
    values = [100 * bars.close[row_of(t.signal_time), 0] for t in trades]  # fixed 100 units at the close
    limit = float(np.median(values))
    blocked = {t.signal_time for t, v in zip(trades, values, strict=True) if v > limit}
    run, session = planted(limits=RiskLimits(max_position_notional=limit))
    result = reconcile(backtest_trades(run.result), paper_trades(session.trades()), session.events)
    assert not result.unexplained and blocked
    causes = {c.backtest.signal_time: c.cause for c in result.comparisons if c.backtest is not None}
    assert {t for t, cause in causes.items() if cause == "blocked_by_risk"} == blocked
    assert all(cause == "none" for t, cause in causes.items() if t not in blocked)
    assert all(c.paper is None for c in result.comparisons if c.cause == "blocked_by_risk")


def test_kill_switches_show_up_as_the_cause() -> None:
    trades = backtest_trades(reference().result)
    blocked, flattened = trades[2], trades[5]
    assert flattened.exit_time is not None
    switch = KillSwitch("deployment", "deployment-sma_crossover_trend", reason="drill")
    flatten = KillSwitch("user", "u-1", flatten=True, reason="drill")
    flatten_row = row_of(flattened.entry_time) + 1
    run, session = planted(
        switches={row_of(blocked.signal_time): [switch], flatten_row: [flatten]},  # type: ignore[arg-type]
    )
    result = reconcile(backtest_trades(run.result), paper_trades(session.trades()), session.events)
    assert not result.unexplained
    causes = {c.backtest.signal_time: c for c in result.comparisons if c.backtest is not None}
    assert causes[blocked.signal_time].cause == "kill_switch" and causes[blocked.signal_time].paper is None
    flattened_paper = causes[flattened.signal_time].paper
    assert causes[flattened.signal_time].cause == "kill_switch" and flattened_paper is not None
    assert (flattened_paper.exit_reason, flattened_paper.exit_time) == (
        "kill_switch",
        int(stocks("AAPL").index[flatten_row + 1]),
    )
    assert sum(c.cause != "none" for c in result.comparisons) == 2
