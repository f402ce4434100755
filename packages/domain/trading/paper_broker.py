"""The built-in paper broker of one account, in memory: the ``broker.BrokerAdapter`` over ``match_bar``.

Cycles submit and cancel orders; ``on_bar`` matches each new bar (``simulated_broker.match_bar``)
and books every fill in the ledger, whose entries (``ledger``) rebuild ``state`` by replay. Tests,
replays and the benchmark use it as it is; infra implements the same adapter over its tables,
storing the same values (``WorkingOrder.to_json``, ledger entries) as rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from packages.domain.trading.broker import (
    BalanceReport,
    CancelResult,
    OrderStatusReport,
    PaperAccount,
    PositionReport,
    SubmitResult,
)
from packages.domain.trading.costs import CostBook
from packages.domain.trading.ledger import LedgerEntry, apply, replay
from packages.domain.trading.orders import OrderEvent, OrderSpec, transition
from packages.domain.trading.simulated_broker import (
    AccountBook,
    BarOutcome,
    Fill,
    MarketBar,
    WorkingOrder,
    match_bar,
)


class PaperBroker:
    """One paper account's broker: its ledger, orders, fills and last prices (``marks``)."""

    def __init__(
        self,
        account: PaperAccount,
        *,
        symbols: Sequence[str],
        costs: CostBook,
        entries: Iterable[LedgerEntry] = (),
    ) -> None:
        if not isinstance(account, PaperAccount):
            raise TypeError("the simulated broker serves paper accounts only")
        self.account = account
        self.symbols = tuple(symbols)
        self.costs = costs
        self.ledger: list[LedgerEntry] = list(entries)
        self.state = replay(self.ledger)
        self.marks: dict[str, float] = {}
        self.orders: dict[str, WorkingOrder] = {}  # every order ever submitted, by id
        self._open: dict[str, None] = {}  # ids of the open ones, in submission order
        self.fills: list[Fill] = []
        self.time = 0

    def _store(self, order: WorkingOrder) -> None:
        self.orders[order.client_order_id] = order
        if order.is_open:
            self._open[order.client_order_id] = None
        else:
            self._open.pop(order.client_order_id, None)

    def record(self, entry: LedgerEntry) -> None:
        self.ledger.append(entry)
        self.state = apply(self.state, entry)

    # -- BrokerAdapter -------------------------------------------------------------------------
    def submit(self, order: OrderSpec) -> SubmitResult:
        known = self.orders.get(order.client_order_id)
        if known is not None:
            return SubmitResult(
                order.client_order_id, known.status, known.client_order_id, known.reason, True
            )
        reason = None
        if order.symbol not in self.symbols:
            reason = f"{order.symbol} is not traded by this deployment"
        elif order.reduces_only and self.state.quantity(order.symbol) == 0:
            reason = f"no position in {order.symbol} to reduce"
        working = WorkingOrder(order, status="new")
        event: OrderEvent = "reject" if reason else "accept"
        working = replace(working, status=transition("new", event), reason=reason)
        self._store(working)
        return SubmitResult(order.client_order_id, working.status, order.client_order_id, reason)

    def cancel(self, client_order_id: str) -> CancelResult:
        order = self.orders.get(client_order_id)
        if order is None:
            return CancelResult(client_order_id, "rejected", False, "unknown order")
        if not order.is_open:
            return CancelResult(client_order_id, order.status, False, f"the order is already {order.status}")
        self._store(replace(order, status=transition(order.status, "cancel"), reason="canceled"))
        return CancelResult(client_order_id, "canceled", True)

    def status(self, client_order_id: str) -> OrderStatusReport:
        order = self.orders[client_order_id]
        average = None if order.filled_quantity == 0 else order.average_price
        return OrderStatusReport(client_order_id, order.status, order.filled_quantity, average, order.reason)

    def positions(self) -> tuple[PositionReport, ...]:
        return tuple(
            PositionReport(symbol, position.quantity, position.average_price, self.marks.get(symbol))
            for symbol, position in self.state.positions.items()
            if position.quantity != 0
        )

    def balances(self) -> BalanceReport:
        equity = self.state.equity(self.marks, self.symbols)
        gross = sum(abs(q * self.marks.get(s, math.nan)) for s, q in self.state.held().items())
        return BalanceReport(
            self.account.currency, self.state.cash, equity, equity * self.costs.leverage - gross
        )

    # -- the clock -----------------------------------------------------------------------------
    def open_orders(self) -> tuple[WorkingOrder, ...]:
        return tuple(self.orders[order_id] for order_id in self._open)

    def on_bar(self, time: int, bars: Mapping[str, MarketBar]) -> BarOutcome:
        """Match the open orders against the bar of ``time`` and book the fills."""
        book = AccountBook.from_ledger(self.state, self.marks)
        outcome = match_bar(time, bars, self.open_orders(), book, self.costs, self.symbols)
        for order in outcome.orders:
            self._store(order)
        for fill in outcome.fills:
            self.record(fill.ledger_entry())
        self.fills.extend(outcome.fills)
        self.marks.update(outcome.book.marks)
        self.time = time
        return outcome
