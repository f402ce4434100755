"""The paper broker's fills against hand-worked bars (synthetic price paths): every order type, the gap
and stop-before-target rules, trailing stops, sizing, buying power, expiry, partial fills and quotes.

Each expected price is worked out by hand from ``backtest.assumptions``'s rules; costs are off unless
a test is about them.
"""

from __future__ import annotations

import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.trading.costs import CostBook
from packages.domain.trading.orders import ClosePosition, OrderSpec, ProtectiveLeg, Quantity, SizeAtFill
from packages.domain.trading.simulated_broker import AccountBook, MarketBar, WorkingOrder, match_bar
from tests.packages.domain.trading.trading_kit import T0, costs, entry, paper_broker, play

FIXED_10 = SizeAtFill("fixed_quantity", 10.0)


def test_a_market_entry_fills_at_the_next_open_with_spread_slippage_and_fees() -> None:
    broker = paper_broker(book=costs(fee_rate=0.001, fee_fixed=1.0, slippage=0.0005, half_spread=0.0001))
    (fill,) = play(broker, [(100, 101, 99, 100)], {0: [entry("e")]})
    price = 100 * 1.0001 * 1.0005
    assert (fill.at, fill.mechanism, fill.quantity) == ("open", "market", 10)
    assert fill.price == pytest.approx(price, rel=1e-12)
    assert fill.fee == pytest.approx(10 * price * 0.001 + 1.0, rel=1e-12)
    assert fill.slippage == pytest.approx(10 * (price - 100), rel=1e-9)
    assert broker.state.cash == pytest.approx(10_000 - 10 * price - fill.fee, rel=1e-12)
    assert broker.status("e").status == "filled"


@pytest.mark.parametrize(
    ("size", "open_", "step", "expected"),
    [
        (SizeAtFill("percent_equity", 0.5), 100.0, 0.0, 5_000 / (100 * 1.001)),  # fee-inclusive
        (SizeAtFill("fixed_cash", 2_000.0), 100.0, 0.0, 20.0),
        (SizeAtFill("risk_per_trade", 0.01, 4.0), 100.0, 0.0, 100 / 4),  # 1% of equity over a 4-point stop
        (SizeAtFill("volatility_target", 0.2, 0.4), 100.0, 0.0, 0.2 / 0.4 * 10_000 / 100),
        (SizeAtFill("percent_equity", 2.0), 100.0, 0.0, 10_000 / (100 * 1.001)),  # capped by buying power
        (SizeAtFill("percent_equity", 0.5), 30.0, 1.0, 166.0),  # 166.5 rounded down to whole units
    ],
)
def test_entries_sized_at_fill_follow_the_engines_formulas(
    size: SizeAtFill, open_: float, step: float, expected: float
) -> None:
    broker = paper_broker(book=costs(fee_rate=0.001, quantity_step=step))
    (fill,) = play(broker, [(open_, open_ + 1, open_ - 1, open_)], {0: [entry("e", size=size)]})
    assert fill.quantity == pytest.approx(expected, rel=1e-12)
    assert fill.price == open_


def test_margin_raises_the_buying_power_cap() -> None:
    levered = CostBook(leverage=2.0)
    broker = paper_broker(book=levered)
    (fill,) = play(broker, [(100, 101, 99, 100)], {0: [entry("e", size=SizeAtFill("percent_equity", 3.0))]})
    assert fill.quantity == pytest.approx(200.0)


