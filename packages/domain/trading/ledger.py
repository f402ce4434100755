"""The cash and position ledger: entries in, balances out; the entries are the source of truth.

Every movement of a deployment's money is one ``LedgerEntry`` (infra stores each as a
``ledger_entries`` row, in order):

* ``deposit``: cash in (the allocated capital) or out (a negative amount);
* ``fill``: a fill of ``quantity`` units (signed: + bought, - sold) at ``price`` with ``fee``; its
  cash change is ``-(quantity x price + fee)`` for a buy and ``quantity x price - fee`` for a sell;
* ``adjustment``: a manual correction of cash and/or of a position (units moved in or out at a
  price, cash unchanged unless stated), with a note saying why.

``replay(entries)`` rebuilds the state from nothing; ``apply(state, entry)`` moves it one entry on;
both give the same state for the same entries, always. The state holds the cash, each symbol's
signed quantity, average entry price (of the open quantity) and realized PnL (price PnL of closed
quantity net of every fee paid on the symbol), and totals. Equity at marks is cash plus the marked
value of the positions (``equity``); a held symbol without a mark is valued at its average price.

**Numbers are float64, on purpose.** The paper broker must size orders exactly as the backtest
engine does, and the engine's sizing reads equity computed in float64 from cash it carries as a
running float64 sum of the same cash changes, in fill order. The ledger therefore sums the same
float64 values in the same order (entry order), which makes paper equity, and every quantity sized
from it, equal to the engine's bit for bit; ``Decimal`` sums would differ in the last digits and so
would the quantities. Determinism does not suffer: one order of summation (the entries' sequence),
one result. Infra should store the values so that they read back as the same doubles (double
precision, or decimals with 17 significant digits); a column rounding to fewer digits makes a
replayed state equal the live one only to that rounding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

LedgerKind = Literal["deposit", "fill", "adjustment"]


@dataclass(frozen=True)
class LedgerEntry:
    kind: LedgerKind
    at: int  # UTC nanoseconds
    cash: float  # the change of cash, fees included
    symbol: str | None = None
    quantity: float = 0.0  # signed change of the position
    price: float | None = None
    fee: float = 0.0
    reference: str | None = None  # the fill's or order's id
    note: str | None = None


def deposit(at: int, amount: float, note: str | None = None) -> LedgerEntry:
    if not math.isfinite(amount) or amount == 0:
        raise ValueError("a deposit moves a finite, non-zero amount")
    return LedgerEntry("deposit", at, amount, note=note)


def fill_entry(
    at: int, symbol: str, quantity: float, price: float, fee: float, reference: str | None = None
) -> LedgerEntry:
    """A fill of signed ``quantity`` (+ buy, - sell); the cash change follows the engine's arithmetic."""
    if quantity == 0 or not (math.isfinite(quantity) and math.isfinite(price) and price > 0):
        raise ValueError("a fill has a non-zero quantity and a positive price")
    units = abs(quantity)
    cash = -(units * price + fee) if quantity > 0 else units * price - fee
    return LedgerEntry("fill", at, cash, symbol, quantity, price, fee, reference)


def adjustment(
    at: int,
    note: str,
    *,
    cash: float = 0.0,
    symbol: str | None = None,
    quantity: float = 0.0,
    price: float | None = None,
) -> LedgerEntry:
    """A manual correction: ``cash`` in or out and/or ``quantity`` units of ``symbol`` at ``price``."""
    if not note:
        raise ValueError("an adjustment says why")
    if quantity != 0 and (symbol is None or price is None or not price > 0):
        raise ValueError("a position adjustment names its symbol and a positive price")
    return LedgerEntry("adjustment", at, cash, symbol, quantity, price, note=note)


@dataclass(frozen=True)
class PositionState:
    quantity: float = 0.0  # signed: > 0 long, < 0 short
    average_price: float = math.nan  # of the open quantity; NaN when flat
    realized_pnl: float = 0.0  # price PnL of closed quantity, net of every fee paid on the symbol
    fees: float = 0.0


@dataclass(frozen=True)
class LedgerState:
    cash: float = 0.0
    positions: Mapping[str, PositionState] = field(default_factory=dict)  # every symbol ever traded
    deposits: float = 0.0
    fees: float = 0.0
    adjustments: float = 0.0  # cash moved by adjustments
    entries: int = 0

    def quantity(self, symbol: str) -> float:
        position = self.positions.get(symbol)
        return 0.0 if position is None else position.quantity

    def held(self) -> dict[str, float]:
        """Signed quantity of every open position."""
        return {s: p.quantity for s, p in self.positions.items() if p.quantity != 0}

    @property
    def realized_pnl(self) -> float:
        return sum(p.realized_pnl for p in self.positions.values())

    def positions_value(self, marks: Mapping[str, float], order: Sequence[str] | None = None) -> float:
        """Marked value of the open positions, summed in ``order`` (default: first traded first)."""
        value = 0.0
        for symbol in order if order is not None else tuple(self.positions):
            position = self.positions.get(symbol)
            if position is None or position.quantity == 0:
                continue
            mark = marks.get(symbol, math.nan)
            value += position.quantity * (mark if math.isfinite(mark) else position.average_price)
        return value

    def equity(self, marks: Mapping[str, float], order: Sequence[str] | None = None) -> float:
        return self.cash + self.positions_value(marks, order)

    def unrealized_pnl(self, marks: Mapping[str, float]) -> float:
        total = 0.0
        for symbol, position in self.positions.items():
            if position.quantity == 0:
                continue
            mark = marks.get(symbol, math.nan)
            if math.isfinite(mark):
                total += position.quantity * (mark - position.average_price)
        return total


def _move_position(position: PositionState, quantity: float, price: float, fee: float) -> PositionState:
    """``position`` after ``quantity`` units (signed) change hands at ``price`` (average-cost accounting)."""
    held = position.quantity
    realized = position.realized_pnl - fee
    if held == 0 or (held > 0) == (quantity > 0):
        total = held + quantity
        average = price if held == 0 else (held * position.average_price + quantity * price) / total
        return PositionState(total, average, realized, position.fees + fee)
    closed = min(abs(quantity), abs(held))
    realized += closed * (price - position.average_price) * (1.0 if held > 0 else -1.0)
    total = held + quantity
    if abs(quantity) < abs(held):
        return PositionState(total, position.average_price, realized, position.fees + fee)
    if abs(quantity) == abs(held):
        return PositionState(0.0, math.nan, realized, position.fees + fee)
    # Through zero: the rest opens a position the other way at this price.
    return PositionState(total, price, realized, position.fees + fee)


def apply(state: LedgerState, entry: LedgerEntry) -> LedgerState:
    """``state`` after ``entry``."""
    positions = state.positions
    if entry.quantity != 0:
        assert entry.symbol is not None and entry.price is not None
        positions = dict(positions)
        positions[entry.symbol] = _move_position(
            positions.get(entry.symbol, PositionState()), entry.quantity, entry.price, entry.fee
        )
    return LedgerState(
        cash=state.cash + entry.cash,
        positions=positions,
        deposits=state.deposits + (entry.cash if entry.kind == "deposit" else 0.0),
        fees=state.fees + entry.fee,
        adjustments=state.adjustments + (entry.cash if entry.kind == "adjustment" else 0.0),
        entries=state.entries + 1,
    )


def replay(entries: Iterable[LedgerEntry]) -> LedgerState:
    """The state the ``entries`` build, applied in their order from an empty ledger."""
    state = LedgerState()
    for entry in entries:
        state = apply(state, entry)
    return state
