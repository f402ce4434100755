"""Reconciliation causes on hand-made trades, and round trips read from hand-made fills."""

from __future__ import annotations

from dataclasses import replace

import pytest

from packages.domain.trading.reconciliation import TradeRecord, TradingEvent, reconcile
from packages.domain.trading.round_trips import open_positions, round_trips
from packages.domain.trading.simulated_broker import Fill

D = 1_000  # one bar, in made-up time units

BT = TradeRecord(
    symbol="X",
    direction="long",
    quantity=10.0,
    signal_time=1 * D,
    entry_time=2 * D,
    entry_price=100.0,
    entry_fee=1.0,
    exit_time=5 * D,
    exit_price=110.0,
    exit_fee=1.1,
    exit_reason="signal_exit",
    is_open=False,
)


def later(trade: TradeRecord, bars: int) -> TradeRecord:
    shift = bars * D
    return replace(
        trade,
        signal_time=trade.signal_time + shift,  # type: ignore[operator]
        entry_time=trade.entry_time + shift,
        exit_time=None if trade.exit_time is None else trade.exit_time + shift,
    )


@pytest.mark.parametrize(
    ("paper", "events", "cause"),
    [
        (BT, (), "none"),
        (replace(BT, exit_price=110.2, exit_fee=1.102), (), "fill_price"),
        (replace(BT, exit_time=6 * D, exit_price=111.0), (), "timing"),
        (replace(BT, quantity=7.0, entry_fee=0.7, partial=True), (), "partial_fill"),
        (replace(BT, quantity=7.0, entry_fee=0.7), (), "unexplained"),
        (
            replace(BT, exit_time=3 * D, exit_price=104.0, exit_reason="manual", exit_purpose="manual"),
            (TradingEvent(2 * D, "manual_action", "X", "close by user"),),
            "manual_action",
        ),
        (
            replace(BT, exit_time=3 * D, exit_price=104.0, exit_reason="kill_switch", exit_purpose="flatten"),
            (TradingEvent(2 * D, "kill_switch", None, "global kill switch on"),),
            "kill_switch",
        ),
        (
            replace(BT, exit_time=None, exit_price=None, exit_fee=0.0, exit_reason=None, is_open=True),
            (),
            "timing",  # the backtest left where paper did not (yet)
        ),
    ],
)
def test_a_matched_trades_difference_gets_its_cause(
    paper: TradeRecord, events: tuple[TradingEvent, ...], cause: str
) -> None:
    (comparison,) = reconcile([BT], [paper], events).comparisons
    assert comparison.cause == cause and comparison.explanation
    assert (comparison.differences == ()) == (cause == "none")


def test_a_trade_the_backtest_closed_at_the_end_and_paper_still_holds_is_no_difference() -> None:
    bt = replace(BT, exit_reason="end_of_data")
    paper = replace(BT, exit_time=None, exit_price=None, exit_fee=0.0, exit_reason=None, is_open=True)
    (comparison,) = reconcile([bt], [paper]).comparisons
    assert (comparison.cause, comparison.differences) == ("still_open", ())
    open_both = replace(BT, exit_time=None, exit_price=None, exit_fee=0.0, exit_reason=None, is_open=True)
    assert reconcile([open_both], [open_both]).counts() == {"none": 1}


@pytest.mark.parametrize(
    ("events", "cause"),
    [
        ((TradingEvent(1 * D, "risk_refusal", "X", "max_position_notional", "mz-1"),), "blocked_by_risk"),
        (
            (
                TradingEvent(1 * D, "kill_switch", None, "user kill switch on"),
                TradingEvent(1 * D, "risk_refusal", "X", "kill switch", "mz-1"),
            ),
            "kill_switch",
        ),
        ((TradingEvent(1 * D, "risk_refusal", "Y", "allowed_symbols", "mz-1"),), "unexplained"),
        ((TradingEvent(0, "risk_refusal", "X", "max_position_notional", "mz-1"),), "unexplained"),
        ((), "unexplained"),
    ],
)
def test_a_trade_only_the_backtest_made_is_explained_by_what_was_refused_then(
    events: tuple[TradingEvent, ...], cause: str
) -> None:
    (comparison,) = reconcile([BT], [], events).comparisons
    assert (comparison.cause, comparison.paper) == (cause, None)


