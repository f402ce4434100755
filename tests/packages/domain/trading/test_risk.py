"""Risk: every gate rule, every trading-state rule and transition, kill switch scopes (hand-worked numbers)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from packages.domain.trading.costs import CostModel
from packages.domain.trading.orders import ClosePosition, OrderSpec, Quantity, SizeAtFill
from packages.domain.trading.risk import (
    NS_PER_DAY,
    NS_PER_MINUTE,
    KillSwitch,
    RiskLimits,
    RiskSnapshot,
    TradingStatus,
    check,
    evaluate_state,
    operator_action,
    order_effect,
    switches_for,
)

T = 100 * NS_PER_DAY + 15 * 3_600 * 1_000_000_000  # day 100, 15:00 UTC
ACTIVE = TradingStatus.starting(10_000.0)
SNAPSHOT = RiskSnapshot(
    time=T,
    equity=10_000.0,
    positions={"X": 10.0},
    marks={"X": 100.0, "Y": 50.0},
    status=replace(ACTIVE, day=T // NS_PER_DAY),
)


def buy(symbol: str = "Y", units: float = 10.0, **kw: object) -> OrderSpec:
    return OrderSpec("o", symbol, "buy", "market", Quantity(units), "manual", **kw)  # type: ignore[arg-type]


CLOSE_X = OrderSpec("c", "X", "sell", "market", ClosePosition(), "exit", valid_bars=None)
REDUCE_X = OrderSpec("r", "X", "sell", "market", Quantity(4), "manual", reduce_only=True)


@pytest.mark.parametrize(
    ("order", "effect"),
    [
        (buy(), "adds"),
        (buy("X"), "adds"),
        (CLOSE_X, "reduces"),
        (REDUCE_X, "reduces"),
        (OrderSpec("s", "X", "sell", "market", Quantity(5), "manual"), "reduces"),  # sells part of the long
        (OrderSpec("s", "X", "sell", "market", Quantity(15), "manual"), "adds"),  # would reverse it
        (OrderSpec("e", "X", "sell", "market", SizeAtFill("fixed_quantity", 5), "entry"), "adds"),
    ],
)
def test_what_adds_and_what_reduces_risk(order: OrderSpec, effect: str) -> None:
    assert order_effect(order, SNAPSHOT.positions) == effect


HALTED = replace(SNAPSHOT.status, state="HALTED", reasons=frozenset({"drawdown"}))
REDUCING = replace(SNAPSHOT.status, state="REDUCING", reasons=frozenset({"exposure"}))
SWITCH = KillSwitch("user", "u-1", reason="checking a bug")


@pytest.mark.parametrize(
    ("name", "order", "snapshot", "limits", "allowed", "rule", "compared"),
    [
        (
            "within limits",
            buy(),
            SNAPSHOT,
            RiskLimits(max_position_notional=1_000),
            True,
            "within_limits",
            {"value": 500.0},
        ),
        (
            "kill switch",
            buy(),
            replace(SNAPSHOT, kill_switches=(SWITCH,)),
            RiskLimits(),
            False,
            "kill_switch",
            {"scope": "user"},
        ),
        (
            "halted",
            buy(),
            replace(SNAPSHOT, status=HALTED),
            RiskLimits(),
            False,
            "trading_state",
            {"state": "HALTED"},
        ),
        (
            "reducing",
            buy(),
            replace(SNAPSHOT, status=REDUCING),
            RiskLimits(),
            False,
            "trading_state",
            {"state": "REDUCING"},
        ),
        (
            "daily loss reached",
            buy(),
            replace(SNAPSHOT, equity=9_400.0),
            RiskLimits(max_daily_loss=0.05),
            False,
            "max_daily_loss",
            {"value": pytest.approx(0.06), "limit": 0.05, "day_start_equity": 10_000.0},
        ),
        (
            "daily loss not reached",
            buy(),
            replace(SNAPSHOT, equity=9_600.0),
            RiskLimits(max_daily_loss=0.05),
            True,
            "within_limits",
            {},
        ),
        (
            "drawdown reached",
            buy(),
            replace(SNAPSHOT, equity=8_000.0, status=replace(SNAPSHOT.status, peak_equity=10_000.0)),
            RiskLimits(max_drawdown=0.2),
            False,
            "max_drawdown",
            {"value": pytest.approx(0.2), "limit": 0.2},
        ),
        (
            "symbol not allowed",
            buy(),
            SNAPSHOT,
            RiskLimits(allowed_symbols=frozenset({"X"})),
            False,
            "allowed_symbols",
            {},
        ),
        (
            "orders per minute",
            buy(),
            replace(SNAPSHOT, recent_orders=(T - NS_PER_MINUTE, T - 30_000_000_000, T - 1)),
            RiskLimits(max_orders_per_minute=2),
            False,
            "max_orders_per_minute",
            {"value": 2, "limit": 2},  # the order a minute ago no longer counts
        ),
        (
            "position notional",
            buy("X", 5),
            SNAPSHOT,
            RiskLimits(max_position_notional=1_400),
            False,
            "max_position_notional",
            {"value": 1_500.0, "limit": 1_400, "units": 5.0},
        ),
        (
            "symbol exposure",
            buy("Y", 50),
            SNAPSHOT,
            RiskLimits(max_symbol_exposure=0.2),
            False,
            "max_symbol_exposure",
            {"value": 0.25, "limit": 0.2},
        ),
        (
            "limit price is the reference",
            OrderSpec("o", "Y", "buy", "limit", Quantity(50), "manual", limit_price=30.0),
            SNAPSHOT,
            RiskLimits(max_symbol_exposure=0.2),
            True,
            "within_limits",
            {"value": 1_500.0, "price": 30.0},
        ),
        (
            "sized at fill at the mark",
            OrderSpec("e", "Y", "buy", "market", SizeAtFill("percent_equity", 0.5), "entry"),
            SNAPSHOT,
            RiskLimits(max_symbol_exposure=0.4),
            False,
            "max_symbol_exposure",
            {"value": 0.5, "units": 100.0},
        ),
        (
            "exit while halted",
            CLOSE_X,
            replace(SNAPSHOT, status=HALTED, kill_switches=(SWITCH,)),
            RiskLimits(allowed_symbols=frozenset()),
            True,
            "reduces_risk",
            {},
        ),
        (
            "reduce while reducing",
            REDUCE_X,
            replace(SNAPSHOT, status=REDUCING),
            RiskLimits(max_position_notional=1),
            True,
            "reduces_risk",
            {},
        ),
    ],
)
def test_the_gate(
    name: str,
    order: OrderSpec,
    snapshot: RiskSnapshot,
    limits: RiskLimits,
    allowed: bool,
    rule: str,
    compared: dict[str, object],
) -> None:
    decision = check(order, snapshot, limits, CostModel())
    assert (decision.allowed, decision.rule) == (allowed, rule), name
    for key, value in compared.items():
        assert decision.compared[key] == value, (name, key)
    assert decision.client_order_id == order.client_order_id and decision.time == T and decision.message


def status_after(
    status: TradingStatus, *, time: int = T, equity: float = 10_000.0, **kw: object
) -> TradingStatus:
    return evaluate_state(
        status,
        time=time,
        equity=equity,
        position_values=kw.pop("values", {}),  # type: ignore[arg-type]
        limits=kw.pop("limits", RiskLimits()),  # type: ignore[arg-type]
        kill_switches=kw.pop("switches", ()),  # type: ignore[arg-type]
    )


def test_a_daily_loss_halts_for_the_rest_of_the_day_only() -> None:
    limits = RiskLimits(max_daily_loss=0.05)  # 5% of the day's starting equity
    start = status_after(ACTIVE, time=T - NS_PER_DAY)  # yesterday's close: equity 10,000
    halted = status_after(start, equity=9_500.0, limits=limits)
    assert (halted.state, halted.reasons, halted.day_start_equity) == ("HALTED", {"daily_loss"}, 10_000.0)
    recovered = status_after(halted, time=T + 3_600_000_000_000, equity=9_900.0, limits=limits)
    assert recovered.state == "HALTED"  # the same day: still halted
    next_day = status_after(recovered, time=T + NS_PER_DAY, equity=9_500.0, limits=limits)  # 4% of 9,900
    assert (next_day.state, next_day.day_start_equity) == ("ACTIVE", 9_900.0)
    again = status_after(next_day, time=T + NS_PER_DAY + 1, equity=9_400.0, limits=limits)  # over 5% of 9,900
    assert again.state == "HALTED"


def test_drawdown_and_liquidation_halt_until_an_operator_resumes() -> None:
    limits = RiskLimits(max_drawdown=0.1)
    peak = status_after(ACTIVE, equity=12_000.0, limits=limits)
    assert peak.peak_equity == 12_000.0 and peak.state == "ACTIVE"
    halted = status_after(peak, equity=10_800.0, limits=limits)
    assert (halted.state, halted.reasons) == ("HALTED", {"drawdown"})
    assert status_after(halted, equity=11_900.0, limits=limits).state == "HALTED"  # sticky
    resumed = operator_action(halted, "resume")
    assert (
        resumed.state == "ACTIVE" and status_after(resumed, equity=11_900.0, limits=limits).state == "ACTIVE"
    )
    broke = status_after(ACTIVE, equity=-5.0)
    assert broke.state == "HALTED" and "liquidation" in broke.reasons


def test_exposure_above_a_limit_means_reducing_until_back_within() -> None:
    limits = RiskLimits(max_position_notional=2_000, max_symbol_exposure=0.5)
    assert status_after(ACTIVE, values={"X": 1_900.0}, limits=limits).state == "ACTIVE"
    reducing = status_after(ACTIVE, values={"X": -2_100.0}, limits=limits)
    assert (reducing.state, reducing.reasons) == ("REDUCING", {"exposure"})
    assert status_after(reducing, values={"X": 1_000.0}, limits=limits).state == "ACTIVE"
    assert status_after(ACTIVE, equity=3_000.0, values={"X": 1_600.0}, limits=limits).state == "REDUCING"


def test_kill_switches_halt_while_on_and_win_over_reducing() -> None:
    limits = RiskLimits(max_position_notional=1_000)
    both = status_after(ACTIVE, values={"X": 5_000.0}, limits=limits, switches=(SWITCH,))
    assert (both.state, both.reasons) == ("HALTED", {"kill_switch", "exposure"})
    cleared = status_after(both, values={"X": 5_000.0}, limits=limits)
    assert (cleared.state, cleared.reasons) == ("REDUCING", {"exposure"})
    assert status_after(cleared, values={}, limits=limits).state == "ACTIVE"


@pytest.mark.parametrize(
    ("action", "start", "state", "reasons"),
    [
        ("halt", ACTIVE, "HALTED", {"operator_halt"}),
        ("reduce_only", ACTIVE, "REDUCING", {"operator_reduce"}),
        (
            "halt",
            replace(ACTIVE, state="REDUCING", reasons=frozenset({"operator_reduce"})),
            "HALTED",
            {"operator_halt", "operator_reduce"},
        ),
        (
            "resume",
            replace(ACTIVE, state="HALTED", reasons=frozenset({"operator_halt", "drawdown"})),
            "ACTIVE",
            set(),
        ),
        (
            "resume",
            replace(ACTIVE, state="HALTED", reasons=frozenset({"kill_switch", "drawdown"})),
            "HALTED",
            {"kill_switch"},
        ),
    ],
)
def test_operator_actions(action: str, start: TradingStatus, state: str, reasons: set[str]) -> None:
    after = operator_action(start, action)  # type: ignore[arg-type]
    assert (after.state, set(after.reasons)) == (state, reasons)
    assert status_after(after).state == state or "kill_switch" in reasons  # sticky reasons survive a cycle


def test_kill_switch_scopes() -> None:
    switches = [
        KillSwitch("deployment", "d-1"),
        KillSwitch("deployment", "d-2"),
        KillSwitch("user", "u-1"),
        KillSwitch("user", "u-2"),
    ]
    assert switches_for(switches, deployment_id="d-1", user_id="u-1") == (switches[0], switches[2])
    assert switches_for(switches, deployment_id="d-3", user_id="u-2") == (switches[3],)
    assert switches_for(switches, deployment_id="d-3", user_id="u-3") == ()
    everyone = KillSwitch("global")
    assert switches_for([everyone], deployment_id="d-9", user_id="u-9") == (everyone,)
    with pytest.raises(ValueError):
        KillSwitch("global", "d-1")
    with pytest.raises(ValueError):
        KillSwitch("user")


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        (RiskLimits(max_position_notional=0), "position value"),
        (RiskLimits(max_daily_loss=math.nan), "daily loss"),
        (RiskLimits(max_daily_loss=1.0), "daily loss"),
        (RiskLimits(max_symbol_exposure=0), "exposure"),
        (RiskLimits(max_drawdown=1.0), "drawdown"),
        (RiskLimits(max_orders_per_minute=0), "orders per minute"),
        (RiskLimits(allowed_symbols=frozenset()), "allowed symbols"),
    ],
)
def test_limits_that_make_no_sense_are_named(limits: RiskLimits, problem: str) -> None:
    (found,) = limits.problems()
    assert problem in found
    assert RiskLimits(max_drawdown=0.25, max_symbol_exposure=1.5, max_orders_per_minute=10).problems() == []
