"""One cycle's decisions from hand-set signals: entries, exits, reversals, limits on open positions,
time exits, rotation, idempotency, the kill switch, a daily-loss halt and manual actions through the gate.

Signals are set by hand (``BarSignals`` of a made-up bar), so each expected decision follows from the
engine's rules without running it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from packages.domain.trading.costs import CostBook
from packages.domain.trading.manual import ManualAction
from packages.domain.trading.orders import ClosePosition, OrderSpec, SizeAtFill, client_order_id
from packages.domain.trading.risk import KillSwitch, RiskLimits, TradingStatus
from packages.domain.trading.round_trips import PositionMeta
from packages.domain.trading.runtime import CycleInput, CycleOutput, run_cycle
from packages.domain.trading.simulated_broker import AccountBook, WorkingOrder
from packages.domain.trading.window import BarSignals, ExitRuleAtBar, RotationAtBar, SideAtBar
from tests.packages.domain.trading.trading_kit import DAY, T0

SYMBOLS = ("A", "B", "C")
INDEX = T0 + DAY * np.arange(10, dtype=np.int64)
NOW = int(INDEX[-1])


def flags(*on: str) -> np.ndarray:
    return np.array([s in on for s in SYMBOLS])


def side(
    name: str = "long",
    entry: np.ndarray | None = None,
    exits: tuple[ExitRuleAtBar, ...] = (),
    kind: str = "market",
    price: np.ndarray | None = None,
) -> SideAtBar:
    return SideAtBar(
        side=name,  # type: ignore[arg-type]
        entry=flags() if entry is None else entry,
        order_kind=kind,  # type: ignore[arg-type]
        order_price=price,
        valid_bars=3 if kind != "market" else 1,
        sizing_mode="percent_equity",
        sizing_value=0.3,
        sizing_reference=None,
        exits=exits,
    )


def signals(*sides: SideAtBar, max_open: int = 3, rotation: RotationAtBar | None = None) -> BarSignals:
    return BarSignals(
        time=NOW,
        index=INDEX,
        symbols=SYMBOLS,
        close=np.array([10.0, 20.0, 30.0]),
        sides=sides,
        max_open_positions=max_open,
        rotation=rotation,
        warmed_up=True,
    )


def held(symbol: str, side_name: str = "long", *, bars_ago: int = 3, at: str = "open") -> PositionMeta:
    time = int(INDEX[-1 - bars_ago])
    return PositionMeta(symbol, side_name, time, at, time - DAY)  # type: ignore[arg-type]


def cycle(
    sig: BarSignals,
    *,
    positions: dict[str, float] | None = None,
    meta: dict[str, PositionMeta] | None = None,
    orders: tuple[WorkingOrder, ...] = (),
    cash: float = 10_000.0,
    **kw: object,
) -> CycleOutput:
    positions = positions or {}
    marks = {s: float(sig.close[SYMBOLS.index(s)]) for s in positions}
    return run_cycle(
        CycleInput(
            deployment_id="dep-1",
            signals=sig,
            bar_number=kw.pop("bar_number", 0),  # type: ignore[arg-type]
            book=AccountBook(cash, positions, marks),
            positions=meta
            if meta is not None
            else {s: held(s, "long" if q > 0 else "short") for s, q in positions.items()},
            open_orders=orders,
            costs=CostBook(),
            status=kw.pop(
                "status", TradingStatus.starting(cash + sum(q * marks[s] for s, q in positions.items()))
            ),  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )
    )


def kinds(out: CycleOutput) -> list[tuple[str, str, str | None]]:
    return [(o.symbol, o.purpose, o.exit_rule) for o in out.submit]


SIGNAL_EXIT = ExitRuleAtBar("sell_signal", "signal", signal=flags("A", "B", "C"))


def test_an_entry_signal_becomes_an_order_sized_at_fill_with_its_protective_legs() -> None:
    legs = (
        ExitRuleAtBar("stop", "stop_loss", distance=np.array([1.5, 2.5, 3.5])),
        ExitRuleAtBar("target", "take_profit", fraction=0.08),
        SIGNAL_EXIT,
    )
    out = cycle(signals(side(entry=flags("B"), exits=legs)))
    (order,) = out.submit
    assert order.client_order_id == client_order_id("dep-1", NOW, "B", "entry", 0)
    assert (order.side, order.type, order.valid_bars, order.signal_time) == ("buy", "market", 1, NOW)
    assert order.size == SizeAtFill("percent_equity", 0.3)
    assert [(leg.rule, leg.distance, leg.fraction) for leg in order.protective] == [
        ("stop", 2.5, None),
        ("target", None, 0.08),
    ]
    assert [(r.kind, r.symbol, r.submitted) for r in out.signals] == [("entry", "B", True)]


def test_a_retried_cycle_asks_for_the_same_orders_and_none_once_they_work() -> None:
    sig = signals(side(entry=flags("A", "C")))
    first, again = cycle(sig), cycle(sig)
    assert first.submit == again.submit and len(first.submit) == 2
    working = tuple(WorkingOrder(order) for order in first.submit)
    assert cycle(sig, orders=working).submit == ()


def test_exit_signals_wait_for_the_bar_after_the_entry_signal() -> None:
    sig = signals(side(exits=(SIGNAL_EXIT,)))
    out = cycle(sig, positions={"A": 5.0})
    assert kinds(out) == [("A", "exit", "sell_signal")]
    assert isinstance(out.submit[0].size, ClosePosition) and out.submit[0].valid_bars is None
    just_entered = {"A": PositionMeta("A", "long", NOW, "open", NOW)}
    assert cycle(sig, positions={"A": 5.0}, meta=just_entered).submit == ()


@pytest.mark.parametrize(
    ("bars_ago", "at", "fires"),
    [(2, "open", True), (2, "intrabar", False), (3, "intrabar", True), (1, "open", False)],
)
def test_time_exits_count_bars_from_the_fill(bars_ago: int, at: str, fires: bool) -> None:
    # Held for 3 bars: filled at the open two bars ago (that bar, the one between, this one).
    sig = signals(side(exits=(ExitRuleAtBar("max_hold", "time_exit", bars=3),)))
    out = cycle(sig, positions={"A": 5.0}, meta={"A": held("A", bars_ago=bars_ago, at=at)})
    assert kinds(out) == ([("A", "exit", "max_hold")] if fires else [])


def test_a_position_reverses_only_when_its_exit_is_decided() -> None:
    sides = (side("long", exits=(SIGNAL_EXIT,)), side("short", entry=flags("A")))
    out = cycle(signals(*sides), positions={"A": 5.0})
    assert kinds(out) == [("A", "exit", "sell_signal"), ("A", "entry", None)]
    assert out.submit[1].side == "sell"
    no_exit = (side("long"), side("short", entry=flags("A")))
    assert cycle(signals(*no_exit), positions={"A": 5.0}).submit == ()


def test_max_open_positions_counts_positions_and_working_entries() -> None:
    sig = signals(side(entry=flags("A", "B", "C")), max_open=2)
    assert kinds(cycle(sig, positions={"A": 5.0})) == [("B", "entry", None)]
    working = (
        WorkingOrder(
            OrderSpec("w", "C", "buy", "limit", SizeAtFill("fixed_quantity", 1), "entry", limit_price=29.0)
        ),
    )
    assert cycle(sig, positions={"A": 5.0}, orders=working).submit == ()
    assert kinds(cycle(sig)) == [("A", "entry", None), ("B", "entry", None)]


def test_a_limit_entry_without_a_price_is_skipped_for_its_symbol() -> None:
    prices = np.array([np.nan, 19.5, 29.0])
    out = cycle(signals(side(entry=flags("A", "B"), kind="limit", price=prices)))
    (order,) = out.submit
    assert (order.symbol, order.type, order.limit_price, order.valid_bars) == ("B", "limit", 19.5, 3)


def test_rotation_holds_the_best_scored_symbols_every_n_bars() -> None:
    rotation = RotationAtBar(score=np.array([0.1, 0.5, 0.3]), top_n=1, every_bars=5)
    sig = signals(side(entry=flags("A", "B", "C")), max_open=1, rotation=rotation)
    assert cycle(sig, positions={"A": 5.0}, bar_number=3).submit == ()
    out = cycle(sig, positions={"A": 5.0}, bar_number=10)
    assert kinds(out) == [("A", "exit", "rotation"), ("B", "entry", None)]
    assert kinds(cycle(sig, positions={"B": 5.0}, bar_number=10)) == []


def test_a_kill_switch_refuses_what_adds_risk_but_lets_exits_through() -> None:
    sig = signals(side(entry=flags("B"), exits=(SIGNAL_EXIT,)))
    working = (
        WorkingOrder(
            OrderSpec("w", "C", "buy", "limit", SizeAtFill("fixed_quantity", 1), "entry", limit_price=29.0)
        ),
    )
    out = cycle(sig, positions={"A": 5.0}, orders=working, kill_switches=(KillSwitch("global"),))
    assert out.status.state == "HALTED" and kinds(out) == [("A", "exit", "sell_signal")]
    refused = [(d.symbol, d.rule) for d in out.decisions if not d.allowed]
    assert refused == [("B", "kill_switch")]
    assert [c.client_order_id for c in out.cancel] == ["w"]


def test_a_flattening_kill_switch_closes_everything_and_cancels_every_order() -> None:
    sig = signals(side(entry=flags("B")))
    working = (
        WorkingOrder(
            OrderSpec("w", "C", "buy", "limit", SizeAtFill("fixed_quantity", 1), "entry", limit_price=29.0)
        ),
    )
    out = cycle(
        sig,
        positions={"A": 5.0, "C": -2.0},
        orders=working,
        kill_switches=(KillSwitch("deployment", "dep-1", flatten=True),),
    )
    assert kinds(out) == [("A", "flatten", "kill_switch"), ("C", "flatten", "kill_switch")]
    assert [o.side for o in out.submit] == ["sell", "buy"] and [c.client_order_id for c in out.cancel] == [
        "w"
    ]


def test_a_breached_daily_loss_halts_within_the_cycle() -> None:
    start = replace(TradingStatus.starting(10_000.0), day=NOW // DAY)
    sig = signals(side(entry=flags("B")))
    out = cycle(
        sig, positions={"A": 100.0}, cash=8_500.0, status=start, limits=RiskLimits(max_daily_loss=0.04)
    )
    # Equity 8,500 + 100 x 10 = 9,500: 5% lost today, more than the 4% allowed.
    assert (out.previous_state, out.status.state, out.equity) == ("ACTIVE", "HALTED", 9_500.0)
    assert [(d.symbol, d.allowed, d.rule) for d in out.decisions] == [("B", False, "trading_state")]


def test_equity_at_zero_liquidates_and_stops_entries() -> None:
    sig = signals(side(entry=flags("B", "C")))
    out = cycle(sig, positions={"A": 100.0}, cash=-1_000.0)
    assert kinds(out) == [("A", "exit", "liquidation")] and out.status.state == "HALTED"


def test_manual_actions_go_through_the_gate() -> None:
    actions = (
        ManualAction("m1", "open", "B", direction="long", quantity=10),
        ManualAction("m2", "reduce", "A", quantity=2),
        ManualAction("m3", "reduce", "A", quantity=50),
        ManualAction("m4", "close", "C"),
        ManualAction("m5", "cancel_order", client_order_id="w"),
        ManualAction("m6", "cancel_order", client_order_id="gone"),
    )
    working = (
        WorkingOrder(
            OrderSpec("w", "C", "buy", "limit", SizeAtFill("fixed_quantity", 1), "entry", limit_price=29.0)
        ),
    )
    out = cycle(
        signals(side()),
        positions={"A": 5.0},
        orders=working,
        manual_actions=actions,
        limits=RiskLimits(max_position_notional=150),
    )
    assert [(d.symbol, d.allowed, d.rule) for d in out.decisions] == [
        ("A", True, "reduces_risk"),
        ("B", False, "max_position_notional"),  # 10 x 20 = 200 > 150
    ]
    assert kinds(out) == [("A", "manual", None)] and out.submit[0].reduce_only
    assert [r.action_id for r in out.manual_refusals] == ["m3", "m4", "m6"]
    assert [c.client_order_id for c in out.cancel] == ["w"]
    halted = cycle(
        signals(side()),
        positions={"A": 5.0},
        manual_actions=(
            ManualAction("m7", "open", "B", direction="short", quantity=1),
            ManualAction("m8", "flatten"),
        ),
        status=replace(
            TradingStatus.starting(10_050.0), state="HALTED", reasons=frozenset({"operator_halt"})
        ),
    )
    assert [(d.symbol, d.allowed, d.rule) for d in halted.decisions] == [
        ("A", True, "reduces_risk"),
        ("B", False, "trading_state"),
    ]
    assert (
        kinds(halted) == [("A", "flatten", None)]
        and halted.manual_orders[halted.submit[0].client_order_id] == "m8"
    )


def test_orders_per_minute_run_on_the_clock_given() -> None:
    sig = signals(side(entry=flags("A", "B", "C")))
    limits = RiskLimits(max_orders_per_minute=2)
    out = cycle(sig, limits=limits)
    assert [(d.symbol, d.allowed) for d in out.decisions] == [("A", True), ("B", True), ("C", False)]
    assert out.recent_orders == (NOW, NOW)
    # Live, the wall clock decides: two orders 30 s before this one still count, 61 s do not.
    busy = cycle(sig, limits=limits, clock_time=10**12, recent_orders=(10**12 - 30 * 10**9,) * 2)
    assert not any(d.allowed for d in busy.decisions)
    calm = cycle(sig, limits=limits, clock_time=10**12, recent_orders=(10**12 - 61 * 10**9,) * 2)
    assert [d.allowed for d in calm.decisions] == [True, True, False]