@pytest.mark.parametrize(
    ("side", "kind", "price", "bar", "touch", "expected"),
    [
        ("buy", "limit", 95.0, (100, 101, 94, 96), False, ("intrabar", 95.0)),  # the low trades through
        ("buy", "limit", 95.0, (100, 101, 95, 96), False, None),  # a touch is not a fill...
        ("buy", "limit", 95.0, (100, 101, 95, 96), True, ("intrabar", 95.0)),  # ...unless touch fills
        ("buy", "limit", 95.0, (94, 96, 93, 95), False, ("open", 94.0)),  # a gap fills at the better open
        ("sell", "limit", 105.0, (100, 106, 99, 104), False, ("intrabar", 105.0)),
        ("sell", "limit", 105.0, (107, 108, 104, 105), False, ("open", 107.0)),
        ("buy", "stop", 105.0, (100, 106, 99, 104), False, ("intrabar", 105.0)),
        ("buy", "stop", 105.0, (107, 108, 106, 107), False, ("open", 107.0)),  # opens through: the worse open
        ("buy", "stop", 105.0, (100, 104, 99, 103), False, None),
        ("sell", "stop", 95.0, (100, 101, 94, 96), False, ("intrabar", 95.0)),
        ("sell", "stop", 95.0, (93, 94, 92, 93), False, ("open", 93.0)),
    ],
)
def test_limit_and_stop_entries(
    side: str,
    kind: str,
    price: float,
    bar: tuple[float, ...],
    touch: bool,
    expected: tuple[str, float] | None,
) -> None:
    broker = paper_broker(book=costs(limit_fill_on_touch=touch))
    fills = play(broker, [bar], {0: [entry("e", side=side, kind=kind, price=price)]})
    if expected is None:
        assert fills == [] and broker.status("e").status == "expired"
    else:
        (fill,) = fills
        assert (fill.at, fill.price, fill.mechanism) == (*expected, kind)


def test_a_limit_must_be_reached_by_the_ask_and_stops_pay_costs() -> None:
    spread = costs(half_spread=0.001, slippage=0.0005)
    broker = paper_broker(book=spread)
    # The mid low 94.95 is below the limit, but the ask low 94.95 x 1.001 = 95.04 is not.
    assert play(broker, [(100, 101, 94.95, 96)], {0: [entry("e", kind="limit", price=95.0)]}) == []
    broker = paper_broker(book=spread)
    (fill,) = play(broker, [(100, 106, 99, 104)], {0: [entry("e", kind="stop", price=105.0)]})
    assert fill.price == pytest.approx(105 * 1.001 * 1.0005, rel=1e-12) and fill.raw_price == 105.0


def _with(
    *legs: ProtectiveLeg, side: str = "buy", kind: str = "market", price: float | None = None
) -> OrderSpec:
    return entry("e", side=side, kind=kind, price=price, legs=legs)


STOP_5 = ProtectiveLeg("sl", "stop_loss", fraction=0.05)
TARGET_10 = ProtectiveLeg("tp", "take_profit", fraction=0.10)
CALM = (100, 100.5, 99.5, 100)


@pytest.mark.parametrize(
    ("bar", "expected"),
    [
        ((100, 111, 94, 100), ("sl", "intrabar", 95.0)),  # stop and target in one bar: the stop first
        ((100, 111, 99, 108), ("tp", "intrabar", 110.0)),  # the high trades through the target
        ((100, 110, 99, 108), None),  # touching the target is not enough
        ((94, 96, 93, 95), ("sl", "open", 94.0)),  # opens through the stop: filled at the open
        ((112, 113, 111, 112), ("tp", "open", 112.0)),  # opens beyond the target: the better open
    ],
)
def test_stop_loss_and_take_profit(bar: tuple[float, ...], expected: tuple[str, str, float] | None) -> None:
    broker = paper_broker()
    fills = play(broker, [CALM, bar], {0: [_with(STOP_5, TARGET_10)]})
    assert fills[0].price == 100 and [f.purpose for f in fills[1:]] == (["exit"] if expected else [])
    if expected is not None:
        exit_fill = fills[1]
        assert (exit_fill.exit_rule, exit_fill.at, exit_fill.price) == expected
        assert broker.state.quantity("X") == 0
        statuses = {o.spec.exit_rule: o.status for o in broker.orders.values() if o.is_protective}
        other = "tp" if expected[0] == "sl" else "sl"
        assert statuses == {expected[0]: "filled", other: "canceled"}


def test_a_short_positions_levels_mirror_a_longs() -> None:
    broker = paper_broker()
    fills = play(broker, [CALM, (100, 106, 99, 101)], {0: [_with(STOP_5, TARGET_10, side="sell")]})
    assert [(f.side, f.price, f.exit_rule) for f in fills] == [("sell", 100, None), ("buy", 105.0, "sl")]
    broker = paper_broker()
    fills = play(broker, [CALM, (100, 101, 89, 95)], {0: [_with(STOP_5, TARGET_10, side="sell")]})
    assert [(f.price, f.exit_rule) for f in fills[1:]] == [(90.0, "tp")]


