"""Accounts and adapters: paper and live are different types, and a paper account never reaches a live endpoint."""

from __future__ import annotations

import dataclasses

import pytest

from packages.domain.trading.broker import (
    BrokerAdapter,
    LiveAccount,
    LiveEndpoint,
    NoAdapter,
    PaperAccount,
    resolve_adapter,
)
from packages.domain.trading.costs import CostBook
from packages.domain.trading.ledger import deposit
from packages.domain.trading.orders import ClosePosition, OrderSpec, Quantity
from packages.domain.trading.paper_broker import PaperBroker

ENDPOINT = LiveEndpoint("alpaca", "https://api.alpaca.markets")


class Recorder:
    """Adapter factories that note who called them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, object]] = []

    def paper(self, account: PaperAccount) -> BrokerAdapter:
        self.calls.append(("paper", account, None))
        return PaperBroker(account, symbols=("X",), costs=CostBook())

    def live(self, account: LiveAccount, endpoint: LiveEndpoint) -> BrokerAdapter:
        self.calls.append(("live", account, endpoint))
        return PaperBroker(PaperAccount("stand-in"), symbols=("X",), costs=CostBook())


def test_a_paper_account_has_no_endpoint_and_cannot_be_given_one() -> None:
    account = PaperAccount("p-1")
    assert "endpoint" not in {f.name for f in dataclasses.fields(PaperAccount)}
    with pytest.raises(TypeError):
        PaperAccount("p-1", endpoint=ENDPOINT)  # type: ignore[call-arg]
    with pytest.raises((AttributeError, TypeError, dataclasses.FrozenInstanceError)):
        account.endpoint = ENDPOINT  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        dataclasses.replace(account, endpoint=ENDPOINT)  # type: ignore[call-arg]
    assert not isinstance(account, LiveAccount) and not issubclass(PaperAccount, LiveAccount)
    assert not issubclass(LiveAccount, PaperAccount)


def test_a_live_account_needs_a_real_endpoint() -> None:
    with pytest.raises(TypeError):
        LiveAccount("l-1")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        LiveAccount("l-1", "https://api.alpaca.markets")  # type: ignore[arg-type]
    for broker, url in (("", "https://x"), ("alpaca", "http://plain"), ("alpaca", "")):
        with pytest.raises(ValueError):
            LiveEndpoint(broker, url)


def test_a_paper_account_resolves_to_the_paper_factory_only() -> None:
    recorder = Recorder()
    account = PaperAccount("p-1")
    adapter = resolve_adapter(
        account, paper=recorder.paper, live={"alpaca": recorder.live, "": recorder.live}
    )
    assert isinstance(adapter, PaperBroker)
    assert recorder.calls == [("paper", account, None)]


def test_a_live_account_resolves_to_its_brokers_factory_with_its_own_endpoint() -> None:
    recorder = Recorder()
    account = LiveAccount("l-1", ENDPOINT)
    resolve_adapter(account, paper=recorder.paper, live={"alpaca": recorder.live})
    assert recorder.calls == [("live", account, ENDPOINT)]
    with pytest.raises(NoAdapter):
        resolve_adapter(LiveAccount("l-2", LiveEndpoint("ibkr", "https://x")), paper=recorder.paper, live={})
    with pytest.raises(NoAdapter):
        resolve_adapter(PaperAccount("p-2", status="inactive"), paper=recorder.paper)


def test_the_simulated_broker_refuses_a_live_account() -> None:
    with pytest.raises(TypeError):
        PaperBroker(LiveAccount("l-1", ENDPOINT), symbols=("X",), costs=CostBook())  # type: ignore[arg-type]


def test_the_paper_broker_answers_the_adapter_calls() -> None:
    broker = PaperBroker(PaperAccount("p-1"), symbols=("X",), costs=CostBook())
    broker.record(deposit(0, 1_000.0))
    order = OrderSpec("mz-1", "X", "buy", "market", Quantity(2), "manual")
    first = broker.submit(order)
    again = broker.submit(order)
    assert first.status == "accepted" and not first.duplicate
    assert again.duplicate and again.status == "accepted" and len(broker.open_orders()) == 1
    assert broker.submit(OrderSpec("mz-2", "Y", "buy", "market", Quantity(1), "manual")).status == "rejected"
    closing = broker.submit(OrderSpec("mz-3", "X", "sell", "market", ClosePosition(), "manual"))
    assert closing.status == "rejected" and "no position" in (closing.reason or "")
    assert broker.status("mz-1").filled_quantity == 0 and broker.status("mz-1").average_price is None
    assert broker.balances().cash == 1_000.0 and broker.positions() == ()
    assert broker.cancel("mz-1").canceled
    assert not broker.cancel("mz-1").canceled and broker.status("mz-1").status == "canceled"
    assert broker.cancel("unknown").reason == "unknown order"
