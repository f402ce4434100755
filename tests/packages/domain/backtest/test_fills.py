"""Table-driven fill and exit scenarios on a few hand-written bars each.

Every expectation is worked out by hand from the bar prices in the scenario (see the comments), not
read back from the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import FinerBars, UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.strategy.plan import ExitPlan, OrderPlan, RotationPlan, SidePlan, SizingPlan
from tests.packages.domain.backtest.kit import (
    NO_COSTS,
    bars_from_rows,
    flags,
    plan,
    side,
    trades_of,
    values_at,
)

FLAT = (100.0, 101.0, 99.0, 100.0)
# Bars for market-order scenarios: signal at 1, exit signal at 3.
TREND = [
    FLAT,  # 0
    (100.0, 102.0, 99.0, 101.0),  # 1: entry signal (close 101)
    (102.0, 104.0, 101.0, 103.0),  # 2: next open 102
    (103.0, 105.0, 102.0, 104.0),  # 3: exit signal (close 104)
    (105.0, 106.0, 104.0, 105.0),  # 4: next open 105
    (105.0, 106.0, 104.0, 105.0),  # 5
]


def exit_on(n: int, bars: list[int], name: str = "signal_exit") -> ExitPlan:
    return ExitPlan(name, "signal", signal=flags(n, bars))


@dataclass(frozen=True)
class Scenario:
    name: str
    rows: list[tuple[float, ...]]
    sides: Callable[[int], list[SidePlan]]
    # (entry_bar, entry_price, exit_bar, exit_price, reason)
    expected: list[tuple[int, float, int, float, str]]
    assumptions: ExecutionAssumptions = NO_COSTS
    quantity: float | None = 10.0
    finer: Callable[[UniverseBars], FinerBars] | None = None
    plan_kwargs: dict[str, object] = field(default_factory=dict)


def limit_long(n: int, price: float, valid: int = 1, at: int = 1) -> list[SidePlan]:
    order = OrderPlan("limit", values_at(n, {at: price}), valid)
    return [side(flags(n, [at]), [exit_on(n, [n - 3])], order=order)]


def with_rows(rows: list[tuple[float, ...]], **changes: tuple[float, ...]) -> list[tuple[float, ...]]:
    out = list(rows)
    for key, row in changes.items():
        out[int(key.removeprefix("b"))] = row
    return out


STOP_ROWS = [
    FLAT,  # 0
    FLAT,  # 1: entry signal
    (100.0, 102.0, 99.0, 101.0),  # 2: filled at the open, 100
    (99.0, 100.0, 94.0, 96.0),  # 3: low 94 crosses the 5% stop at 95
    (96.0, 97.0, 95.0, 96.0),  # 4
    (96.0, 97.0, 95.0, 96.0),  # 5
]
PATH_ROWS = [FLAT, FLAT, (100.0, 102.0, 99.0, 101.0), (100.0, 111.0, 94.0, 100.0), FLAT, FLAT]


def sl(fraction: float = 0.05) -> ExitPlan:
    return ExitPlan("sl", "stop_loss", fraction=fraction)


def tp(fraction: float = 0.10) -> ExitPlan:
    return ExitPlan("tp", "take_profit", fraction=fraction)


def fine_path(path: list[tuple[float, float, float, float]]) -> Callable[[UniverseBars], FinerBars]:
    """Finer bars for bar 3 only (the other bars have none)."""

    def build(bars: UniverseBars) -> FinerBars:
        starts = np.zeros(bars.n_bars + 1, dtype=np.int64)
        starts[4:] = len(path)
        columns = np.array(path, dtype=float)
        return FinerBars(starts, *(columns[:, k : k + 1] for k in range(4)))

    return build


SCENARIOS = [
    Scenario(
        "next_open_market",
        TREND,
        lambda n: [side(flags(n, [1]), [exit_on(n, [3])])],
        [(2, 102.0, 4, 105.0, "signal_exit")],
    ),
    Scenario(
        "trade_on_close",
        TREND,
        lambda n: [side(flags(n, [1]), [exit_on(n, [3])])],
        [(1, 101.0, 3, 104.0, "signal_exit")],
        ExecutionAssumptions(fee_bps=0, slippage_bps=0, trade_on_close=True),
    ),
    Scenario(
        "limit_fills_when_low_trades_through",
        [
            FLAT,
            FLAT,
            (100.0, 101.0, 97.0, 99.0),
            (99.0, 100.0, 98.0, 99.0),
            (101.0, 102.0, 100.0, 101.0),
            FLAT,
        ],
        lambda n: limit_long(n, 98.0),
        [(2, 98.0, 4, 101.0, "signal_exit")],
    ),
    Scenario(
        "limit_not_reached_is_cancelled",
        # Bar 2 stays above 98; bar 3 would fill but the order only worked for one bar.
        [FLAT, FLAT, (100.0, 101.0, 98.5, 99.0), (99.0, 100.0, 97.0, 99.0), FLAT, FLAT],
        lambda n: limit_long(n, 98.0),
        [],
    ),
    Scenario(
        "limit_touch_does_not_fill_by_default",
        [FLAT, FLAT, (100.0, 101.0, 98.0, 99.0), FLAT, FLAT, FLAT],
        lambda n: limit_long(n, 98.0),
        [],
    ),
    Scenario(
        "limit_touch_fills_when_allowed",
        [FLAT, FLAT, (100.0, 101.0, 98.0, 99.0), FLAT, (101.0, 102.0, 100.0, 101.0), FLAT],
        lambda n: limit_long(n, 98.0),
        [(2, 98.0, 4, 101.0, "signal_exit")],
        ExecutionAssumptions(fee_bps=0, slippage_bps=0, limit_fill_on_touch=True),
    ),
    Scenario(
        "limit_gap_fills_at_the_better_open",
        [FLAT, FLAT, (96.0, 97.0, 95.0, 96.0), FLAT, (101.0, 102.0, 100.0, 101.0), FLAT],
        lambda n: limit_long(n, 98.0),
        [(2, 96.0, 4, 101.0, "signal_exit")],
    ),
    Scenario(
        "limit_works_for_valid_bars",
        [
            FLAT,
            FLAT,
            (100.0, 101.0, 99.0, 100.0),
            (100.0, 101.0, 99.0, 100.0),
            (99.0, 100.0, 97.5, 99.0),
            FLAT,
        ],
        lambda n: [side(flags(n, [1]), [], order=OrderPlan("limit", values_at(n, {1: 98.0}), 3))],
        [(4, 98.0, 5, 100.0, "end_of_data")],
    ),
    Scenario(
        "limit_expires_after_valid_bars",
        [
            FLAT,
            FLAT,
            (100.0, 101.0, 99.0, 100.0),
            (100.0, 101.0, 99.0, 100.0),
            (99.0, 100.0, 97.5, 99.0),
            FLAT,
        ],
        lambda n: [side(flags(n, [1]), [], order=OrderPlan("limit", values_at(n, {1: 98.0}), 2))],
        [],
    ),
    Scenario(
        "stop_entry_fills_at_the_stop",
        [FLAT, FLAT, (101.0, 104.0, 100.0, 103.5), FLAT, FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [], order=OrderPlan("stop", values_at(n, {1: 103.0}), 1))],
        [(2, 103.0, 5, 100.0, "end_of_data")],
    ),
    Scenario(
        "stop_entry_gap_fills_at_the_worse_open",
        [FLAT, FLAT, (105.0, 106.0, 104.0, 105.0), FLAT, FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [], order=OrderPlan("stop", values_at(n, {1: 103.0}), 1))],
        [(2, 105.0, 5, 100.0, "end_of_data")],
    ),
    Scenario(
        "short_limit_fills_when_high_trades_through",
        [
            FLAT,
            FLAT,
            (100.0, 103.0, 99.0, 101.0),
            (100.0, 101.0, 99.0, 100.0),
            (97.0, 98.0, 96.0, 97.0),
            FLAT,
        ],
        lambda n: [
            side(
                flags(n, [1]),
                [exit_on(n, [3])],
                direction="short",
                order=OrderPlan("limit", values_at(n, {1: 102.0}), 1),
            )
        ],
        [(2, 102.0, 4, 97.0, "signal_exit")],
    ),
    Scenario(
        "stop_loss_inside_bar_fills_at_the_stop",
        STOP_ROWS,
        lambda n: [side(flags(n, [1]), [sl()])],
        [(2, 100.0, 3, 95.0, "sl")],
    ),
    Scenario(
        "stop_loss_checked_on_the_entry_bar",
        with_rows(STOP_ROWS, b2=(100.0, 101.0, 94.0, 96.0)),
        lambda n: [side(flags(n, [1]), [sl()])],
        [(2, 100.0, 2, 95.0, "sl")],
    ),
    Scenario(
        "gap_through_stop_fills_at_the_open",
        with_rows(STOP_ROWS, b3=(90.0, 92.0, 89.0, 91.0)),
        lambda n: [side(flags(n, [1]), [sl()])],
        [(2, 100.0, 3, 90.0, "sl")],
    ),
    Scenario(
        "short_stop_loss_above",
        [FLAT, FLAT, (100.0, 101.0, 99.0, 100.0), (101.0, 106.0, 100.0, 104.0), FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [sl()], direction="short")],
        [(2, 100.0, 3, 105.0, "sl")],
    ),
    Scenario(
        "take_profit_fills_at_the_target",
        [FLAT, FLAT, (100.0, 102.0, 99.0, 101.0), (105.0, 111.0, 104.0, 109.0), FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [tp()])],
        [(2, 100.0, 3, 110.0, "tp")],
    ),
    Scenario(
        "take_profit_touch_does_not_fill_by_default",
        [FLAT, FLAT, (100.0, 102.0, 99.0, 101.0), (105.0, 110.0, 104.0, 109.0), FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [tp()])],
        [(2, 100.0, 5, 100.0, "end_of_data")],
    ),
    Scenario(
        "take_profit_gap_fills_at_the_better_open",
        [FLAT, FLAT, (100.0, 102.0, 99.0, 101.0), (112.0, 113.0, 111.0, 112.0), FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [tp()])],
        [(2, 100.0, 3, 112.0, "tp")],
    ),
    Scenario(
        "stop_and_target_in_one_bar_assumes_the_stop",
        PATH_ROWS,
        lambda n: [side(flags(n, [1]), [sl(), tp()])],
        [(2, 100.0, 3, 95.0, "sl")],
    ),
    Scenario(
        "finer_bars_show_the_target_first",
        PATH_ROWS,
        lambda n: [side(flags(n, [1]), [sl(), tp()])],
        [(2, 100.0, 3, 110.0, "tp")],
        finer=fine_path([(100.0, 111.0, 99.5, 110.5), (110.5, 110.6, 94.0, 95.0)]),
    ),
    Scenario(
        "finer_bars_show_the_stop_first",
        PATH_ROWS,
        lambda n: [side(flags(n, [1]), [sl(), tp()])],
        [(2, 100.0, 3, 95.0, "sl")],
        finer=fine_path([(100.0, 100.5, 94.0, 95.0), (95.0, 111.0, 95.0, 110.0)]),
    ),
    Scenario(
        "bracket_target_at_reward_ratio",
        [FLAT, FLAT, (100.0, 102.0, 99.0, 101.0), (101.0, 111.0, 100.0, 109.0), FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [ExitPlan("bracket", "bracket", fraction=0.05, reward_ratio=2.0)])],
        [(2, 100.0, 3, 110.0, "bracket")],
    ),
    Scenario(
        "stop_distance_in_points_read_at_the_signal_bar",
        STOP_ROWS,
        lambda n: [side(flags(n, [1]), [ExitPlan("sl_points", "stop_loss", distance=np.full((n, 1), 4.0))])],
        [(2, 100.0, 3, 96.0, "sl_points")],
    ),
    Scenario(
        "trailing_stop_ratchets_after_each_bar",
        [
            FLAT,
            FLAT,  # 1: signal
            (100.0, 105.0, 99.0, 104.0),  # 2: entry 100, level 95 -> ratchets to 105 * 0.95 = 99.75
            (104.0, 110.0, 99.8, 109.0),  # 3: low 99.8 stays above 99.75; then level 110 * 0.95 = 104.5
            (108.0, 109.0, 104.0, 105.0),  # 4: low 104 hits 104.5
            FLAT,
        ],
        lambda n: [side(flags(n, [1]), [ExitPlan("trail", "trailing_stop", fraction=0.05)])],
        [(2, 100.0, 4, 104.5, "trail")],
    ),
    Scenario(
        "time_exit_after_n_bars",
        [FLAT] * 4 + [(100.0, 101.0, 99.0, 100.0), (103.0, 104.0, 102.0, 103.0), FLAT],
        lambda n: [side(flags(n, [1]), [ExitPlan("hold3", "time_exit", bars=3)])],
        [(2, 100.0, 5, 103.0, "hold3")],
    ),
    Scenario(
        "time_exit_on_close",
        [FLAT] * 4 + [(100.0, 101.0, 99.0, 103.0), FLAT, FLAT],
        lambda n: [side(flags(n, [1]), [ExitPlan("hold3", "time_exit", bars=3)])],
        [(1, 100.0, 4, 103.0, "hold3")],
        ExecutionAssumptions(fee_bps=0, slippage_bps=0, trade_on_close=True),
    ),
    Scenario(
        "signals_before_warmup_are_ignored",
        TREND,
        lambda n: [side(flags(n, [0, 2]), [exit_on(n, [3])])],
        [(3, 103.0, 4, 105.0, "signal_exit")],
        plan_kwargs={"warmup": 1},
    ),
    Scenario(
        "reversal_long_to_short_at_one_open",
        [*TREND, (104.0, 105.0, 103.0, 104.0), (100.0, 101.0, 99.0, 100.0)],
        lambda n: [
            side(flags(n, [1]), [exit_on(n, [3], "cross_down")]),
            side(flags(n, [3]), [exit_on(n, [6], "cross_up")], direction="short"),
        ],
        [(2, 102.0, 4, 105.0, "cross_down"), (4, 105.0, 7, 100.0, "cross_up")],
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_fill_scenario(scenario: Scenario) -> None:
    bars = bars_from_rows(scenario.rows)
    finer = scenario.finer(bars) if scenario.finer else None
    result = simulate(
        plan(bars, scenario.sides(bars.n_bars), **scenario.plan_kwargs),  # type: ignore[arg-type]
        bars,
        scenario.assumptions,
        finer_bars=finer,
    )
    got = [(t.entry_bar, t.entry_price, t.exit_bar, t.exit_price, t.reason) for t in trades_of(result)]
    assert got == [
        (eb, pytest.approx(ep), xb, pytest.approx(xp), r) for eb, ep, xb, xp, r in scenario.expected
    ]
    if scenario.quantity is not None:
        assert all(t.quantity == scenario.quantity for t in trades_of(result))


def test_fill_never_before_the_bar_after_the_signal() -> None:
    bars = bars_from_rows(TREND)
    result = simulate(plan(bars, [side(flags(6, [1]), [exit_on(6, [3])])]), bars, NO_COSTS)
    orders = result.order_columns()
    assert list(orders["bar"]) == [2, 4]
    assert list(orders["signal_bar"]) == [1, 3]
    assert list(orders["at"]) == ["open", "open"]


# --- costs -----------------------------------------------------------------------------------------


def market_round_trip(assumptions: ExecutionAssumptions, rows: list[tuple[float, ...]] = TREND):
    bars = bars_from_rows(rows)
    return simulate(plan(bars, [side(flags(6, [1]), [exit_on(6, [3])])]), bars, assumptions)


def test_fees_charged_on_both_legs() -> None:
    result = market_round_trip(ExecutionAssumptions(fee_bps=10, fee_fixed=1.0, slippage_bps=0))
    entry_fee = 10 * 102.0 * 0.001 + 1.0
    exit_fee = 10 * 105.0 * 0.001 + 1.0
    trade = trades_of(result)[0]
    assert trade.pnl == pytest.approx(10 * (105.0 - 102.0) - entry_fee - exit_fee)
    assert result.metrics["fees_paid"] == pytest.approx(entry_fee + exit_fee)
    assert result.final_equity == pytest.approx(100_000 + trade.pnl)


def test_slippage_in_bps_moves_both_fills_against_the_trade() -> None:
    result = market_round_trip(ExecutionAssumptions(fee_bps=0, slippage_bps=50))
    trade = trades_of(result)[0]
    assert trade.entry_price == pytest.approx(102.0 * 1.005)
    assert trade.exit_price == pytest.approx(105.0 * 0.995)
    assert result.metrics["slippage_paid"] == pytest.approx(10 * 102.0 * 0.005 + 10 * 105.0 * 0.005)


def test_slippage_by_share_of_bar_volume() -> None:
    rows = [(*row, 2_000.0 if i == 2 else 1_000.0) for i, row in enumerate(TREND)]
    result = market_round_trip(
        ExecutionAssumptions(fee_bps=0, slippage_model="volume_share", volume_impact=0.5), rows
    )
    trade = trades_of(result)[0]
    # 10 units of 2,000 traded at bar 2 (0.5%) times impact 0.5; 10 of 1,000 at bar 4 (1%).
    assert trade.entry_price == pytest.approx(102.0 * (1 + 0.5 * 10 / 2_000))
    assert trade.exit_price == pytest.approx(105.0 * (1 - 0.5 * 10 / 1_000))


def test_spread_paid_on_market_fills_and_limits_need_the_ask() -> None:
    result = market_round_trip(ExecutionAssumptions(fee_bps=0, slippage_bps=0, spread_bps=100))
    trade = trades_of(result)[0]
    assert trade.entry_price == pytest.approx(102.0 * 1.005)
    assert trade.exit_price == pytest.approx(105.0 * 0.995)
    # The ask low 97.6 * 1.005 = 98.09 stays above a 98 limit: no fill although the mid traded below it.
    rows = [FLAT, FLAT, (100.0, 101.0, 97.6, 99.0), FLAT, FLAT, FLAT]
    bars = bars_from_rows(rows)
    spread = ExecutionAssumptions(fee_bps=0, slippage_bps=0, spread_bps=100)
    assert simulate(plan(bars, limit_long(6, 98.0)), bars, spread).n_trades == 0


def test_short_pays_borrow_on_marked_notional() -> None:
    rows = [FLAT, FLAT, (100.0, 101.0, 97.0, 98.0), (98.0, 99.0, 95.0, 96.0), (95.0, 96.0, 94.0, 95.0), FLAT]
    bars = bars_from_rows(rows)
    assumptions = ExecutionAssumptions(fee_bps=0, slippage_bps=0, borrow_rate=0.252, periods_per_year=252.0)
    result = simulate(
        plan(bars, [side(flags(6, [1]), [exit_on(6, [3])], direction="short")]), bars, assumptions
    )
    trade = trades_of(result)[0]
    borrow = 10 * 98.0 * 0.001 + 10 * 96.0 * 0.001  # held through the closes of bars 2 and 3
    assert (trade.entry_price, trade.exit_price) == (100.0, 95.0)
    assert trade.pnl == pytest.approx(10 * (100.0 - 95.0) - borrow)
    assert result.metrics["borrow_paid"] == pytest.approx(borrow)
    assert result.final_equity == pytest.approx(100_000 + trade.pnl)


# --- sizing and portfolio --------------------------------------------------------------------------


def entry_quantity(sizing: SizingPlan, assumptions: ExecutionAssumptions = NO_COSTS) -> float:
    bars = bars_from_rows(TREND)
    result = simulate(plan(bars, [side(flags(6, [1]), [exit_on(6, [3])], sizing=sizing)]), bars, assumptions)
    return trades_of(result)[0].quantity


@pytest.mark.parametrize(
    ("sizing", "assumptions", "expected"),
    [
        (SizingPlan("fixed_quantity", 7.0), NO_COSTS, 7.0),
        (SizingPlan("fixed_cash", 5_100.0), NO_COSTS, 50.0),
        (SizingPlan("percent_equity", 0.5), NO_COSTS, 0.5 * 100_000 / 102.0),
        (
            SizingPlan("percent_equity", 0.5),
            ExecutionAssumptions(fee_bps=10, slippage_bps=0),
            0.5 * 100_000 / (102.0 * 1.001),
        ),
        (SizingPlan("risk_per_trade", 0.01, stop_distance=np.full((6, 1), 2.0)), NO_COSTS, 1_000 / 2.0),
        (
            SizingPlan("volatility_target", 0.2, volatility=np.full((6, 1), 0.4)),
            NO_COSTS,
            0.5 * 100_000 / 102.0,
        ),
        # No leverage: 150% of equity is capped at what the cash buys ...
        (SizingPlan("percent_equity", 1.5), NO_COSTS, 100_000 / 102.0),
        # ... unless margin is allowed.
        (
            SizingPlan("percent_equity", 1.5),
            ExecutionAssumptions(fee_bps=0, slippage_bps=0, allow_margin=True, margin_leverage=2.0),
            1.5 * 100_000 / 102.0,
        ),
        (
            SizingPlan("percent_equity", 0.5),
            ExecutionAssumptions(fee_bps=0, slippage_bps=0, quantity_step=1),
            490.0,
        ),
    ],
    ids=[
        "fixed_quantity",
        "fixed_cash",
        "percent_equity",
        "percent_equity_net_of_fees",
        "risk_per_trade",
        "volatility_target",
        "no_leverage_cap",
        "margin",
        "whole_units",
    ],
)
def test_sizing_modes(sizing: SizingPlan, assumptions: ExecutionAssumptions, expected: float) -> None:
    assert entry_quantity(sizing, assumptions) == pytest.approx(expected)


def test_order_that_cannot_be_sized_is_rejected() -> None:
    bars = bars_from_rows(TREND)
    assumptions = ExecutionAssumptions(fee_bps=0, slippage_bps=0, quantity_step=1_000)
    result = simulate(
        plan(bars, [side(flags(6, [1]), [exit_on(6, [3])], sizing=SizingPlan("percent_equity", 1.0))]),
        bars,
        assumptions,
    )
    assert result.n_trades == 0
    assert result.metrics["rejected_orders"] == 1


def three_symbols(rows_a, rows_b, rows_c) -> UniverseBars:
    return bars_from_rows([rows_a, rows_b, rows_c], symbols=("A", "B", "C"))


def test_max_open_positions_takes_the_first_symbols() -> None:
    rows = [FLAT, FLAT, (100.0, 101.0, 99.0, 100.0), FLAT]
    bars = three_symbols(rows, rows, rows)
    entry = np.zeros((4, 3), dtype=bool)
    entry[1, :] = True
    result = simulate(plan(bars, [side(entry)], max_open=2), bars, NO_COSTS)
    assert [t.symbol for t in trades_of(result)] == ["A", "B"]
    assert all(t.reason == "end_of_data" for t in trades_of(result))


def test_shared_cash_limits_the_second_position() -> None:
    rows = [FLAT, FLAT, (100.0, 101.0, 99.0, 100.0), FLAT]
    bars = three_symbols(rows, rows, rows)
    entry = np.zeros((4, 3), dtype=bool)
    entry[1, :2] = True
    sizing = SizingPlan("fixed_cash", 60_000.0)
    result = simulate(plan(bars, [side(entry, sizing=sizing)], max_open=3), bars, NO_COSTS)
    quantities = [t.quantity for t in trades_of(result)]
    # A takes 600 units for 60,000; B gets what is left, 40,000 / 100.
    assert quantities == [pytest.approx(600.0), pytest.approx(400.0)]


def test_rotation_holds_the_best_scored_symbol() -> None:
    n = 7
    bars = three_symbols([FLAT] * n, [FLAT] * n, [FLAT] * n)
    score = np.zeros((n, 3))
    score[:, 0] = [3, 3, 3, 1, 1, 1, 1]
    score[:, 1] = [2, 2, 2, 5, 5, 5, 5]
    score[:, 2] = [1, 1, 1, 2, 2, 2, 2]
    entry = np.ones((n, 3), dtype=bool)
    rotation = RotationPlan(score=score, top_n=1, every_bars=2)
    result = simulate(
        plan(
            bars,
            [side(entry, sizing=SizingPlan("percent_equity", 0.9))],
            max_open=1,
            rotation=rotation,
            warmup=1,
        ),
        bars,
        NO_COSTS,
    )
    # Rebalances at the closes of bars 1, 3, 5: A is best at 1, B from 3 on.
    got = [(t.symbol, t.entry_bar, t.exit_bar, t.reason) for t in trades_of(result)]
    assert got == [("A", 2, 4, "rotation"), ("B", 4, 6, "end_of_data")]


def test_open_positions_are_reported_when_not_closed_at_the_end() -> None:
    bars = bars_from_rows(TREND)
    assumptions = ExecutionAssumptions(fee_bps=10, slippage_bps=0, close_at_end=False)
    result = simulate(plan(bars, [side(flags(6, [1]))]), bars, assumptions)
    columns = result.trade_columns()
    assert list(columns["is_open"]) == [True]
    assert list(columns["exit_reason"]) == ["open"]
    assert result.metrics["trades"] == 0 and result.metrics["open_trades"] == 1
    # Marked at the last close, without an exit fee.
    assert result.final_equity == pytest.approx(100_000 + 10 * (105.0 - 102.0) - 10 * 102.0 * 0.001)


def test_every_assumption_is_echoed_in_the_result() -> None:
    assumptions = ExecutionAssumptions(fee_bps=3, spread_bps=1, borrow_rate=0.05, trade_on_close=True)
    result = market_round_trip(assumptions)
    echoed = result.summary_dict()["assumptions"]
    assert echoed == assumptions.model_dump(mode="json")
    assert set(echoed) == set(ExecutionAssumptions.model_fields)


def test_liquidation_closes_everything_at_the_next_open() -> None:
    rows = [
        FLAT,
        FLAT,
        (100.0, 101.0, 99.0, 100.0),
        (150.0, 172.0, 149.0, 170.0),
        (175.0, 176.0, 174.0, 175.0),
        FLAT,
    ]
    bars = bars_from_rows(rows)
    margin = ExecutionAssumptions(fee_bps=0, slippage_bps=0, allow_margin=True, margin_leverage=2.0)
    sizing = SizingPlan("fixed_quantity", 1_500.0)
    result = simulate(plan(bars, [side(flags(6, [1]), direction="short", sizing=sizing)]), bars, margin)
    # Short 1,500 at 100; at the close of bar 3 (170) equity is 100,000 - 1,500 * 70 < 0.
    assert [(t.exit_bar, t.exit_price, t.reason) for t in trades_of(result)] == [(4, 175.0, "liquidation")]
    assert result.metrics["liquidated"] is True
    assert result.final_equity == pytest.approx(100_000 - 1_500 * 75.0)


def test_missing_bars_are_skipped_and_marked_at_the_last_close() -> None:
    nan = (np.nan, np.nan, np.nan, np.nan)
    a_rows = [FLAT, FLAT, (100.0, 101.0, 99.0, 100.0), nan, (104.0, 105.0, 103.0, 104.0), FLAT]
    b_rows = [FLAT, FLAT, (50.0, 51.0, 49.0, 50.0), (52.0, 53.0, 51.0, 52.0), (53.0, 54.0, 52.0, 53.0), FLAT]
    bars = bars_from_rows([a_rows, b_rows], symbols=("A", "B"))
    entry = np.zeros((6, 2), dtype=bool)
    entry[1, :] = True
    leave = np.zeros((6, 2), dtype=bool)
    leave[2, 0] = True  # A's exit would fill at bar 3, where A has no bar: it waits for bar 4
    result = simulate(
        plan(bars, [side(entry, [ExitPlan("x", "signal", signal=leave)])], max_open=2), bars, NO_COSTS
    )
    got = {t.symbol: (t.entry_bar, t.exit_bar, t.exit_price, t.reason) for t in trades_of(result)}
    assert got == {"A": (2, 4, 104.0, "x"), "B": (2, 5, 100.0, "end_of_data")}
    # At bar 3, A is marked at its last close (100) and B at 52.
    assert result.equity[3] == pytest.approx(100_000 + 10 * (100.0 - 100.0) + 10 * (52.0 - 50.0))
