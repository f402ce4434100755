"""Manual actions: what a user asks of a running deployment, as orders and cancels for the risk gate.

* ``open``: a market order (or a limit order at ``limit_price``, working one bar) for ``quantity``
  units in ``direction`` (long buys, short sells); it adds risk, so the gate may refuse it.
* ``close``: the whole position in ``symbol`` at the next open (market, good till filled).
* ``reduce``: ``quantity`` units of the position in ``symbol`` at the next open; never more than the
  position (a larger reduction is refused: that would be a close, or a reversal).
* ``flatten``: cancel every working order of the deployment (protective legs go when their position
  closes) and close every position.
* ``cancel_order``: cancel one working order.

Closes, reductions and flattening reduce risk and always pass the gate. An action that cannot apply
(no such position, an unknown or finished order) is answered with a ``ManualRefusal`` naming why.
Order ids are deterministic (``orders.OrderIds``): the same actions in the same cycle make the same
orders, so a retried cycle submits nothing twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from packages.domain.strategy.plan import Side
from packages.domain.trading.orders import CancelIntent, ClosePosition, OrderIds, OrderSpec, Quantity
from packages.domain.trading.simulated_broker import WorkingOrder

ManualKind = Literal["open", "close", "reduce", "flatten", "cancel_order"]


@dataclass(frozen=True)
class ManualAction:
    action_id: str
    kind: ManualKind
    symbol: str | None = None
    direction: Side | None = None  # open
    quantity: float | None = None  # open, reduce
    limit_price: float | None = None  # open as a limit order
    client_order_id: str | None = None  # cancel_order
    requested_by: str = "user"

    def __post_init__(self) -> None:
        if self.kind in ("open", "close", "reduce") and not self.symbol:
            raise ValueError(f"{self.kind} names a symbol")
        if self.kind == "open" and self.direction is None:
            raise ValueError("open says long or short")
        if self.kind in ("open", "reduce") and not (
            self.quantity is not None and math.isfinite(self.quantity) and self.quantity > 0
        ):
            raise ValueError(f"{self.kind} needs a positive quantity")
        if self.kind == "cancel_order" and not self.client_order_id:
            raise ValueError("cancel_order names the order")


@dataclass(frozen=True)
class ManualRefusal:
    action_id: str
    message: str


@dataclass(frozen=True)
class ManualIntents:
    orders: tuple[OrderSpec, ...]
    cancels: tuple[CancelIntent, ...]
    refusals: tuple[ManualRefusal, ...]
    origin: Mapping[str, str]  # client order id -> the action that made it


def _closing(open_orders: Sequence[WorkingOrder], symbol: str) -> bool:
    """Whether a market order already closes ``symbol``'s position at the next open."""
    return any(
        o.spec.symbol == symbol
        and isinstance(o.spec.size, ClosePosition)
        and (o.spec.type == "market" or o.triggered)
        for o in open_orders
    )


def manual_intents(
    actions: Sequence[ManualAction],
    *,
    ids: OrderIds,
    positions: Mapping[str, float],
    open_orders: Sequence[WorkingOrder],
) -> ManualIntents:
    """The orders and cancels ``actions`` ask for, given the signed ``positions`` and working orders."""
    orders: list[OrderSpec] = []
    cancels: list[CancelIntent] = []
    refusals: list[ManualRefusal] = []
    origin: dict[str, str] = {}
    working = {o.client_order_id: o for o in open_orders if o.is_open}
    time = ids.bar_time

    def add(action: ManualAction, order: OrderSpec) -> None:
        orders.append(order)
        origin[order.client_order_id] = action.action_id

    def close(action: ManualAction, symbol: str, purpose: Literal["manual", "flatten"]) -> None:
        held = positions.get(symbol, 0.0)
        if _closing(open_orders, symbol) or any(
            o.symbol == symbol and isinstance(o.size, ClosePosition) for o in orders
        ):
            refusals.append(
                ManualRefusal(
                    action.action_id, f"The position in {symbol} is already being closed at the next open."
                )
            )
            return
        add(
            action,
            OrderSpec(
                client_order_id=ids.next(symbol, purpose),
                symbol=symbol,
                side="sell" if held > 0 else "buy",
                type="market",
                size=ClosePosition(),
                purpose=purpose,
                valid_bars=None,
                exit_rule=None,
                signal_time=time,
            ),
        )

    for action in actions:
        symbol = action.symbol or ""
        held = positions.get(symbol, 0.0)
        if action.kind == "open":
            assert action.direction is not None and action.quantity is not None
            limit = action.limit_price
            add(
                action,
                OrderSpec(
                    client_order_id=ids.next(symbol, "manual"),
                    symbol=symbol,
                    side="buy" if action.direction == "long" else "sell",
                    type="limit" if limit is not None else "market",
                    size=Quantity(action.quantity),
                    purpose="manual",
                    limit_price=limit,
                    strategy_side=None,
                    signal_time=time,
                ),
            )
        elif action.kind == "close":
            if held == 0:
                refusals.append(
                    ManualRefusal(action.action_id, f"There is no position in {symbol} to close.")
                )
            else:
                close(action, symbol, "manual")
        elif action.kind == "reduce":
            assert action.quantity is not None
            if held == 0:
                refusals.append(
                    ManualRefusal(action.action_id, f"There is no position in {symbol} to reduce.")
                )
            elif action.quantity >= abs(held):
                refusals.append(
                    ManualRefusal(
                        action.action_id,
                        f"Reducing by {action.quantity:g} would close or reverse the {abs(held):g} units "
                        f"held in {symbol}: close the position instead.",
                    )
                )
            else:
                add(
                    action,
                    OrderSpec(
                        client_order_id=ids.next(symbol, "manual"),
                        symbol=symbol,
                        side="sell" if held > 0 else "buy",
                        type="market",
                        size=Quantity(action.quantity),
                        purpose="manual",
                        valid_bars=None,
                        reduce_only=True,
                        signal_time=time,
                    ),
                )
        elif action.kind == "flatten":
            for order in working.values():
                if not order.is_protective and not order.spec.reduces_only:
                    cancels.append(CancelIntent(order.client_order_id, "flatten"))
            for position_symbol, units in positions.items():
                if units != 0:
                    close(action, position_symbol, "flatten")
        else:
            target = working.get(action.client_order_id or "")
            if target is None:
                refusals.append(
                    ManualRefusal(
                        action.action_id, f"Order {action.client_order_id} is not working: nothing to cancel."
                    )
                )
            else:
                cancels.append(CancelIntent(target.client_order_id, f"canceled by {action.requested_by}"))
    return ManualIntents(tuple(orders), tuple(cancels), tuple(refusals), origin)
