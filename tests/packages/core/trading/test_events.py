"""record_event: gap-free sequence numbers per deployment even under concurrent writers, stored
with the change and published on ``deployment:{id}`` after the commit (never for a rollback)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from packages.core.trading.events import (
    PnlEvent,
    RiskEvent,
    channel,
    fill_event,
    order_event,
    pnl_event,
    position_event,
    record_event,
    risk_event,
    signal_event,
)
from packages.infra.db.models import (
    Deployment,
    DeploymentEvent,
    Fill,
    Order,
    PnlSnapshot,
    Position,
    RiskDecision,
    SignalEvent,
)
from tests.packages.core.trading.trading_kit import create_deployment, new_trader


async def _record(resources: Any, deployment_id: uuid.UUID, value: int) -> int:
    async with resources.unit_of_work() as uow:
        deployment = await uow.session.get(Deployment, deployment_id)
        assert deployment is not None
        event = await record_event(
            uow,
            deployment,
            "pnl",
            PnlEvent(
                bar_at=datetime(2024, 1, 10, value % 24, tzinfo=UTC),
                equity=10_000 + value,
                cash=10_000,
                realized_pnl=0,
                unrealized_pnl=value,
                positions_value=value,
                drawdown=0,
            ),
        )
        return event.seq


async def test_concurrent_events_are_numbered_one_by_one_and_published(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    resources = api_app.state.resources
    trader = await new_trader(api, make_account)
    deployment_id = uuid.UUID((await create_deployment(api, trader))["id"])  # event 1: created
    pubsub = resources.redis.pubsub()
    await pubsub.subscribe(channel(deployment_id))
    try:
        seqs = await asyncio.gather(*(_record(resources, deployment_id, n) for n in range(12)))
        assert sorted(seqs) == list(range(2, 14))
        received = []
        async with asyncio.timeout(10):
            while len(received) < 12:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if message is not None:
                    received.append(json.loads(message["data"]))
    finally:
        await pubsub.aclose()
    assert sorted(m["seq"] for m in received) == list(range(2, 14))
    assert all(m["type"] == "pnl" and m["deployment_id"] == str(deployment_id) for m in received)

    async with resources.session_factory() as session:
        stored = list(
            (
                await session.execute(
                    select(DeploymentEvent.seq, DeploymentEvent.type, DeploymentEvent.payload)
                    .where(DeploymentEvent.deployment_id == deployment_id)
                    .order_by(DeploymentEvent.seq)
                )
            ).all()
        )
        deployment = await session.get(Deployment, deployment_id)
    assert [seq for seq, _, _ in stored] == list(range(1, 14))
    assert stored[0][1] == "status" and stored[0][2]["to_value"] == "pending"
    assert deployment is not None and deployment.events == 13
    by_seq = {m["seq"]: m["payload"] for m in received}
    assert all(by_seq[seq] == payload for seq, _, payload in stored[1:])


async def test_a_rolled_back_event_is_neither_kept_nor_numbered(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    resources = api_app.state.resources
    trader = await new_trader(api, make_account)
    deployment_id = uuid.UUID((await create_deployment(api, trader))["id"])
    with pytest.raises(RuntimeError):
        async with resources.unit_of_work() as uow:
            deployment = await uow.session.get(Deployment, deployment_id)
            assert deployment is not None
            await record_event(uow, deployment, "risk", RiskEvent(rule="r", allowed=False, message="m"))
            raise RuntimeError("the cycle failed after recording")
    assert await _record(resources, deployment_id, 1) == 2  # no gap
    with pytest.raises(ValidationError):
        async with resources.unit_of_work() as uow:
            deployment = await uow.session.get(Deployment, deployment_id)
            assert deployment is not None
            await record_event(uow, deployment, "fill", {"symbol": "X"})


async def test_every_event_type_has_a_published_schema(api: httpx.AsyncClient, make_account: Any) -> None:
    user = await make_account()
    response = await api.get("/deployments/events/schema", headers=user.headers)
    assert response.status_code == 200
    document = response.json()
    assert set(document["types"]) == {"status", "signal", "order", "fill", "position", "pnl", "risk"}
    assert set(document["envelope"]["required"]) == {"deployment_id", "seq", "type", "at", "payload"}
    assert "equity" in document["types"]["pnl"]["properties"]


async def test_rows_the_cycle_writes_become_typed_events(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    deployment_id = uuid.UUID((await create_deployment(api, trader))["id"])
    owner, bar = uuid.UUID(trader.account.user_id), datetime(2024, 1, 10, 3, tzinfo=UTC)
    async with api_app.state.resources.unit_of_work() as uow:
        deployment = await uow.session.get(Deployment, deployment_id)
        assert deployment is not None
        order = Order(
            user_id=owner,
            deployment_id=deployment_id,
            account_id=deployment.account_id,
            client_order_id="c-1",
            symbol="SYNTH-PT",
            side="buy",
            order_type="market",
            purpose="entry",
            spec={},
            quantity=Decimal("2.5"),
            status="filled",
            filled_quantity=Decimal("2.5"),
            average_fill_price=Decimal("101.25"),
            bar_at=bar,
        )
        uow.session.add(order)
        await uow.session.flush()
        rows: list[Any] = [
            order,
            Fill(
                id=uuid.uuid4(),
                user_id=owner,
                deployment_id=deployment_id,
                order_id=order.id,
                symbol="SYNTH-PT",
                side="buy",
                quantity=Decimal("2.5"),
                price=Decimal("101.25"),
                fee=Decimal("0.25"),
                slippage=Decimal("0.05"),
                filled_at=bar,
            ),
            Position(
                symbol="SYNTH-PT",
                quantity=Decimal("2.5"),
                average_price=Decimal("101.25"),
                realized_pnl=Decimal(0),
            ),
            PnlSnapshot(
                bar_at=bar,
                equity=Decimal(10_001),
                cash=Decimal("9746.625"),
                realized_pnl=Decimal(0),
                unrealized_pnl=Decimal(1),
                positions_value=Decimal("254.375"),
                drawdown=-0.001,
            ),
            RiskDecision(
                bar_at=bar,
                client_order_id="c-2",
                allowed=False,
                rule="max_orders_per_minute",
                compared={"orders": 31, "limit": 30},
                message="too many orders",
            ),
            SignalEvent(
                id=uuid.uuid4(),
                symbol="SYNTH-PT",
                kind="entry",
                side="long",
                bar_at=bar,
                payload={"fast": 101.0},
            ),
        ]
        builders = (order_event, fill_event, position_event, pnl_event, risk_event, signal_event)
        types = ("order", "fill", "position", "pnl", "risk", "signal")
        for row, build, kind in zip(rows, builders, types, strict=True):
            await record_event(uow, deployment, kind, build(row))
    async with api_app.state.resources.session_factory() as session:
        payloads = {
            kind: payload
            for kind, payload in (
                await session.execute(
                    select(DeploymentEvent.type, DeploymentEvent.payload).where(
                        DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.seq > 1
                    )
                )
            ).all()
        }
    assert payloads["order"]["average_fill_price"] == 101.25 and payloads["order"]["client_order_id"] == "c-1"
    assert payloads["fill"]["fee"] == 0.25 and payloads["fill"]["order_id"] == str(order.id)
    assert payloads["position"] == {
        "symbol": "SYNTH-PT",
        "quantity": 2.5,
        "average_price": 101.25,
        "realized_pnl": 0.0,
    }
    assert payloads["pnl"]["cash"] == 9746.625 and payloads["pnl"]["drawdown"] == -0.001
    assert (
        payloads["risk"]["compared"] == {"orders": 31, "limit": 30} and payloads["risk"]["allowed"] is False
    )
    assert payloads["signal"]["details"] == {"fast": 101.0} and payloads["signal"]["side"] == "long"