def test_exit_costs_stops_pay_slippage_targets_do_not() -> None:
    book = costs(slippage=0.0005)
    broker = paper_broker(book=book)
    fills = play(broker, [CALM, (94, 96, 93, 95)], {0: [_with(STOP_5)]})
    entry_price = 100 * 1.0005
    assert fills[1].raw_price == 94.0 and fills[1].price == pytest.approx(94 * (1 - 0.0005), rel=1e-12)
    broker = paper_broker(book=book)
    fills = play(broker, [CALM, (100, 115, 99, 108)], {0: [_with(TARGET_10)]})
    assert fills[1].price == pytest.approx(entry_price * 1.1, rel=1e-12)  # the target, from the fill price


def test_levels_come_from_the_fill_price_after_costs_and_bracket_targets_from_the_reward() -> None:
    broker = paper_broker(book=costs(slippage=0.01))
    bracket = ProtectiveLeg("br", "bracket", distance=2.0, reward_ratio=3.0)
    play(broker, [CALM], {0: [_with(bracket)]})
    legs = {o.spec.type: o.level for o in broker.open_orders()}
    assert legs == {"stop": pytest.approx(101 - 2.0), "limit": pytest.approx(101 + 6.0)}


def test_a_position_opened_at_the_open_faces_the_whole_bar() -> None:
    broker = paper_broker()
    fills = play(broker, [(100, 111, 94, 100)], {0: [_with(STOP_5, TARGET_10)]})
    assert [(f.at, f.price, f.exit_rule) for f in fills] == [("open", 100.0, None), ("intrabar", 95.0, "sl")]


def test_an_intrabar_entry_checks_only_its_stop_in_its_own_bar() -> None:
    legs = (
        ProtectiveLeg("sl", "stop_loss", fraction=0.05),
        ProtectiveLeg("tp", "take_profit", fraction=0.05),
    )
    broker = paper_broker()
    # Limit 99 fills inside the bar; the high 104 is above the target 103.95 but may have come first.
    fills = play(
        broker, [(100, 104, 98, 101), (101, 104.5, 100, 102)], {0: [_with(*legs, kind="limit", price=99.0)]}
    )
    assert [(f.at, f.price, f.time - T0 > 0) for f in fills] == [
        ("intrabar", 99.0, False),
        ("intrabar", 103.95, True),
    ]
    broker = paper_broker()
    fills = play(broker, [(100, 101, 93, 95)], {0: [_with(*legs, kind="limit", price=99.0)]})
    assert [(f.price, f.exit_rule) for f in fills] == [(99.0, None), (pytest.approx(94.05), "sl")]


def test_a_trailing_stop_ratchets_on_the_open_before_the_range_and_on_the_high_after_it() -> None:
    trail = ProtectiveLeg("trail", "trailing_stop", fraction=0.10)
    # Bar 0: entry at 100, high 105 -> the stop trails to 94.5 after the bar.
    # Bar 1 opens at 110: the stop first moves to 99, then the low 98.5 reaches it.
    broker = paper_broker()
    fills = play(broker, [(100, 105, 99, 104), (110, 111, 98.5, 100)], {0: [_with(trail)]})
    assert (fills[1].exit_rule, fills[1].price) == ("trail", pytest.approx(99.0))
    # Bar 1 opens at 106 (stop 95.4), trades to 120 and down to 95: the high is not assumed to come
    # first, so the stop stays at 95.4 for this bar and fills there (not at 108).
    broker = paper_broker()
    fills = play(broker, [(100, 105, 99, 104), (106, 120, 95, 118)], {0: [_with(trail)]})
    assert fills[1].price == pytest.approx(95.4)
    # Without a hit, the bar's high moves the stop for the next bar: 120 x 0.9 = 108.
    broker = paper_broker()
    play(broker, [(100, 105, 99, 104), (106, 120, 100, 118)], {0: [_with(trail)]})
    (leg,) = broker.open_orders()
    assert leg.level == pytest.approx(108.0) and leg.extreme == 120.0


def test_the_tightest_stop_and_nearest_target_act() -> None:
    legs = (
        ProtectiveLeg("wide", "stop_loss", fraction=0.10),
        ProtectiveLeg("tight", "stop_loss", distance=3.0),
        ProtectiveLeg("far", "take_profit", fraction=0.20),
    )
    broker = paper_broker()
    fills = play(broker, [CALM, (100, 101, 89, 90)], {0: [_with(*legs)]})
    assert (fills[1].exit_rule, fills[1].price) == ("tight", 97.0)


