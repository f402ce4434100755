"""Broker adapters and the accounts they serve; paper and live accounts are different types.

**The adapter** (``BrokerAdapter``) is what every broker implements, the built-in paper broker
(``simulated_broker.PaperBroker``) and, later, live ones: ``submit(order)``, ``cancel(id)``,
``status(id)``, ``positions()``, ``balances()``, each answering with a typed, frozen result.
Submitting an id the broker already knows answers that order's current state with ``duplicate``
set, and changes nothing: that, with deterministic client order ids, is what makes a retried cycle
harmless.

**Accounts.** ``PaperAccount`` and ``LiveAccount`` are distinct classes, not one class with a flag.
Only ``LiveAccount`` has an endpoint (``LiveEndpoint``), and it cannot be built without one; a
``PaperAccount`` has no endpoint field at all and, being frozen with slots, cannot be given one
later. ``resolve_adapter`` dispatches on the type: a paper account goes to the paper factory, whose
signature takes only a ``PaperAccount``; a live factory is only ever called with a ``LiveAccount``
and that account's own endpoint. There is no path by which a paper account reaches a live endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from packages.domain.trading.orders import OrderSpec, OrderStatus

AccountStatus = Literal["active", "inactive"]


@dataclass(frozen=True, slots=True)
class PaperAccount:
    """An account of the built-in simulated broker: no endpoint, no credentials."""

    account_id: str
    currency: str = "USD"
    status: AccountStatus = "active"


@dataclass(frozen=True, slots=True)
class LiveEndpoint:
    """Where a live broker is reached: the broker's adapter name and its API base URL."""

    broker: str
    base_url: str

    def __post_init__(self) -> None:
        if not self.broker or not self.base_url.startswith("https://"):
            raise ValueError("a live endpoint names its broker and an https base URL")


@dataclass(frozen=True, slots=True)
class LiveAccount:
    """An account at a real broker, reached through its endpoint."""

    account_id: str
    endpoint: LiveEndpoint
    currency: str = "USD"
    status: AccountStatus = "active"

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, LiveEndpoint):
            raise TypeError("a live account needs a LiveEndpoint")


Account = PaperAccount | LiveAccount


@dataclass(frozen=True)
class SubmitResult:
    client_order_id: str
    status: OrderStatus
    broker_order_id: str | None = None
    reason: str | None = None  # why a rejected order was rejected
    duplicate: bool = False  # the id was already known: nothing was submitted


@dataclass(frozen=True)
class CancelResult:
    client_order_id: str
    status: OrderStatus
    canceled: bool
    reason: str | None = None  # why nothing was canceled


@dataclass(frozen=True)
class OrderStatusReport:
    client_order_id: str
    status: OrderStatus
    filled_quantity: float
    average_price: float | None
    reason: str | None = None


@dataclass(frozen=True)
class PositionReport:
    symbol: str
    quantity: float  # signed
    average_price: float
    market_price: float | None


@dataclass(frozen=True)
class BalanceReport:
    currency: str
    cash: float
    equity: float
    buying_power: float


class BrokerAdapter(Protocol):
    def submit(self, order: OrderSpec) -> SubmitResult: ...
    def cancel(self, client_order_id: str) -> CancelResult: ...
    def status(self, client_order_id: str) -> OrderStatusReport: ...
    def positions(self) -> tuple[PositionReport, ...]: ...
    def balances(self) -> BalanceReport: ...


PaperAdapterFactory = Callable[[PaperAccount], BrokerAdapter]
LiveAdapterFactory = Callable[[LiveAccount, LiveEndpoint], BrokerAdapter]


class NoAdapter(LookupError):
    """No adapter serves this account (an unknown live broker, or an inactive account)."""


def resolve_adapter(
    account: Account,
    *,
    paper: PaperAdapterFactory,
    live: Mapping[str, LiveAdapterFactory] | None = None,
) -> BrokerAdapter:
    """The adapter of ``account``: the paper factory for a ``PaperAccount``, the factory of the
    endpoint's broker for a ``LiveAccount`` (called with that account and its own endpoint)."""
    if account.status != "active":
        raise NoAdapter(f"account {account.account_id} is {account.status}")
    if isinstance(account, PaperAccount):
        return paper(account)
    factory = (live or {}).get(account.endpoint.broker)
    if factory is None:
        raise NoAdapter(f"no adapter for the live broker {account.endpoint.broker!r}")
    return factory(account, account.endpoint)
