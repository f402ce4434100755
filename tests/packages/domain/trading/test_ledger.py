"""The ledger: entries in, balances out; replay rebuilds the exact state (hand-worked amounts)."""

from __future__ import annotations

import math

import pytest

from packages.domain.trading.ledger import LedgerState, adjustment, apply, deposit, fill_entry, replay
from packages.domain.trading.orders import OrderSpec, Quantity, SizeAtFill
from tests.packages.domain.trading.trading_kit import CALM_ROWS, costs, entry, paper_broker, play

ENTRIES = [
    deposit(0, 10_000.0, "capital"),
    fill_entry(1, "X", 10, 100.0, 1.0),  # buy 10 at 100: cash -1,001
    fill_entry(2, "X", 10, 110.0, 1.1),  # buy 10 more at 110: average 105
    fill_entry(3, "X", -5, 120.0, 0.6),  # sell 5 at 120: +75 price PnL
    fill_entry(4, "Y", -4, 50.0, 0.2),  # short 4 at 50
    fill_entry(5, "X", -25, 90.0, 2.25),  # sell 25: closes 15 (PnL -225) and shorts 10 at 90
    adjustment(6, "broker credit", cash=5.0),
]


def test_each_entry_moves_cash_and_positions_as_worked_by_hand() -> None:
    state = replay(ENTRIES)
    cash = 10_000 - 1_001 - 1_101.1 + (600 - 0.6) + (200 - 0.2) + (2_250 - 2.25) + 5
    assert state.cash == pytest.approx(cash, abs=1e-9)
    x, y = state.positions["X"], state.positions["Y"]
    assert (x.quantity, x.average_price) == (-10, 90.0)  # through zero: the rest opens short at 90
    assert x.realized_pnl == pytest.approx(75 - 225 - (1 + 1.1 + 0.6 + 2.25))
    assert (y.quantity, y.average_price, y.realized_pnl) == (-4, 50.0, pytest.approx(-0.2))
    assert state.fees == pytest.approx(1 + 1.1 + 0.6 + 0.2 + 2.25)
    assert state.deposits == 10_000 and state.adjustments == 5.0 and state.entries == len(ENTRIES)
    assert state.held() == {"X": -10, "Y": -4}


def test_equity_is_deposits_plus_realized_plus_unrealized() -> None:
    state = replay(ENTRIES)
    marks = {"X": 80.0, "Y": 55.0}
    equity = state.equity(marks)
    assert equity == pytest.approx(state.cash - 10 * 80 - 4 * 55)
    unrealized = state.unrealized_pnl(marks)
    assert unrealized == pytest.approx(-10 * (80 - 90) - 4 * (55 - 50))
    assert equity == pytest.approx(state.deposits + state.adjustments + state.realized_pnl + unrealized)
    assert state.equity({"X": 80.0}) == pytest.approx(state.cash - 800 - 4 * 50)  # no mark: average price


def test_replay_equals_applying_one_by_one_and_is_repeatable() -> None:
    state = LedgerState()
    for entry_ in ENTRIES:
        state = apply(state, entry_)
    assert replay(ENTRIES) == state == replay(list(ENTRIES))


def test_a_fills_cash_change_is_the_engines_arithmetic() -> None:
    buy = fill_entry(0, "X", 3, 101.37, 0.30411)
    sell = fill_entry(0, "X", -3, 99.13, 0.29739)
    assert buy.cash == -(3 * 101.37 + 0.30411) and sell.cash == 3 * 99.13 - 0.29739


@pytest.mark.parametrize(
    "make",
    [
        lambda: deposit(0, 0.0),
        lambda: deposit(0, math.nan),
        lambda: fill_entry(0, "X", 0, 10.0, 0.0),
        lambda: fill_entry(0, "X", 1, -10.0, 0.0),
        lambda: adjustment(0, ""),
        lambda: adjustment(0, "move in", quantity=5.0),
    ],
)
def test_malformed_entries_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_a_position_adjustment_moves_units_at_a_price_without_cash() -> None:
    state = replay([deposit(0, 1_000.0), adjustment(1, "transfer in", symbol="Z", quantity=2.0, price=40.0)])
    assert state.cash == 1_000.0 and state.positions["Z"].quantity == 2.0
    assert state.positions["Z"].average_price == 40.0


def test_the_paper_brokers_state_is_the_replay_of_its_ledger() -> None:
    broker = paper_broker(book=costs(fee_rate=0.001, slippage=0.0005))
    play(
        broker,
        [*CALM_ROWS, (101, 103, 100, 102), (103, 104, 96, 97)],
        {0: [entry("a", size=SizeAtFill("percent_equity", 0.5))]},
    )
    reduce = OrderSpec("b", "X", "sell", "market", Quantity(20), "manual", reduce_only=True)
    play(broker, [(98, 99, 97, 98)], {0: [reduce]})
    assert replay(broker.ledger) == broker.state
    assert broker.state.held() == {"X": pytest.approx(5_000 / (100 * 1.0005 * 1.001) - 20)}
