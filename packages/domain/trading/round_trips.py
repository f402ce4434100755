"""Round trips: a deployment's fills read as trades, the way a backtest reports its trades.

A trade opens when a symbol's position leaves zero and closes when it returns to zero. Fills that
add to it are its entry (quantity-weighted price, summed fees), fills that take units out are its
exit; a fill that goes through zero closes the trade with the units that reach zero and opens the
next one with the rest (its fee split in proportion). A closed trade's ``pnl`` is computed as the
engine computes a trade's: ``direction x quantity x (exit price - entry price) - entry fee - exit
fee``. The exit reason is the closing fill's exit rule (``stop``, ``fast_below_slow``,
``rotation``...) or, for an order that names none, its purpose (``manual``, ``flatten``).

``TradeBook`` builds the same trades one fill at a time. ``open_positions`` gives the cycle what it
keeps about each open trade: the trade side that opened
it, when it was decided and filled (time exits count bars from the fill), and its fill moment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from packages.domain.strategy.plan import Side
from packages.domain.trading.orders import OrderPurpose
from packages.domain.trading.simulated_broker import Fill, FillMoment


@dataclass(frozen=True)
class RoundTrip:
    symbol: str
    direction: Side
    strategy_side: Side | None  # the trade side of the strategy that opened it (None: a manual trade)
    quantity: float  # units entered
    signal_time: int | None
    entry_time: int
    entry_at: FillMoment
    entry_price: float
    entry_fee: float
    entry_purpose: OrderPurpose
    exit_time: int | None = None
    exit_at: FillMoment | None = None
    exit_price: float | None = None
    exit_fee: float = 0.0
    exit_reason: str | None = None
    exit_purpose: OrderPurpose | None = None
    exit_signal_time: int | None = None
    exited: float = 0.0  # units taken out so far
    entry_fills: tuple[str, ...] = ()
    exit_fills: tuple[str, ...] = ()
    orders: frozenset[str] = field(default_factory=frozenset)  # client order ids of every fill

    @property
    def is_open(self) -> bool:
        return self.exit_time is None or self.exited < self.quantity

    @property
    def partial(self) -> bool:
        """Whether either side of the trade took more than one fill."""
        return len(self.entry_fills) > 1 or len(self.exit_fills) > 1

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "long" else -1.0

    @property
    def pnl(self) -> float:
        """Net PnL of a closed trade (NaN while it is open)."""
        if self.is_open or self.exit_price is None:
            return math.nan
        return (
            self.sign * self.quantity * (self.exit_price - self.entry_price) - self.entry_fee - self.exit_fee
        )


@dataclass(frozen=True)
class PositionMeta:
    """What the cycle keeps about an open position between bars."""

    symbol: str
    side: Side  # the strategy side that opened it (its direction for a manual trade)
    entry_time: int  # open time (ns) of the bar of its first fill
    entry_at: FillMoment
    signal_time: int  # open time of the bar at whose close it was decided


def _weighted(price: float, units: float, add_price: float, add_units: float) -> float:
    return add_price if units == 0 else (units * price + add_units * add_price) / (units + add_units)


def _open(fill: Fill, units: float, fee: float) -> RoundTrip:
    return RoundTrip(
        symbol=fill.symbol,
        direction="long" if fill.side == "buy" else "short",
        strategy_side=fill.strategy_side,
        quantity=units,
        signal_time=fill.signal_time,
        entry_time=fill.time,
        entry_at=fill.at,
        entry_price=fill.price,
        entry_fee=fee,
        entry_purpose=fill.purpose,
        entry_fills=(fill.fill_id,),
        orders=frozenset({fill.client_order_id}),
    )


class TradeBook:
    """Round trips built fill by fill (``add``), so a running deployment does not re-read its history."""

    def __init__(self) -> None:
        self.trades: list[RoundTrip] = []
        self._open: dict[str, int] = {}  # symbol -> index of its open trade

    def add(self, fill: Fill) -> None:
        index = self._open.get(fill.symbol)
        if index is None:
            self._open[fill.symbol] = len(self.trades)
            self.trades.append(_open(fill, fill.quantity, fill.fee))
            return
        trade = self.trades[index]
        held = trade.quantity - trade.exited
        if (fill.side == "buy") == (trade.direction == "long"):
            self.trades[index] = replace(
                trade,
                quantity=trade.quantity + fill.quantity,
                entry_price=_weighted(trade.entry_price, trade.quantity, fill.price, fill.quantity),
                entry_fee=trade.entry_fee + fill.fee,
                entry_fills=(*trade.entry_fills, fill.fill_id),
                orders=trade.orders | {fill.client_order_id},
            )
            return
        closing = min(fill.quantity, held)
        fee = fill.fee if closing == fill.quantity else fill.fee * closing / fill.quantity
        exit_price = fill.price if trade.exit_price is None else trade.exit_price
        self.trades[index] = replace(
            trade,
            exit_time=fill.time,
            exit_at=fill.at,
            exit_price=_weighted(exit_price, trade.exited, fill.price, closing),
            exit_fee=trade.exit_fee + fee,
            exit_reason=fill.exit_rule or fill.purpose,
            exit_purpose=fill.purpose,
            exit_signal_time=fill.signal_time,
            exited=trade.exited + closing if closing < held else trade.quantity,
            exit_fills=(*trade.exit_fills, fill.fill_id),
            orders=trade.orders | {fill.client_order_id},
        )
        if closing < held:
            return
        del self._open[fill.symbol]
        rest = fill.quantity - closing
        if rest > 0:
            self._open[fill.symbol] = len(self.trades)
            self.trades.append(_open(fill, rest, fill.fee - fee))

    def open_trades(self) -> list[RoundTrip]:
        return [self.trades[index] for index in self._open.values()]


def round_trips(fills: Iterable[Fill]) -> list[RoundTrip]:
    """Every trade of ``fills`` (in fill order), closed and open, ordered by entry."""
    book = TradeBook()
    for fill in fills:
        book.add(fill)
    return book.trades


def open_positions(trades: Iterable[RoundTrip]) -> dict[str, PositionMeta]:
    """The cycle's view of every open trade, by symbol."""
    return {
        trade.symbol: PositionMeta(
            symbol=trade.symbol,
            side=trade.strategy_side or trade.direction,
            entry_time=trade.entry_time,
            entry_at=trade.entry_at,
            signal_time=trade.signal_time if trade.signal_time is not None else trade.entry_time,
        )
        for trade in trades
        if trade.is_open
    }