def test_paper_only_trades_and_knock_on_effects() -> None:
    manual_open = replace(later(BT, 20), entry_purpose="manual", signal_time=None)
    result = reconcile([], [manual_open])
    assert [c.cause for c in result.comparisons] == ["manual_action"]
    # After a manual close, paper is flat and re-enters earlier than the backtest, which still held.
    closed_early = replace(BT, exit_time=3 * D, exit_price=104.0, exit_reason="manual", exit_purpose="manual")
    bt_next = later(BT, 10)
    paper_next = replace(later(BT, 8), signal_time=8 * D)
    result = reconcile([BT, bt_next], [closed_early, paper_next])
    assert [c.cause for c in result.comparisons] == ["manual_action", "knock_on"]
    # On another symbol, a size difference after an explained one is a knock-on (equity changed) ...
    other = replace(later(BT, 10), symbol="Y")
    sized = replace(other, quantity=9.5, entry_fee=0.95, exit_fee=1.045)
    assert [c.cause for c in reconcile([BT, other], [closed_early, sized]).comparisons] == [
        "manual_action",
        "knock_on",
    ]
    # ... but a timing difference there is a timing difference of its own.
    shifted = replace(other, exit_time=other.exit_time + D)  # type: ignore[operator]
    assert [c.cause for c in reconcile([BT, other], [closed_early, shifted]).comparisons] == [
        "manual_action",
        "timing",
    ]


def test_trades_are_paired_by_decision_then_entry_then_overlap() -> None:
    a, b = BT, later(BT, 10)
    paper_b = replace(b, signal_time=None)
    paper_a = replace(a, signal_time=0, entry_time=3 * D, entry_price=101.0)  # decided and filled later
    result = reconcile([a, b], [paper_b, paper_a])
    assert [(c.backtest, c.paper) for c in result.comparisons] == [(a, paper_a), (b, paper_b)]
    assert [c.cause for c in result.comparisons] == ["timing", "none"]


def fill(
    n: int,
    side: str,
    units: float,
    price: float,
    *,
    fee: float = 1.0,
    rule: str | None = None,
    purpose: str = "entry",
) -> Fill:
    return Fill(
        fill_id=f"f{n}",
        client_order_id=f"o{n}",
        symbol="X",
        side=side,  # type: ignore[arg-type]
        quantity=units,
        price=price,
        raw_price=price,
        fee=fee,
        slippage=0.0,
        time=n * D,
        at="open",
        mechanism="market",
        purpose=purpose,  # type: ignore[arg-type]
        exit_rule=rule,
        strategy_side="long" if side == "buy" else "short",
        signal_time=(n - 1) * D,
    )


def test_round_trips_from_fills() -> None:
    fills = [
        fill(1, "buy", 10, 100.0),
        fill(2, "buy", 10, 110.0),  # adds: entry 20 at 105
        fill(3, "sell", 5, 120.0, rule="tp", purpose="exit"),
        fill(4, "sell", 15, 90.0, rule="sl", purpose="exit"),  # closes the trade
        fill(5, "sell", 4, 50.0, purpose="manual"),  # a short, opened by hand
        fill(6, "buy", 10, 40.0, fee=2.0, purpose="manual"),  # covers 4, opens 6 long
    ]
    first, second, third = round_trips(fills)
    assert (first.quantity, first.entry_price, first.entry_fee) == (20, 105.0, 2.0)
    assert (first.exit_price, first.exit_fee, first.exit_reason, first.exit_time) == (
        pytest.approx((5 * 120 + 15 * 90) / 20),
        2.0,
        "sl",
        4 * D,
    )
    assert first.pnl == pytest.approx(20 * (97.5 - 105) - 4.0) and first.partial and not first.is_open
    assert (second.direction, second.quantity, second.exit_price, second.exit_fee) == (
        "short",
        4,
        40.0,
        pytest.approx(0.8),
    )
    assert second.pnl == pytest.approx(4 * (50 - 40) - 1.0 - 0.8) and second.exit_reason == "manual"
    assert (third.direction, third.quantity, third.entry_fee, third.is_open) == (
        "long",
        6,
        pytest.approx(1.2),
        True,
    )
    assert open_positions([first, second, third]) == {
        "X": open_positions([third])["X"],
    }
    meta = open_positions([third])["X"]
    assert (meta.side, meta.entry_time, meta.entry_at, meta.signal_time) == ("long", 6 * D, "open", 5 * D)