def test_exits_fill_before_entries_at_the_same_open_whatever_the_submission_order() -> None:
    book = AccountBook(cash=0.0, positions={"A": 100.0}, marks={"A": 50.0})
    buy_b = entry("b", symbol="B", size=SizeAtFill("percent_equity", 1.0))
    sell_a = OrderSpec(
        "a", "A", "sell", "market", ClosePosition(), "exit", valid_bars=None, exit_rule="signal"
    )
    outcome = match_bar(
        T0,
        {"A": MarketBar(50, 51, 49, 50), "B": MarketBar(25, 26, 24, 25)},
        [WorkingOrder(buy_b), WorkingOrder(sell_a)],
        book,
        costs(),
        ("B", "A"),
    )
    # Selling A first frees 5,000 of cash: B buys 200 units (entries first would have had no buying power).
    assert [(f.symbol, f.quantity) for f in outcome.fills] == [("A", 100.0), ("B", 200.0)]
    assert outcome.book.cash == pytest.approx(0.0) and outcome.book.positions == {"B": 200.0}


def test_an_entry_without_buying_power_is_rejected_and_a_strategy_entry_waits_for_a_flat_symbol() -> None:
    outcome = match_bar(
        T0,
        {"X": MarketBar(100, 101, 99, 100)},
        [WorkingOrder(entry("e", size=SizeAtFill("percent_equity", 0.5)))],
        AccountBook(cash=-10_000.0, positions={"Y": 100.0}, marks={"Y": 100.0}),  # equity 0
        costs(),
        ("X", "Y"),
    )
    assert outcome.fills == () and [(u.event, u.status) for u in outcome.updates] == [("reject", "rejected")]
    held = match_bar(
        T0,
        {"X": MarketBar(100, 101, 99, 100)},
        [WorkingOrder(entry("e"))],
        AccountBook(cash=10_000.0, positions={"X": 5.0}, marks={"X": 100.0}),
        costs(),
        ("X",),
    )
    assert held.fills == () and held.updates[-1].event == "expire"


def test_orders_expire_at_the_close_of_their_last_bar_and_market_entries_need_a_bar() -> None:
    broker = paper_broker()
    play(broker, [CALM], {0: [entry("e", kind="limit", price=90.0, valid_bars=2)]})
    assert broker.status("e").status == "accepted" and broker.orders["e"].bars_worked == 1
    play(broker, [CALM])
    assert broker.status("e").status == "expired"
    broker = paper_broker(symbols=("X", "Y"))
    play(broker, [{"Y": CALM}], {0: [entry("m")]})  # X has no bar: the market entry cannot fill
    assert broker.status("m").status == "expired"
    broker = paper_broker()
    play(broker, [CALM] * 5, {0: [entry("g", kind="limit", price=90.0, valid_bars=None)]})
    assert broker.status("g").status == "accepted"


def test_partial_fills_take_a_share_of_each_bars_volume_and_keep_working() -> None:
    broker = paper_broker(cash=100_000.0, book=costs(max_volume_share=0.1))
    order = OrderSpec("m", "X", "buy", "market", Quantity(250), "manual", valid_bars=None)
    fills = play(
        broker,
        [(100, 101, 99, 100, 1_000), (102, 103, 101, 102, 1_000), (104, 105, 103, 104, 1_000)],
        {0: [order]},
    )
    assert [(f.quantity, f.price) for f in fills] == [(100, 100), (100, 102), (50, 104)]
    report = broker.status("m")
    assert report.status == "filled" and report.filled_quantity == 250
    assert report.average_price == pytest.approx((100 * 100 + 100 * 102 + 50 * 104) / 250)
    close = OrderSpec("c", "X", "sell", "market", ClosePosition(), "manual", valid_bars=None)
    fills = play(broker, [(110, 111, 109, 110, 1_500), (112, 113, 111, 112, 10_000)], {0: [close]})
    assert [f.quantity for f in fills] == [150, 100] and broker.state.quantity("X") == 0


def test_an_order_sized_at_fill_keeps_its_first_sizing_across_partial_fills() -> None:
    broker = paper_broker(book=costs(max_volume_share=0.5))
    order = entry("e", size=SizeAtFill("percent_equity", 0.5), valid_bars=3)
    fills = play(broker, [(100, 101, 99, 100, 20), (50, 51, 49, 50, 1_000)], {0: [order]})
    # 5,000 / 100 = 50 units sized at the first fill; 10 of them fill (half of 20), 40 at the next open.
    assert [(f.quantity, f.price) for f in fills] == [(10, 100), (40, 50)]
    assert [u.status for u in broker.on_bar(T0, {}).updates] == []
    assert broker.status("e").status == "filled"


