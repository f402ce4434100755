"""The built-in paper broker: resting orders meet the next bar (or a quote) and become fills.

``match_bar`` is the whole matching logic, pure: the working orders, the bar of each symbol, the
account's cash, positions and marks and the cost book go in; fills, order events, the orders still
working and the account after the bar come out. It follows the fill rules of
``backtest.assumptions`` and the engine's arithmetic (``backtest._kernel``) step for step, so a
deployment whose orders mirror a backtest's decisions fills exactly as the backtest did:

1. **The open, exits.** Symbol by symbol (in the deployment's universe order), a held symbol is
   marked at its open; a working market exit (or a triggered stop's remainder) fills at the open,
   with half the spread and slippage against it; otherwise the position's protective levels are
   checked against the open: a trailing stop first ratchets on the open, then an open at or through
   the stop fills the stop at the open (slippage applied), an open (bid for a long) at or beyond the
   target fills the target at that open price (a limit fill: no slippage).
2. **The open, entries.** Symbol by symbol, working entries: market orders fill at the open; a buy
   limit fills at the ask open when it is at or below the limit, a sell limit at the bid open when
   at or above; a stop entry fills at the open when the open is at or through the stop (then costs
   apply). Strategy entries fill only into a flat symbol, as the engine's do.
3. **Inside the bar.** Symbol by symbol: a held position's levels are checked against the bar's
   range (stop when the low, long, or high, short, reaches it, at the stop price plus costs; target
   when the bid high, long, or ask low, short, trades through it, or touches it with
   ``limit_fill_on_touch``, at the target; the stop first when both lie in the bar); then, if no
   position is held, working limit/stop entries are checked against the range (fills at their own
   price; stops then pay costs), and a position so opened has only its stop checked in the rest of
   the bar (targets start on the next bar). Trailing stops ratchet on the bar's extreme only after
   the range was checked.
4. **The close.** Held symbols are marked at the close; orders valid for ``n`` bars expire at the
   close of their ``n``-th bar; exits left with nothing to close are canceled.

**Sizing.** An order sized at fill (``orders.SizeAtFill``) gets the engine's quantity
(``target_quantity``) from the fill price and the equity at that instant: cash plus positions marked
at this bar's open (or, for a position opened in this bar, its fill price). Market and stop fills
size at the price estimated with half the spread, apply the costs for that quantity and size again
at the final price; the quantity is capped by buying power (``equity x leverage - gross exposure``,
less the fixed fee, over ``price x (1 + fee rate)``), rounded down to ``quantity_step`` and rejected
when not positive. An order of a fixed ``Quantity`` that buying power cannot carry is rejected.

**Protective levels.** The fill of an entry with protective legs arms them from its fill price
after costs (the engine's ``_arm_levels``): a stop ``distance`` (or ``fraction x price``) away, a
target on the other side, a bracket's target ``reward_ratio`` times the distance, a trailing stop
that then follows the position's best price (its high, long; its low, short) by its distance or
fraction. Each leg is a resting order (stop or limit) of its own, closing the whole position; the
tightest stop and the nearest target are the ones that act (ties to the earlier rule), and when one
fills the others are canceled.

**Partial fills** (``CostModel.max_volume_share``, off by default): one order takes at most that
share of the bar's volume (bars without a volume figure are not capped) and fills at most once per
bar; what is left keeps working (``partially_filled``): a market order or a triggered stop at the
next open, a limit at its limit. An order sized at fill keeps the quantity of its first fill's sizing.

**Quotes.** ``MarketBar.from_quote(bid, ask)`` is a bar whose four prices are the mid and whose half
spread is the quote's own: market orders then fill at the ask (buys) or the bid (sells), plus slippage.

The prices and sizes come from ``fill_rules``; ``paper_broker.PaperBroker`` wraps ``match_bar`` and a
ledger into the ``broker.BrokerAdapter`` of a paper account, in memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from packages.domain.strategy.plan import Side
from packages.domain.trading.costs import CostBook, CostModel
from packages.domain.trading.fill_rules import (
    HIT_STOP,
    HIT_TARGET,
    adverse_price,
    open_trigger,
    range_trigger,
    round_down,
    stop_or_target,
    target_quantity,
)
from packages.domain.trading.ledger import LedgerEntry, LedgerState, fill_entry
from packages.domain.trading.orders import (
    OPEN_STATUSES,
    ClosePosition,
    OrderEvent,
    OrderPurpose,
    OrderSide,
    OrderSpec,
    OrderStatus,
    OrderType,
    Quantity,
    SizeAtFill,
    Trail,
    leg_order_id,
    transition,
)

FillMoment = Literal["open", "intrabar", "close"]


@dataclass(frozen=True)
class MarketBar:
    """One bar of one symbol (prices are mid prices); ``half_spread`` overrides the cost model's."""

    open: float
    high: float
    low: float
    close: float
    volume: float = math.nan
    half_spread: float | None = None

    @classmethod
    def from_quote(cls, bid: float, ask: float, size: float = math.nan) -> MarketBar:
        if not (0 < bid <= ask):
            raise ValueError("a quote has 0 < bid <= ask")
        mid = (bid + ask) / 2.0
        return cls(mid, mid, mid, mid, size, (ask - bid) / (ask + bid))


