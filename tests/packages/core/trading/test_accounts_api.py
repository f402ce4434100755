"""Broker accounts: paper only, the first is the default, balances from the ledger, deactivation
refused while a deployment runs, everything audited and owner-scoped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from packages.core.trading.accounts import execution_assumptions
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.infra.db.models import AuditRecord, BrokerAccount, LedgerEntry
from tests.packages.core.trading.trading_kit import create_deployment, new_trader


async def _audit(api_app: Any, subject_id: str) -> list[str]:
    async with api_app.state.resources.session_factory() as session:
        rows = await session.scalars(
            select(AuditRecord.action).where(AuditRecord.subject_id == subject_id).order_by(AuditRecord.id)
        )
        return list(rows.all())


async def test_accounts_default_rules_balances_and_audit(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    user = await make_account()
    first = await api.post(
        "/broker-accounts",
        json={
            "name": "Main",
            "starting_cash": "25000.50",
            "cost_models": {"crypto": {"fee_bps": 7.5, "spread_bps": 2}},
        },
        headers=user.headers,
    )
    assert first.status_code == 201, first.text
    main = first.json()
    assert (main["kind"], main["provider"], main["status"], main["is_default"]) == (
        "paper",
        "simulated",
        "active",
        True,
    )
    # The crypto model is the one given (other fields at the backtest's defaults); other markets default.
    assert (
        main["cost_models"]["crypto"]["fee_bps"] == 7.5 and main["cost_models"]["crypto"]["spread_bps"] == 2
    )
    assert main["cost_models"]["us_stocks"]["fee_bps"] == 10.0
    # The simulated broker fills with the backtest's assumptions under this cost model.
    async with api_app.state.resources.session_factory() as session:
        stored = await session.get(BrokerAccount, uuid.UUID(main["id"]))
    assert stored is not None
    crypto = execution_assumptions(stored, "crypto", initial_cash=5000)
    assert (crypto.fee_bps, crypto.spread_bps, crypto.initial_cash) == (7.5, 2.0, 5000)
    assert crypto.slippage_bps == ExecutionAssumptions().slippage_bps
    assert execution_assumptions(stored, "us_stocks") == ExecutionAssumptions()
    assert main["balances"] == {
        "cash": 25000.5,
        "deposits": 25000.5,
        "fees_paid": 0.0,
        "realized_pnl": 0.0,
        "allocated": 0.0,
        "available": 25000.5,
        "positions": [],
        "entries": 1,
    }
    second = (
        await api.post(
            "/broker-accounts", json={"name": "Second", "starting_cash": 1000}, headers=user.headers
        )
    ).json()
    assert second["is_default"] is False

    # Balances are the ledger's: a fill booked by the runtime moves cash and the position.
    async with api_app.state.resources.session_factory() as session, session.begin():
        session.add(
            LedgerEntry(
                user_id=uuid.UUID(user.user_id),
                account_id=uuid.UUID(second["id"]),
                kind="fill",
                symbol="AAPL",
                quantity=Decimal("3"),
                price=Decimal("100"),
                cash=Decimal("-301.5"),
                fee=Decimal("1.5"),
                at=datetime(2024, 1, 2, tzinfo=UTC),
            )
        )
    detail = (await api.get(f"/broker-accounts/{second['id']}", headers=user.headers)).json()
    assert detail["balances"]["cash"] == pytest.approx(698.5)
    assert detail["balances"]["fees_paid"] == pytest.approx(1.5)
    # Average-cost accounting (the domain's ledger replay): the fee is the realized PnL so far.
    assert detail["balances"]["positions"] == [
        {"symbol": "AAPL", "quantity": 3.0, "average_price": 100.0, "realized_pnl": -1.5}
    ]

    made_default = await api.post(f"/broker-accounts/{second['id']}/default", headers=user.headers)
    assert made_default.status_code == 200 and made_default.json()["is_default"] is True
    assert (await api.get(f"/broker-accounts/{main['id']}", headers=user.headers)).json()[
        "is_default"
    ] is False

    # Deactivating the default passes it to the oldest other active account.
    gone = await api.post(
        f"/broker-accounts/{second['id']}/deactivate", json={"reason": "done with it"}, headers=user.headers
    )
    assert gone.status_code == 200
    assert (gone.json()["status"], gone.json()["is_default"]) == ("inactive", False)
    assert (await api.get(f"/broker-accounts/{main['id']}", headers=user.headers)).json()[
        "is_default"
    ] is True
    refused = await api.post(f"/broker-accounts/{second['id']}/default", headers=user.headers)
    assert refused.status_code == 409

    page = await api.get("/broker-accounts", params={"limit": 1}, headers=user.headers)
    assert [a["name"] for a in page.json()["items"]] == ["Second"] and page.json()["next_cursor"]
    rest = await api.get(
        "/broker-accounts", params={"limit": 1, "cursor": page.json()["next_cursor"]}, headers=user.headers
    )
    assert [a["name"] for a in rest.json()["items"]] == ["Main"] and rest.json()["next_cursor"] is None

    assert await _audit(api_app, main["id"]) == ["create", "set_default"]
    assert await _audit(api_app, second["id"]) == ["create", "set_default", "deactivate"]

    stranger = await make_account()
    assert (await api.get(f"/broker-accounts/{main['id']}", headers=stranger.headers)).status_code == 404
    assert (
        await api.post(f"/broker-accounts/{main['id']}/deactivate", headers=stranger.headers)
    ).status_code == 404
    assert (await api.get("/broker-accounts", headers=stranger.headers)).json()["items"] == []


async def test_only_paper_accounts_and_never_an_endpoint(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    user = await make_account()
    live = await api.post(
        "/broker-accounts", json={"kind": "live", "name": "Broker", "starting_cash": 10}, headers=user.headers
    )
    assert live.status_code == 422
    assert live.json()["errors"][0]["pointer"] == "/kind" and "later" in live.json()["detail"]
    for field, value in (("endpoint", "https://broker.example/api"), ("credentials", {"key": "k"})):
        refused = await api.post(
            "/broker-accounts",
            json={"name": "Sneaky", "starting_cash": 10, field: value},
            headers=user.headers,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["pointer"] == f"/{field}"
    assert (await api.get("/broker-accounts", headers=user.headers)).json()["items"] == []

    # The database refuses it too, whatever code path tries.
    factory = api_app.state.resources.session_factory
    with pytest.raises(IntegrityError, match="paper_has_no_endpoint"):
        async with factory() as session, session.begin():
            session.add(
                BrokerAccount(
                    user_id=uuid.UUID(user.user_id),
                    kind="paper",
                    provider="simulated",
                    name="x",
                    endpoint="https://broker.example/api",
                )
            )
    created = (
        await api.post("/broker-accounts", json={"name": "P", "starting_cash": 5}, headers=user.headers)
    ).json()
    with pytest.raises(IntegrityError, match="paper_has_no_endpoint"):
        async with factory() as session, session.begin():
            account = await session.get(BrokerAccount, uuid.UUID(created["id"]))
            assert account is not None
            account.credentials_encrypted = b"secret"


async def test_create_is_idempotent_and_deactivation_waits_for_deployments(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    user = await make_account()
    body = {"name": "Once", "starting_cash": 500}
    headers = {**user.headers, "Idempotency-Key": "open-once"}
    first = await api.post("/broker-accounts", json=body, headers=headers)
    again = await api.post("/broker-accounts", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["balances"]["entries"] == 1  # no second deposit
    other = await api.post("/broker-accounts", json={**body, "starting_cash": 600}, headers=headers)
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "idempotency_key_reused"

    trader = await new_trader(api, make_account)
    deployment = await create_deployment(api, trader)
    refused = await api.post(
        f"/broker-accounts/{trader.broker_account_id}/deactivate", headers=trader.headers
    )
    assert refused.status_code == 409 and refused.json()["deployment_ids"] == [deployment["id"]]
    account = (await api.get(f"/broker-accounts/{trader.broker_account_id}", headers=trader.headers)).json()
    assert account["balances"]["allocated"] == 10_000 and account["balances"]["available"] == 90_000
    await api.post(f"/deployments/{deployment['id']}/stop", headers=trader.headers)
    done = await api.post(f"/broker-accounts/{trader.broker_account_id}/deactivate", headers=trader.headers)
    assert done.status_code == 200 and done.json()["status"] == "inactive"