def test_a_quote_fills_market_orders_at_its_ask_or_bid_plus_slippage() -> None:
    broker = paper_broker(book=costs(slippage=0.0005, half_spread=0.01))
    broker.submit(entry("e"))
    (fill,) = broker.on_bar(T0, {"X": MarketBar.from_quote(99.9, 100.1)}).fills
    assert fill.price == pytest.approx(100.1 * 1.0005, rel=1e-12)  # the quote's spread, not the model's


def test_volume_share_slippage_scales_with_participation() -> None:
    broker = paper_broker(book=costs(volume_slippage=True, volume_impact=0.1))
    (fill,) = play(
        broker, [(100, 101, 99, 100, 1_000)], {0: [entry("e", size=SizeAtFill("fixed_quantity", 100))]}
    )
    assert fill.price == pytest.approx(100 * (1 + 0.1 * 100 / 1_000), rel=1e-12)


def test_a_market_exit_at_the_open_cancels_the_protective_legs() -> None:
    broker = paper_broker()
    play(broker, [CALM], {0: [_with(STOP_5, TARGET_10)]})
    exit_order = OrderSpec(
        "x", "X", "sell", "market", ClosePosition(), "exit", valid_bars=None, exit_rule="sig"
    )
    fills = play(broker, [(94, 95, 90, 92)], {0: [exit_order]})
    # The open gapped through the stop, but the market exit decided at the last close goes first.
    assert [(f.client_order_id, f.price, f.exit_rule) for f in fills] == [("x", 94.0, "sig")]
    assert not broker.open_orders()
    assert {o.reason for o in broker.orders.values() if o.is_protective} == {"position closed"}


def test_each_symbol_pays_its_own_or_its_asset_classes_costs() -> None:
    book = CostBook.from_assumptions(
        ExecutionAssumptions(fee_bps=10, slippage_bps=0),
        by_asset_class={"crypto": ExecutionAssumptions(fee_bps=25, slippage_bps=0)},
        asset_classes={"BTCUSD": "crypto"},
    )
    assert book.for_symbol("AAPL").fee_rate == pytest.approx(0.001)
    assert book.for_symbol("BTCUSD").fee_rate == pytest.approx(0.0025)
    broker = paper_broker(book=book, symbols=("AAPL", "BTCUSD"))
    rows = {"AAPL": (100, 101, 99, 100), "BTCUSD": (200, 201, 199, 200)}
    fills = play(broker, [rows], {0: [entry("a", symbol="AAPL"), entry("b", symbol="BTCUSD")]})
    assert [f.fee for f in fills] == [pytest.approx(10 * 100 * 0.001), pytest.approx(10 * 200 * 0.0025)]


def test_an_open_order_survives_its_stored_form() -> None:
    broker = paper_broker()
    trail = ProtectiveLeg("trail", "trailing_stop", distance=4.0)
    play(broker, [(100, 105, 99, 104)], {0: [_with(trail, STOP_5)]})
    legs = broker.open_orders()
    assert len(legs) == 2 and legs[0].level == pytest.approx(101.0)  # trailed from the high of 105
    for leg in legs:
        assert WorkingOrder.from_json(leg.to_json()) == leg


def test_reduce_only_orders_never_open_or_grow_a_position() -> None:
    broker = paper_broker()
    play(broker, [CALM], {0: [entry("e")]})
    grow = OrderSpec("g", "X", "buy", "market", Quantity(5), "manual", reduce_only=True, valid_bars=None)
    shrink = OrderSpec("s", "X", "sell", "market", Quantity(25), "manual", reduce_only=True, valid_bars=None)
    fills = play(broker, [CALM], {0: [grow, shrink]})
    # The buy would add to the long: canceled. The sell takes the 10 units held and no more.
    assert broker.status("g").status == "canceled"
    assert [(f.side, f.quantity) for f in fills] == [("sell", 10.0)] and broker.state.quantity("X") == 0
    assert broker.status("s").status == "canceled" and broker.status("s").filled_quantity == 10
