"""Cross-check against backtesting.py (kernc, 0.6.x) used as an oracle on real data.

Both engines run the same strategies on the GOOG daily bars bundled with backtesting.py, configured to
the same semantics: market orders decided on a close fill at the next open, commission on both legs,
fixed 10-unit orders, stop-loss before take-profit inside a bar, targets filled on touch, open trades
left open at the end (``finalize_trades=False``). The trade lists (entry/exit bars and prices) must be
identical and the final equities agree to 1e-6 relative.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import talib
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.result import BacktestResult
from packages.domain.strategy.plan import ExitPlan, SidePlan
from tests.packages.domain.backtest.kit import backtesting_csv, plan, side

COMMISSION = 0.002
CASH = 1_000_000.0
SIZE = 10
SL, TP = 0.05, 0.10
ASSUMPTIONS = ExecutionAssumptions(
    initial_cash=CASH,
    fee_bps=COMMISSION * 1e4,
    slippage_bps=0.0,
    close_at_end=False,
    limit_fill_on_touch=True,
)


@pytest.fixture(scope="module")
def goog() -> pd.DataFrame:
    return backtesting_csv("GOOG")


def to_bars(frame: pd.DataFrame) -> UniverseBars:
    return UniverseBars.from_arrays(
        pd.DatetimeIndex(frame.index).as_unit("ns").asi8,
        ["GOOG"],
        frame["Open"].to_numpy(float),
        frame["High"].to_numpy(float),
        frame["Low"].to_numpy(float),
        frame["Close"].to_numpy(float),
        frame["Volume"].to_numpy(float),
    )


def cross_up(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """backtesting.lib.crossover semantics: a[-2] < b[-2] and a[-1] > b[-1] (NaN never crosses)."""
    out = np.zeros(a.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    return out


# --- the strategies, once for backtesting.py and once as plans ------------------------------------------


class SmaCross(Strategy):
    def init(self) -> None:
        self.fast = self.I(talib.SMA, self.data.Close, 10)
        self.slow = self.I(talib.SMA, self.data.Close, 20)

    def next(self) -> None:
        if crossover(self.fast, self.slow):
            if not self.position:
                self.buy(size=SIZE)
        elif crossover(self.slow, self.fast) and self.position:
            self.position.close()


class RsiReversion(Strategy):
    def init(self) -> None:
        self.rsi = self.I(talib.RSI, self.data.Close, 14)

    def next(self) -> None:
        if not self.position and self.rsi[-2] >= 30 and self.rsi[-1] < 30:
            self.buy(size=SIZE)
        elif self.position and self.rsi[-1] > 70:
            self.position.close()


class SmaCrossStopTarget(SmaCross):
    """Stop and target measured from the fill (the next open, which the oracle may peek at)."""

    opens: np.ndarray = np.empty(0)

    def next(self) -> None:
        i = len(self.data) - 1
        if crossover(self.fast, self.slow):
            if not self.position and i + 1 < len(self.opens):
                fill = self.opens[i + 1]
                self.buy(size=SIZE, sl=fill * (1 - SL), tp=fill * (1 + TP))
        elif crossover(self.slow, self.fast) and self.position:
            self.position.close()


class SmaReversal(SmaCross):
    def next(self) -> None:
        if crossover(self.fast, self.slow):
            if self.position.is_short:
                self.position.close()
            self.buy(size=SIZE)
        elif crossover(self.slow, self.fast):
            if self.position.is_long:
                self.position.close()
            self.sell(size=SIZE)


def sma_signals(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fast, slow = talib.SMA(close, 10), talib.SMA(close, 20)
    return cross_up(fast, slow)[:, None], cross_up(slow, fast)[:, None]


def sma_cross_sides(close: np.ndarray) -> list[SidePlan]:
    up, down = sma_signals(close)
    return [side(up, [ExitPlan("cross_down", "signal", signal=down)])]


def rsi_sides(close: np.ndarray) -> list[SidePlan]:
    rsi = talib.RSI(close, 14)
    entry = np.zeros(close.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):
        entry[1:] = (rsi[:-1] >= 30) & (rsi[1:] < 30)
        leave = rsi > 70
    return [side(entry[:, None], [ExitPlan("rsi_above_70", "signal", signal=leave[:, None])])]


def stop_target_sides(close: np.ndarray) -> list[SidePlan]:
    up, down = sma_signals(close)
    exits = [
        ExitPlan("cross_down", "signal", signal=down),
        ExitPlan("stop", "stop_loss", fraction=SL),
        ExitPlan("target", "take_profit", fraction=TP),
    ]
    return [side(up, exits)]


def reversal_sides(close: np.ndarray) -> list[SidePlan]:
    up, down = sma_signals(close)
    return [
        side(up, [ExitPlan("cross_down", "signal", signal=down)]),
        side(down, [ExitPlan("cross_up", "signal", signal=up)], direction="short"),
    ]


CASES: dict[str, tuple[type[Strategy], Callable[[np.ndarray], list[SidePlan]]]] = {
    "sma_cross": (SmaCross, sma_cross_sides),
    "rsi_reversion": (RsiReversion, rsi_sides),
    "sma_cross_stop_target": (SmaCrossStopTarget, stop_target_sides),
    "sma_long_short_reversal": (SmaReversal, reversal_sides),
}


def oracle(frame: pd.DataFrame, strategy: type[Strategy]) -> tuple[pd.DataFrame, float]:
    if strategy is SmaCrossStopTarget:
        SmaCrossStopTarget.opens = frame["Open"].to_numpy(float)
    backtest = Backtest(
        frame,
        strategy,
        cash=CASH,
        commission=COMMISSION,
        trade_on_close=False,
        exclusive_orders=False,
        hedging=False,
        finalize_trades=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = backtest.run()
    return stats["_trades"].sort_values("EntryBar").reset_index(drop=True), float(stats["Equity Final [$]"])


def ours(frame: pd.DataFrame, sides: Callable[[np.ndarray], list[SidePlan]]) -> BacktestResult:
    bars = to_bars(frame)
    return simulate(plan(bars, sides(np.ascontiguousarray(bars.close[:, 0]))), bars, ASSUMPTIONS)


@pytest.mark.parametrize("case", list(CASES))
def test_trades_and_final_equity_match_backtesting_py(goog: pd.DataFrame, case: str) -> None:
    strategy, sides = CASES[case]
    expected_trades, expected_equity = oracle(goog, strategy)
    result = ours(goog, sides)
    cols = result.trade_columns()
    closed = ~cols["is_open"]
    got = pd.DataFrame(
        {
            "EntryBar": cols["entry_bar"][closed],
            "ExitBar": cols["exit_bar"][closed],
            "EntryPrice": cols["entry_price"][closed],
            "ExitPrice": cols["exit_price"][closed],
            "Size": (np.where(cols["direction"] == "long", 1, -1) * cols["quantity"])[closed],
        }
    )
    assert len(got) == len(expected_trades) >= 5
    assert got["EntryBar"].tolist() == expected_trades["EntryBar"].tolist()
    assert got["ExitBar"].tolist() == expected_trades["ExitBar"].tolist()
    assert got["Size"].tolist() == expected_trades["Size"].tolist()
    np.testing.assert_allclose(got["EntryPrice"], expected_trades["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(got["ExitPrice"], expected_trades["ExitPrice"], rtol=1e-12)
    assert result.final_equity == pytest.approx(expected_equity, rel=1e-6)


def test_stop_target_case_exercises_every_exit(goog: pd.DataFrame) -> None:
    """The oracle comparison above is only meaningful if stops, targets and signals all occur."""
    reasons = set(ours(goog, stop_target_sides).trade_columns()["exit_reason"])
    assert {"cross_down", "stop", "target"} <= reasons