@dataclass(frozen=True)
class AccountBook:
    """What matching needs of the account: cash, signed positions and each held symbol's last price."""

    cash: float
    positions: Mapping[str, float]
    marks: Mapping[str, float]

    @classmethod
    def from_ledger(cls, state: LedgerState, marks: Mapping[str, float]) -> AccountBook:
        held = state.held()
        return cls(state.cash, held, {s: marks[s] for s in held if s in marks})


@dataclass(frozen=True)
class WorkingOrder:
    """An order the broker holds, with what has happened to it so far."""

    spec: OrderSpec
    status: OrderStatus = "accepted"
    filled_quantity: float = 0.0
    average_price: float = math.nan
    fills: int = 0
    bars_worked: int = 0
    target_quantity: float | None = None  # an order sized at fill: the quantity its first fill sized
    triggered: bool = False  # a stop whose trigger was reached: its remainder works as a market order
    level: float = math.nan  # a protective leg: the stop or target level in effect
    extreme: float = math.nan  # a protective leg: the position's best price since entry (the trail anchor)
    reason: str | None = None

    @property
    def client_order_id(self) -> str:
        return self.spec.client_order_id

    @property
    def is_protective(self) -> bool:
        return self.spec.parent_id is not None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_json(self) -> dict[str, Any]:
        """Everything matching needs of an open order between bars (infra stores it with the order)."""
        return {
            "spec": self.spec.to_json(),
            "status": self.status,
            "filled_quantity": self.filled_quantity,
            "average_price": None if math.isnan(self.average_price) else self.average_price,
            "fills": self.fills,
            "bars_worked": self.bars_worked,
            "target_quantity": self.target_quantity,
            "triggered": self.triggered,
            "level": None if math.isnan(self.level) else self.level,
            "extreme": None if math.isnan(self.extreme) else self.extreme,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkingOrder:
        def number(key: str) -> float:
            value = data.get(key)
            return math.nan if value is None else float(value)

        return cls(
            spec=OrderSpec.from_json(data["spec"]),
            status=data["status"],
            filled_quantity=float(data.get("filled_quantity", 0.0)),
            average_price=number("average_price"),
            fills=int(data.get("fills", 0)),
            bars_worked=int(data.get("bars_worked", 0)),
            target_quantity=data.get("target_quantity"),
            triggered=bool(data.get("triggered", False)),
            level=number("level"),
            extreme=number("extreme"),
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class Fill:
    fill_id: str
    client_order_id: str
    symbol: str
    side: OrderSide
    quantity: float  # positive units
    price: float  # after spread and slippage
    raw_price: float  # the market, limit or stop price before costs
    fee: float
    slippage: float  # cash lost to spread and slippage
    time: int  # open time (ns) of the bar it happened in
    at: FillMoment
    mechanism: OrderType  # how it filled: stops and stop-loss legs are stop fills, targets limit fills
    purpose: OrderPurpose
    exit_rule: str | None = None
    strategy_side: Side | None = None
    signal_time: int | None = None

    @property
    def signed_quantity(self) -> float:
        return self.quantity if self.side == "buy" else -self.quantity

    def ledger_entry(self) -> LedgerEntry:
        return fill_entry(self.time, self.symbol, self.signed_quantity, self.price, self.fee, self.fill_id)


@dataclass(frozen=True)
class OrderUpdate:
    client_order_id: str
    event: OrderEvent
    status: OrderStatus
    time: int
    reason: str | None = None


@dataclass(frozen=True)
class BarOutcome:
    time: int
    fills: tuple[Fill, ...]
    updates: tuple[OrderUpdate, ...]  # in the order they happened
    armed: tuple[OrderSpec, ...]  # protective legs the fills armed (already accepted)
    orders: tuple[WorkingOrder, ...]  # every order touched or still working, in submission order
    book: AccountBook  # after the bar, marked at the close

    @property
    def open_orders(self) -> tuple[WorkingOrder, ...]:
        return tuple(order for order in self.orders if order.is_open)


def _trail_level(order: WorkingOrder, direction: float) -> float:
    trail = order.spec.trail
    assert trail is not None
    if trail.distance is not None:
        return order.extreme - direction * trail.distance
    assert trail.fraction is not None
    return order.extreme * (1.0 - direction * trail.fraction)


class _Matcher:
    """One bar of ``match_bar``: mutable working state over immutable inputs."""

    def __init__(
        self,
        time: int,
        bars: Mapping[str, MarketBar],
        orders: Sequence[WorkingOrder],
        book: AccountBook,
        costs: CostBook,
        symbols: Sequence[str],
    ) -> None:
        self.time = time
        self.bars = bars
        self.costs = costs
        self.cash = book.cash
        self.quantity: dict[str, float] = {s: q for s, q in book.positions.items() if q != 0}
        self.marks: dict[str, float] = dict(book.marks)
        self.orders: dict[str, WorkingOrder] = {o.client_order_id: o for o in orders}
        self.by_symbol: dict[str, list[str]] = {}
        for order in orders:
            self.by_symbol.setdefault(order.spec.symbol, []).append(order.client_order_id)
        extra = sorted(
            ({o.spec.symbol for o in orders} | set(self.quantity)) - set(symbols)
        )  # symbols outside the universe (manual trades) come after it
        self.symbols = (*symbols, *extra)
        self.fills: list[Fill] = []
        self.updates: list[OrderUpdate] = []
        self.armed: list[OrderSpec] = []
        self.touched: set[str] = set()  # orders that filled in this bar (one fill per bar)

    # -- account ------------------------------------------------------------------------------
    def equity_and_gross(self) -> tuple[float, float]:
        value = 0.0
        gross = 0.0
        for symbol in self.symbols:
            units = self.quantity.get(symbol, 0.0)
            if units != 0.0:
                notional = units * self.marks.get(symbol, math.nan)
                value += notional
                gross += abs(notional)
        return self.cash + value, gross

    def half_spread(self, bar: MarketBar, cost: CostModel) -> float:
        return cost.half_spread if bar.half_spread is None else bar.half_spread

    # -- orders -------------------------------------------------------------------------------
    def working(self, symbol: str) -> list[WorkingOrder]:
        """The symbol's open orders, in submission order."""
        orders = (self.orders[order_id] for order_id in self.by_symbol.get(symbol, ()))
        return [order for order in orders if order.is_open]

    def event(
        self, order: WorkingOrder, event: OrderEvent, *, reason: str | None = None, **changes: Any
    ) -> None:
        status = transition(order.status, event)
        self.orders[order.client_order_id] = replace(order, status=status, reason=reason, **changes)
        self.updates.append(OrderUpdate(order.client_order_id, event, status, self.time, reason))

    def reduces(self, order: WorkingOrder) -> bool:
        """Whether ``order`` takes units out of its symbol's position rather than adding to it."""
        return order.spec.reduces_only

    def volume_cap(self, units: float, bar: MarketBar, cost: CostModel) -> float:
        share = cost.max_volume_share
        if share is None or not math.isfinite(bar.volume):
            return units
        return min(units, round_down(share * bar.volume, cost.quantity_step))

    def record_fill(
        self,
        order: WorkingOrder,
        units: float,
        price: float,
        raw: float,
        fee: float,
        at: FillMoment,
        mechanism: OrderType,
        exit_rule: str | None,
    ) -> None:
        spec = order.spec
        self.fills.append(
            Fill(
                fill_id=f"{spec.client_order_id}#{order.fills}",
                client_order_id=spec.client_order_id,
                symbol=spec.symbol,
                side=spec.side,
                quantity=units,
                price=price,
                raw_price=raw,
                fee=fee,
                slippage=units * abs(price - raw),
                time=self.time,
                at=at,
                mechanism=mechanism,
                purpose=spec.purpose,
                exit_rule=exit_rule,
                strategy_side=spec.strategy_side,
                signal_time=spec.signal_time,
            )
        )
        self.touched.add(spec.client_order_id)

    def filled_changes(self, order: WorkingOrder, units: float, price: float) -> dict[str, Any]:
        total = order.filled_quantity + units
        average = (
            price
            if order.filled_quantity == 0
            else (order.filled_quantity * order.average_price + units * price) / total
        )
        return {"filled_quantity": total, "average_price": average, "fills": order.fills + 1}

    # -- exits ----------------------------------------------------------------------------------
    def fill_exit(
        self,
        order: WorkingOrder,
        raw: float,
        bar: MarketBar,
        at: FillMoment,
        mechanism: OrderType,
        limit_fill: bool,
        exit_rule: str | None,
    ) -> bool:
        """Fill ``order`` against the position at ``raw``; True when the position is now closed."""
        symbol = order.spec.symbol
        held = self.quantity.get(symbol, 0.0)
        cost = self.costs.for_symbol(symbol)
        direction = 1.0 if held > 0 else -1.0
        wanted = abs(held)
        if isinstance(order.spec.size, Quantity):
            wanted = min(order.spec.size.units - order.filled_quantity, wanted)
        units = self.volume_cap(wanted, bar, cost)
        if not units > 0.0:
            if order.is_protective and not limit_fill:
                self.orders[order.client_order_id] = replace(order, triggered=True)
            return False
        price = (
            raw
            if limit_fill
            else adverse_price(raw, -direction, units, bar.volume, cost, self.half_spread(bar, cost))
        )
        notional = units * price
        fee = notional * cost.fee_rate + cost.fee_fixed
        self.cash += direction * notional - fee
        remaining = held - direction * units if units < abs(held) else 0.0
        self.quantity[symbol] = remaining
        self.record_fill(order, units, price, raw, fee, at, mechanism, exit_rule)
        changes = self.filled_changes(order, units, price)
        if isinstance(order.spec.size, Quantity):
            done = order.filled_quantity + units >= order.spec.size.units
        else:
            done = remaining == 0.0
        if done:
            self.event(order, "fill", **changes)
        else:
            self.event(order, "fill_partial", triggered=order.is_protective and not limit_fill, **changes)
        if remaining == 0.0:
            self.quantity.pop(symbol)
            for other in self.working(symbol):
                if self.reduces(other) or other.is_protective:
                    self.event(other, "cancel", reason="position closed")
        return remaining == 0.0

    def protective_legs(self, symbol: str) -> list[WorkingOrder]:
        return [o for o in self.working(symbol) if o.is_protective]

    def ratchet(self, legs: list[WorkingOrder], direction: float, extreme: float) -> list[WorkingOrder]:
        """The legs with ``extreme`` as their anchor and trailing levels ratcheted to it."""
        moved: list[WorkingOrder] = []
        for leg in legs:
            if leg.spec.trail is None:
                changed = replace(leg, extreme=extreme)
            else:
                anchored = replace(leg, extreme=extreme)
                level = _trail_level(anchored, direction)
                keep = (leg.level >= level) if direction > 0 else (leg.level <= level)
                changed = anchored if keep else replace(anchored, level=level)
            self.orders[leg.client_order_id] = changed
            moved.append(changed)
        return moved

    def scan(
        self,
        symbol: str,
        bar: MarketBar,
        o: float,
        h: float,
        lo: float,
        check_open: bool,
        allow_target: bool,
        at: FillMoment,
    ) -> None:
        """Check the position's protective levels against one price segment (the engine's ``_scan``)."""
        legs = self.protective_legs(symbol)
        if not legs:
            return
        held = self.quantity[symbol]
        direction = 1.0 if held > 0 else -1.0
        extreme = legs[0].extreme
        trails = any(leg.spec.trail is not None for leg in legs)
        if check_open and trails and ((direction > 0 and o > extreme) or (direction < 0 and o < extreme)):
            extreme = o
            legs = self.ratchet(legs, direction, extreme)
        stop_leg: WorkingOrder | None = None
        target_leg: WorkingOrder | None = None
        for leg in legs:
            if leg.spec.type == "stop":
                better = stop_leg is None or (
                    leg.level > stop_leg.level if direction > 0 else leg.level < stop_leg.level
                )
                if better:
                    stop_leg = leg
            else:
                nearer = target_leg is None or (
                    leg.level < target_leg.level if direction > 0 else leg.level > target_leg.level
                )
                if nearer:
                    target_leg = leg
        stop = stop_leg.level if stop_leg is not None else -math.inf * direction
        target = target_leg.level if target_leg is not None else math.inf * direction
        cost = self.costs.for_symbol(symbol)
        hit, price = stop_or_target(
            direction,
            o,
            h,
            lo,
            check_open,
            allow_target,
            stop,
            target,
            self.half_spread(bar, cost),
            cost.limit_fill_on_touch,
        )
        if hit == HIT_STOP and stop_leg is not None:
            self.fill_exit(stop_leg, price, bar, at, "stop", False, stop_leg.spec.exit_rule)
            return
        if hit == HIT_TARGET and target_leg is not None:
            self.fill_exit(target_leg, price, bar, at, "limit", True, target_leg.spec.exit_rule)
            return
        best = max(extreme, h) if direction > 0 else min(extreme, lo)
        if best != extreme:
            self.ratchet(legs, direction, best)

    # -- entries --------------------------------------------------------------------------------
    def fill_entry(
        self, order: WorkingOrder, raw: float, bar: MarketBar, at: FillMoment, mechanism: OrderType
    ) -> bool:
        """Fill an order that adds to its symbol's position; False when it was rejected or took nothing."""
        spec = order.spec
        symbol = spec.symbol
        cost = self.costs.for_symbol(symbol)
        half_spread = self.half_spread(bar, cost)
        direction = float(spec.direction)
        equity, gross = self.equity_and_gross()
        limit_fill = mechanism == "limit"
        size = spec.size
        sized_now = isinstance(size, SizeAtFill) and order.target_quantity is None
        if isinstance(size, SizeAtFill) and sized_now:
            mode, value, reference = size.mode, size.value, size.reference
            if limit_fill:
                # A limit fills at its own price (already on the bid/ask side): no slippage.
                price = raw
                units = target_quantity(mode, value, reference, equity, price, cost.fee_rate, cost.fee_fixed)
            else:
                estimate = raw * (1.0 + direction * half_spread)
                units = target_quantity(
                    mode, value, reference, equity, estimate, cost.fee_rate, cost.fee_fixed
                )
                price = adverse_price(raw, direction, abs(units), bar.volume, cost, half_spread)
                units = target_quantity(mode, value, reference, equity, price, cost.fee_rate, cost.fee_fixed)
        else:
            if order.target_quantity is not None:
                total = order.target_quantity
            else:
                assert isinstance(size, Quantity), "orders that add units have a quantity or a sizing rule"
                total = size.units
            units = total - order.filled_quantity
            price = raw if limit_fill else adverse_price(raw, direction, units, bar.volume, cost, half_spread)
        buying_power = equity * self.costs.leverage - gross
        affordable = (buying_power - cost.fee_fixed) / (price * (1.0 + cost.fee_rate))
        if units > affordable:
            if not sized_now:
                self.event(order, "reject", reason="not enough buying power")
                return False
            units = affordable
        units = round_down(units, cost.quantity_step)
        if not (units > 0.0) or not math.isfinite(units):
            self.event(
                order, "reject", reason="the order sizes to no units (not enough buying power or equity)"
            )
            return False
        target = units if sized_now else order.target_quantity
        filled_units = self.volume_cap(units, bar, cost)
        if not filled_units > 0.0:
            if sized_now:
                self.orders[order.client_order_id] = replace(order, target_quantity=target)
            return False
        if filled_units < units and not limit_fill:
            price = adverse_price(raw, direction, filled_units, bar.volume, cost, half_spread)
        notional = filled_units * price
        fee = notional * cost.fee_rate + cost.fee_fixed
        self.cash -= direction * notional + fee
        was_flat = self.quantity.get(symbol, 0.0) == 0.0
        self.quantity[symbol] = self.quantity.get(symbol, 0.0) + direction * filled_units
        self.marks[symbol] = raw if was_flat else self.marks.get(symbol, raw)
        self.record_fill(order, filled_units, price, raw, fee, at, mechanism, None)
        changes = self.filled_changes(order, filled_units, price)
        finished = filled_units >= units
        self.event(
            order,
            "fill" if finished else "fill_partial",
            target_quantity=target,
            triggered=mechanism == "stop" and not finished,
            **changes,
        )
        if spec.protective and order.fills == 0:
            self.arm(order, price, raw)
        return True

    def arm(self, order: WorkingOrder, price: float, raw: float) -> None:
        """Arm the protective legs of the entry ``order`` just filled at ``price`` (``raw`` before costs)."""
        spec = order.spec
        direction = float(spec.direction)
        exit_side: OrderSide = "sell" if direction > 0 else "buy"
        legs: list[WorkingOrder] = []
        for leg in spec.protective:
            distance = leg.distance if leg.distance is not None else (leg.fraction or 0.0) * price
            if not distance > 0.0:
                continue
            stop = target = math.nan
            trail = None
            if leg.kind == "stop_loss":
                stop = price - direction * distance
            elif leg.kind == "take_profit":
                target = price + direction * distance
            elif leg.kind == "bracket":
                stop = price - direction * distance
                target = price + direction * distance * (leg.reward_ratio or 0.0)
            else:
                stop = price - direction * distance
                trail = (
                    Trail(distance=leg.distance) if leg.distance is not None else Trail(fraction=leg.fraction)
                )
            for level, kind in ((stop, "stop"), (target, "limit")):
                if math.isnan(level):
                    continue
                leg_spec = OrderSpec(
                    client_order_id=leg_order_id(spec.client_order_id, len(legs)),
                    symbol=spec.symbol,
                    side=exit_side,
                    type=kind,  # type: ignore[arg-type]
                    size=ClosePosition(),
                    purpose="exit",
                    stop_price=level if kind == "stop" else None,
                    limit_price=level if kind == "limit" else None,
                    valid_bars=None,
                    exit_rule=leg.rule,
                    trail=trail if kind == "stop" else None,
                    parent_id=spec.client_order_id,
                    strategy_side=spec.strategy_side,
                    signal_time=spec.signal_time,
                )
                working = WorkingOrder(leg_spec, status="new", level=level, extreme=raw)
                self.orders[leg_spec.client_order_id] = working
                self.by_symbol.setdefault(spec.symbol, []).append(leg_spec.client_order_id)
                self.armed.append(leg_spec)
                self.event(working, "accept")
                legs.append(self.orders[leg_spec.client_order_id])
        if any(leg.spec.trail is not None for leg in legs):
            self.ratchet(legs, direction, raw)

    # -- the bar's phases -----------------------------------------------------------------------
    def open_exits(self, symbol: str) -> None:
        if self.quantity.get(symbol, 0.0) == 0.0:
            return
        bar = self.bars.get(symbol)
        if bar is None or not math.isfinite(bar.open):
            return
        self.marks[symbol] = bar.open
        market_exits = [
            o for o in self.working(symbol) if self.reduces(o) and (o.spec.type == "market" or o.triggered)
        ]
        for order in market_exits:
            current = self.orders[order.client_order_id]
            if symbol not in self.quantity or not current.is_open:
                continue
            if (self.quantity[symbol] > 0) == (current.spec.direction > 0):
                self.event(current, "cancel", reason="the order would add to the position it should reduce")
                continue
            self.fill_exit(current, bar.open, bar, "open", current.spec.type, False, current.spec.exit_rule)
        if not market_exits and symbol in self.quantity:
            self.scan(symbol, bar, bar.open, bar.open, bar.open, True, True, "open")

    def open_entries(self, symbol: str) -> None:
        bar = self.bars.get(symbol)
        if bar is None or not math.isfinite(bar.open):
            return
        cost = self.costs.for_symbol(symbol)
        for order in self.working(symbol):
            if self.reduces(order) or order.client_order_id in self.touched:
                continue
            if self.fresh_entry(order) and self.quantity.get(symbol, 0.0) != 0.0:
                continue
            kind = order.spec.type
            if kind == "market" or order.triggered:
                fill = bar.open
            else:
                price = order.spec.limit_price if kind == "limit" else order.spec.stop_price
                assert price is not None
                fill = open_trigger(order.spec.direction, kind, price, bar.open, self.half_spread(bar, cost))
            if not math.isnan(fill):
                self.fill_entry(order, fill, bar, "open", kind)

    def intrabar(self, symbol: str) -> None:
        bar = self.bars.get(symbol)
        if bar is None or not math.isfinite(bar.open):
            return
        held = self.quantity.get(symbol, 0.0) != 0.0
        if held:
            self.scan(symbol, bar, bar.open, bar.high, bar.low, False, True, "intrabar")
        cost = self.costs.for_symbol(symbol)
        half_spread = self.half_spread(bar, cost)
        for order in self.working(symbol):
            spec = order.spec
            if spec.type == "market" or order.triggered or order.client_order_id in self.touched:
                continue
            # As in the engine, a new strategy entry is only worked on a symbol flat when the bar began.
            if self.reduces(order) or (
                self.fresh_entry(order) and (held or self.quantity.get(symbol, 0.0) != 0.0)
            ):
                continue
            price = spec.limit_price if spec.type == "limit" else spec.stop_price
            assert price is not None
            fill = range_trigger(
                spec.direction, spec.type, price, bar.high, bar.low, half_spread, cost.limit_fill_on_touch
            )
            if math.isnan(fill):
                continue
            was_flat = self.quantity.get(symbol, 0.0) == 0.0
            if self.fill_entry(order, fill, bar, "intrabar", spec.type) and was_flat:
                # The rest of the bar follows the fill: only the stop can be assumed to come after it.
                self.scan(symbol, bar, bar.open, bar.high, bar.low, False, False, "intrabar")

    @staticmethod
    def fresh_entry(order: WorkingOrder) -> bool:
        """A strategy entry not filled yet: it opens a position, so it needs a flat symbol."""
        return order.spec.purpose == "entry" and order.filled_quantity == 0

    def close(self) -> None:
        for symbol in self.quantity:
            bar = self.bars.get(symbol)
            if bar is not None and math.isfinite(bar.close):
                self.marks[symbol] = bar.close
        for order in list(self.orders.values()):
            if not order.is_open:
                continue
            if self.reduces(order) and self.quantity.get(order.spec.symbol, 0.0) == 0.0:
                self.event(order, "cancel", reason="no position to close")
                continue
            if order.spec.valid_bars is None:
                continue
            worked = order.bars_worked + 1
            if worked >= order.spec.valid_bars:
                self.event(
                    order,
                    "expire",
                    reason=f"not filled within {order.spec.valid_bars} bar(s)",
                    bars_worked=worked,
                )
            else:
                self.orders[order.client_order_id] = replace(order, bars_worked=worked)

    def run(self) -> BarOutcome:
        for symbol in self.symbols:
            self.open_exits(symbol)
        for symbol in self.symbols:
            self.open_entries(symbol)
        for symbol in self.symbols:
            self.intrabar(symbol)
        self.close()
        held = {s: q for s, q in self.quantity.items() if q != 0.0}
        return BarOutcome(
            time=self.time,
            fills=tuple(self.fills),
            updates=tuple(self.updates),
            armed=tuple(self.armed),
            orders=tuple(self.orders.values()),
            book=AccountBook(self.cash, held, {s: self.marks[s] for s in held if s in self.marks}),
        )


def match_bar(
    time: int,
    bars: Mapping[str, MarketBar],
    orders: Sequence[WorkingOrder],
    book: AccountBook,
    costs: CostBook,
    symbols: Sequence[str],
) -> BarOutcome:
    """Match the working ``orders`` (in submission order) against the bar of ``time`` (open time, ns).

    ``bars`` holds the bar of every symbol that has one (a symbol without a bar is not traded on
    it); ``symbols`` is the order in which symbols are processed (the deployment's universe, as
    the engine's columns). Terminal orders in ``orders`` are carried through unchanged.
    """
    return _Matcher(time, bars, orders, book, costs, symbols).run()
