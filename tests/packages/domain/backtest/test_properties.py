"""Property tests on generated (synthetic) bars and random signals.

Invariants: replaying the order list reproduces the engine's cash at every bar and, with the positions
marked at the close, its equity (the account is carried forward, fees included); no order fills before
the bar after its signal unless trade_on_close fills it at the signal's close; without margin a long-only
account never borrows cash; the equity change equals the sum of trade P&L net of fees.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from packages.domain.backtest import codes
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.result import BacktestResult
from packages.domain.strategy.plan import ExitPlan, OrderPlan, SidePlan, SizingPlan
from tests.packages.domain.backtest.kit import DAY0, NS_PER_DAY, plan

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def synthetic_bars(draw: st.DrawFn) -> UniverseBars:
    """A seeded random walk per symbol with consistent OHLC (synthetic test data)."""
    n = draw(st.integers(5, 60))
    m = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n, m)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, (n, m))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, (n, m))))
    volume = rng.integers(100, 10_000, (n, m)).astype(float)
    index = DAY0 + NS_PER_DAY * np.arange(n, dtype=np.int64)
    return UniverseBars(index, tuple(f"S{k}" for k in range(m)), open_, high, low, close, volume)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[UniverseBars, list[SidePlan], int, ExecutionAssumptions]:
    bars = draw(synthetic_bars())
    n, m = bars.n_bars, bars.n_symbols
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    directions = draw(st.sampled_from([("long",), ("short",), ("long", "short")]))
    sides = []
    for direction in directions:
        exits: list[ExitPlan] = [ExitPlan("signal", "signal", signal=rng.random((n, m)) < 0.2)]
        if draw(st.booleans()):
            exits.append(ExitPlan("stop", "stop_loss", fraction=draw(st.floats(0.005, 0.1))))
        if draw(st.booleans()):
            exits.append(ExitPlan("target", "take_profit", fraction=draw(st.floats(0.005, 0.1))))
        if draw(st.booleans()):
            exits.append(ExitPlan("trail", "trailing_stop", fraction=draw(st.floats(0.005, 0.1))))
        kind = draw(st.sampled_from(["market", "market", "limit", "stop"]))
        order = OrderPlan()
        if kind != "market":
            offset = 1 - 0.01 if (kind == "limit") == (direction == "long") else 1 + 0.01
            order = OrderPlan(kind, bars.close * offset, draw(st.integers(1, 3)))  # type: ignore[arg-type]
        sizing = draw(
            st.sampled_from(
                [
                    SizingPlan("percent_equity", 0.3),
                    SizingPlan("percent_equity", 1.0),
                    SizingPlan("fixed_quantity", 50.0),
                ]
            )
        )
        sides.append(SidePlan(direction, rng.random((n, m)) < 0.2, order, tuple(exits), sizing))  # type: ignore[arg-type]
    assumptions = ExecutionAssumptions(
        trade_on_close=draw(st.booleans()),
        fee_bps=draw(st.sampled_from([0.0, 10.0])),
        fee_fixed=draw(st.sampled_from([0.0, 1.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0])),
        spread_bps=draw(st.sampled_from([0.0, 4.0])),
        close_at_end=draw(st.booleans()),
    )
    return bars, sides, draw(st.integers(1, m)), assumptions


def replay(result: BacktestResult, bars: UniverseBars) -> tuple[np.ndarray, np.ndarray]:
    """Cash and position matrices rebuilt from the order list alone."""
    orders = result.order_columns()
    cash_flow = np.zeros(bars.n_bars)
    positions = np.zeros((bars.n_bars, bars.n_symbols))
    for bar, symbol, side_, quantity, price, fee in zip(
        orders["bar"],
        orders["symbol"],
        orders["side"],
        orders["quantity"],
        orders["price"],
        orders["fee"],
        strict=True,
    ):
        sign = 1.0 if side_ == "buy" else -1.0
        cash_flow[bar] -= sign * quantity * price + fee
        positions[bar:, bars.symbols.index(str(symbol))] += sign * quantity
    return result.assumptions.initial_cash + np.cumsum(cash_flow), positions


@SETTINGS
@given(scenarios())
def test_cash_and_positions_equal_equity_at_every_bar(case) -> None:
    bars, sides, max_open, assumptions = case
    result = simulate(plan(bars, sides, max_open=max_open), bars, assumptions)
    cash, positions = replay(result, bars)
    np.testing.assert_allclose(result.cash, cash, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(
        cash + (positions * bars.close).sum(axis=1), result.equity, rtol=1e-9, atol=1e-6
    )


@SETTINGS
@given(scenarios())
def test_no_fill_before_the_bar_after_its_signal(case) -> None:
    bars, sides, max_open, assumptions = case
    result = simulate(plan(bars, sides, max_open=max_open), bars, assumptions)
    orders = result.order_columns()
    for bar, signal_bar, at, type_, reason in zip(
        orders["bar"], orders["signal_bar"], orders["at"], orders["type"], orders["reason"], strict=True
    ):
        if reason == "end_of_data":
            assert bar == bars.n_bars - 1 and at == "close"
        elif assumptions.trade_on_close and type_ == "market" and at == "close":
            assert bar == signal_bar
        elif reason in {"stop", "target", "trail"}:
            assert bar >= signal_bar  # intrabar exits happen on the bar that detects them
        else:
            assert bar > signal_bar


@SETTINGS
@given(scenarios())
def test_equity_change_is_the_sum_of_trade_pnl(case) -> None:
    bars, sides, max_open, assumptions = case
    result = simulate(plan(bars, sides, max_open=max_open), bars, assumptions)
    pnl = result.trade_columns()["pnl"].sum()
    assert result.final_equity == pytest.approx(assumptions.initial_cash + pnl, rel=1e-9, abs=1e-6)
    assert result.metrics["fees_paid"] == pytest.approx(
        result.orders[:, codes.O_FEE].sum(), rel=1e-12, abs=1e-9
    )


@SETTINGS
@given(synthetic_bars(), st.integers(0, 2**31 - 1))
def test_long_only_without_margin_never_borrows(bars: UniverseBars, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = bars.n_bars, bars.n_symbols
    sides = [
        SidePlan(
            "long",
            rng.random((n, m)) < 0.3,
            OrderPlan(),
            (ExitPlan("signal", "signal", signal=rng.random((n, m)) < 0.3),),
            SizingPlan("percent_equity", 1.0),
        )
    ]
    result = simulate(plan(bars, sides, max_open=m), bars, ExecutionAssumptions(fee_fixed=1.0))
    assert (result.cash >= -1e-9 * result.assumptions.initial_cash).all()
    assert (result.gross_exposure <= result.equity * (1 + 1e-9)).all()
