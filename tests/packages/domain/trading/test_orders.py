"""Orders: the state machine (every legal and illegal move), deterministic ids, spec validation."""

from __future__ import annotations

import itertools
import math

import pytest

from packages.domain.trading.orders import (
    ORDER_EVENTS,
    ORDER_STATUSES,
    TERMINAL_STATUSES,
    ClosePosition,
    IllegalTransition,
    OrderIds,
    OrderSpec,
    ProtectiveLeg,
    Quantity,
    SizeAtFill,
    Trail,
    client_order_id,
    leg_order_id,
    transition,
)

# The life of an order, written out by hand: (status, event) -> next status.
LEGAL = {
    ("new", "accept"): "accepted",
    ("new", "reject"): "rejected",
    ("new", "cancel"): "canceled",
    ("accepted", "fill_partial"): "partially_filled",
    ("accepted", "fill"): "filled",
    ("accepted", "cancel"): "canceled",
    ("accepted", "expire"): "expired",
    ("accepted", "reject"): "rejected",
    ("partially_filled", "fill_partial"): "partially_filled",
    ("partially_filled", "fill"): "filled",
    ("partially_filled", "cancel"): "canceled",
    ("partially_filled", "expire"): "expired",
}
ILLEGAL = sorted(set(itertools.product(ORDER_STATUSES, ORDER_EVENTS)) - set(LEGAL))


@pytest.mark.parametrize(("status", "event"), sorted(LEGAL))
def test_every_legal_transition_lands_where_the_table_says(status: str, event: str) -> None:
    assert transition(status, event) == LEGAL[(status, event)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "event"), ILLEGAL)
def test_every_other_transition_raises(status: str, event: str) -> None:
    with pytest.raises(IllegalTransition) as raised:
        transition(status, event)  # type: ignore[arg-type]
    assert raised.value.status == status and raised.value.event == event


def test_terminal_statuses_have_no_way_out_and_the_table_is_complete() -> None:
    assert len(LEGAL) + len(ILLEGAL) == len(ORDER_STATUSES) * len(ORDER_EVENTS)
    for status in TERMINAL_STATUSES:
        for event in ORDER_EVENTS:
            with pytest.raises(IllegalTransition):
                transition(status, event)


def test_a_filled_order_cannot_be_filled_or_canceled_again() -> None:
    status = transition(transition(transition("new", "accept"), "fill_partial"), "fill")
    assert status == "filled"
    for event in ("fill", "cancel"):
        with pytest.raises(IllegalTransition):
            transition(status, event)  # type: ignore[arg-type]


def test_client_order_ids_are_a_function_of_their_inputs() -> None:
    base = ("dep-1", 1_700_000_000_000_000_000, "AAPL", "entry", 0)
    first = client_order_id(*base)  # type: ignore[arg-type]
    assert first == client_order_id(*base)  # type: ignore[arg-type]
    assert len(first) <= 64 and first.startswith("mz-")
    variants = [
        ("dep-2", *base[1:]),
        (base[0], base[1] + 1, *base[2:]),
        (*base[:2], "MSFT", *base[3:]),
        (*base[:3], "exit", base[4]),
        (*base[:4], 1),
    ]
    ids = {client_order_id(*v) for v in variants}  # type: ignore[arg-type]
    assert len(ids) == len(variants) and first not in ids


def test_order_ids_number_each_purpose_and_symbol_separately() -> None:
    ids = OrderIds("dep-1", 5)
    a0, a1, b0, e0 = (
        ids.next("A", "exit"),
        ids.next("A", "exit"),
        ids.next("B", "exit"),
        ids.next("A", "entry"),
    )
    assert a0 == client_order_id("dep-1", 5, "A", "exit", 0)
    assert a1 == client_order_id("dep-1", 5, "A", "exit", 1)
    assert b0 == client_order_id("dep-1", 5, "B", "exit", 0)
    assert e0 == client_order_id("dep-1", 5, "A", "entry", 0)
    again = OrderIds("dep-1", 5)
    assert again.next("A", "exit") == a0  # a retried cycle hands out the same ids
    assert len(leg_order_id(a0, 12)) <= 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "limit"}, "limit price"),
        ({"type": "stop"}, "stop price"),
        ({"type": "market", "limit_price": 10.0}, "no limit price"),
        ({"type": "limit", "limit_price": -1.0}, "limit price"),
        ({"valid_bars": 0}, "at least one bar"),
        ({"purpose": "exit", "protective": (ProtectiveLeg("sl", "stop_loss", fraction=0.1),)}, "protective"),
        ({"size": ClosePosition()}, "adds to a position"),
        ({"reduce_only": True}, "adds to a position"),
        ({"client_order_id": "x" * 65}, "64"),
    ],
)
def test_invalid_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "client_order_id": "mz-1",
        "symbol": "AAPL",
        "side": "buy",
        "type": "market",
        "size": Quantity(10),
        "purpose": "entry",
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        OrderSpec(**fields)  # type: ignore[arg-type]


def test_sizes_legs_and_trails_check_their_values() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            Quantity(bad)
        with pytest.raises(ValueError):
            SizeAtFill("percent_equity", bad)
    with pytest.raises(ValueError):
        Trail()
    with pytest.raises(ValueError):
        Trail(distance=1.0, fraction=0.1)
    with pytest.raises(ValueError):
        ProtectiveLeg("b", "bracket", fraction=0.02)  # a bracket needs its reward ratio


def test_a_protective_leg_may_carry_a_level_below_zero() -> None:
    leg = OrderSpec("mz-1.0", "X", "sell", "stop", ClosePosition(), "exit", stop_price=-3.0, parent_id="mz-1")
    assert leg.reduces_only and leg.stop_price == -3.0


def test_specs_survive_their_json_form() -> None:
    specs = [
        OrderSpec(
            "mz-1",
            "AAPL",
            "buy",
            "limit",
            SizeAtFill("risk_per_trade", 0.01, 2.5),
            "entry",
            limit_price=99.5,
            valid_bars=None,
            protective=(
                ProtectiveLeg("stop", "stop_loss", distance=2.0),
                ProtectiveLeg("br", "bracket", fraction=0.02, reward_ratio=2.0),
            ),
            strategy_side="long",
            signal_time=123,
        ),
        OrderSpec("mz-2", "AAPL", "sell", "market", SizeAtFill("percent_equity", 0.5), "entry"),
        OrderSpec("mz-3", "AAPL", "sell", "market", Quantity(5), "manual", reduce_only=True),
        OrderSpec(
            "mz-1.0",
            "AAPL",
            "sell",
            "stop",
            ClosePosition(),
            "exit",
            stop_price=90.0,
            valid_bars=None,
            exit_rule="trail",
            trail=Trail(fraction=0.05),
            parent_id="mz-1",
        ),
    ]
    for spec in specs:
        back = OrderSpec.from_json(spec.to_json())
        assert back.to_json() == spec.to_json()
        if not (isinstance(spec.size, SizeAtFill) and math.isnan(spec.size.reference)):
            assert back == spec
