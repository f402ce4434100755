"""Deployments over REST: proposed then confirmed, pinned to a revision, started only when ready,
every transition recorded with actor and reason; manual actions, risk limits, sub-resources."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from packages.infra.db.models import (
    AuditRecord,
    Deployment,
    LedgerEntry,
    Order,
    PnlSnapshot,
    Position,
    RiskDecision,
)
from tests.packages.core.trading.trading_kit import (
    REPLAY_START,
    SYMBOL,
    confirm,
    create_deployment,
    deployment_body,
    new_trader,
    start_deployment,
    strategy_document,
    user_uuid,
)


async def _transitions(api: httpx.AsyncClient, trader: Any, deployment_id: str) -> list[tuple[Any, ...]]:
    page = await api.get(f"/deployments/{deployment_id}/transitions", headers=trader.headers)
    assert page.status_code == 200, page.text
    return [
        (t["field"], t["from_value"], t["to_value"], t["actor"], t["reason"])
        for t in reversed(page.json()["items"])
    ]


async def test_lifecycle_pins_the_revision_and_records_every_transition(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    preview = await api.post(
        "/deployments", json=deployment_body(trader, name="Synth run"), headers=trader.headers
    )
    assert preview.status_code == 202, preview.text
    proposal = preview.json()
    assert proposal["action"] == "create_deployment"
    details = proposal["preview"]
    assert (details["strategy_version"], details["account_id"], details["capital"]) == (
        1,
        trader.broker_account_id,
        "10000",
    )
    assert (
        "Synth run" in proposal["summary"]
        and "replay clock from 2024-01-10 00:00 UTC at 3600x" in proposal["summary"]
    )
    assert (await api.get("/deployments", headers=trader.headers)).json()["items"] == []  # nothing yet

    # A new revision after the preview does not change what the confirmation creates.
    changed = strategy_document()
    changed["factors"][0]["params"]["period"] = 12
    updated = await api.put(
        f"/strategies/{trader.strategy_id}",
        json={"document": changed, "expected_version": 1},
        headers=trader.headers,
    )
    assert updated.status_code == 200 and updated.json()["current_version"] == 2
    created = (await confirm(api, trader, proposal))["deployment"]
    assert (created["status"], created["trading_state"], created["strategy_version"]) == (
        "pending",
        "active",
        1,
    )
    assert created["clock"] == "replay" and created["replay_speed"] == 3600
    assert created["replay_start"].startswith("2024-01-10T00:00:00")
    async with api_app.state.resources.session_factory() as session:
        row = await session.get(Deployment, uuid.UUID(created["id"]))
        assert row is not None and row.document["factors"][0]["params"]["period"] == 10  # version 1, copied

    ready = (await api.get(f"/deployments/{created['id']}/readiness", headers=trader.headers)).json()
    assert ready["ready"] is True, ready["problems"]
    assert [c["code"] for c in ready["checks"]] == [
        "status",
        "strategy_exists",
        "strategy_confirmed",
        "strategy_valid",
        "strategy_pinned",
        "symbols_have_data",
        "warmup_history",
        "supported_features",
        "account_active",
        "enough_cash",
        "limits_sane",
        "clock",
        "kill_switch",
    ]
    assert all(c["ok"] and c["hint"] is None for c in ready["checks"])

    started = await start_deployment(api, trader, created["id"])
    assert started["status"] == "active" and started["started_at"] is not None
    paused = await api.post(
        f"/deployments/{created['id']}/pause", json={"reason": "lunch break"}, headers=trader.headers
    )
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = await api.post(f"/deployments/{created['id']}/pause", headers=trader.headers)
    assert again.status_code == 200  # already paused: nothing new recorded
    resumed = await start_deployment(api, trader, created["id"])
    assert resumed["status"] == "active"
    stopped = await api.post(
        f"/deployments/{created['id']}/stop", json={"reason": "enough"}, headers=trader.headers
    )
    assert stopped.json()["status"] == "stopped" and stopped.json()["stopped_at"] is not None
    assert (await api.post(f"/deployments/{created['id']}/pause", headers=trader.headers)).status_code == 409
    restart = await api.post(f"/deployments/{created['id']}/start", headers=trader.headers)
    assert restart.status_code == 409

    assert await _transitions(api, trader, created["id"]) == [
        ("status", None, "pending", "user", "created on confirmation by the user"),
        ("status", "pending", "active", "user", "started on confirmation by the user"),
        ("status", "active", "paused", "user", "paused by the user: lunch break"),
        ("status", "paused", "active", "user", "started on confirmation by the user"),
        ("status", "active", "stopped", "user", "stopped by the user: enough"),
    ]
    detail = (await api.get(f"/deployments/{created['id']}", headers=trader.headers)).json()
    assert detail["last_event_seq"] == 5  # one status event per transition

    stranger = await make_account()
    for path in (
        "",
        "/readiness",
        "/orders",
        "/fills",
        "/positions",
        "/pnl",
        "/signals",
        "/risk-log",
        "/transitions",
        "/actions",
    ):
        assert (
            await api.get(f"/deployments/{created['id']}{path}", headers=stranger.headers)
        ).status_code == 404, path
    for path in ("/start", "/pause", "/stop"):
        assert (
            await api.post(f"/deployments/{created['id']}{path}", headers=stranger.headers)
        ).status_code == 404


async def test_readiness_says_what_is_missing(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account, confirm_strategy=False)
    # Too early for the warm-up: 5 hours of history before the start.
    early = await create_deployment(api, trader, replay_start="2024-01-01T05:00:00Z", capital=90_000)
    readiness = (await api.get(f"/deployments/{early['id']}/readiness", headers=trader.headers)).json()
    assert readiness["ready"] is False
    problems = " ".join(readiness["problems"])
    assert "still a draft" in problems and f"/strategies/{trader.strategy_id}/confirm" in problems
    assert "need 30 bars of history before the start; SYNTH-PT has 5" in problems
    assert {c["code"] for c in readiness["checks"] if not c["ok"]} == {"strategy_confirmed", "warmup_history"}
    start = await api.post(f"/deployments/{early['id']}/start", headers=trader.headers)
    assert start.status_code == 409 and any("draft" in p for p in start.json()["problems"])

    # Offline, a realtime clock gets no bars for a symbol the realtime feed does not publish.
    realtime = await create_deployment(
        api, trader, clock="realtime", replay_start=None, replay_speed=None, capital=100
    )
    problems = " ".join(
        (await api.get(f"/deployments/{realtime['id']}/readiness", headers=trader.headers)).json()["problems"]
    )
    assert "publishes no realtime bars" in problems and "Use the replay clock instead" in problems

    assert (
        await api.post(f"/strategies/{trader.strategy_id}/confirm", headers=trader.headers)
    ).status_code == 200
    late = await create_deployment(api, trader, replay_start="2025-06-01T00:00:00Z", capital=1000)
    problems = " ".join(
        (await api.get(f"/deployments/{late['id']}/readiness", headers=trader.headers)).json()["problems"]
    )
    assert "outside them" in problems and "2024-01-01 to 2024-02-09" in problems
    assert "draft" not in problems

    # Cash leaves the account after the deployments were created (as fills or a correction would).
    async with api_app.state.resources.session_factory() as session, session.begin():
        session.add(
            LedgerEntry(
                user_id=user_uuid(trader),
                account_id=uuid.UUID(trader.broker_account_id),
                kind="adjustment",
                cash=Decimal(-20_000),
                note="test correction",
                at=datetime(2024, 1, 2, tzinfo=UTC),
            )
        )
    problems = " ".join(
        (await api.get(f"/deployments/{early['id']}/readiness", headers=trader.headers)).json()["problems"]
    )
    assert "The account has 78,900.00 available, less than the 90,000.00 to allocate" in problems

    # Requests that can never be right are refused at once, pointing at the field.
    for body, pointer in (
        (deployment_body(trader, capital=1_000_000), "/capital"),
        (deployment_body(trader, replay_start=None), "/replay_start"),
        (deployment_body(trader, replay_start="2999-01-01"), "/replay_start"),
        (deployment_body(trader, clock="realtime"), "/replay_start"),
        (deployment_body(trader, replay_speed=10**7), "/replay_speed"),
        (deployment_body(trader, version=7), "/version"),
        (deployment_body(trader, account_id=str(uuid.uuid4())), "/account_id"),
        (deployment_body(trader, risk_limits={"allowed_symbols": ["OTHER"]}), "/risk_limits/allowed_symbols"),
    ):
        refused = await api.post("/deployments", json=body, headers=trader.headers)
        assert refused.status_code == 422, (pointer, refused.text)
        assert refused.json()["errors"][0]["pointer"] == pointer, refused.json()


async def test_manual_actions_limits_and_sub_resources(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    deployment = await start_deployment(api, trader, (await create_deployment(api, trader))["id"])
    deployment_id = uuid.UUID(deployment["id"])
    owner = user_uuid(trader)
    bar = datetime(2024, 1, 10, 5, tzinfo=UTC)
    # What a cycle would have written (the runtime's part): an open order, a position, PnL, a risk decision.
    async with api_app.state.resources.session_factory() as session, session.begin():
        order = Order(
            user_id=owner,
            deployment_id=deployment_id,
            account_id=uuid.UUID(trader.broker_account_id),
            client_order_id="d1-entry-1",
            symbol=SYMBOL,
            side="buy",
            order_type="limit",
            purpose="entry",
            spec={"quantity": 10},
            quantity=Decimal(10),
            limit_price=Decimal("99.5"),
            status="accepted",
            bar_at=bar,
        )
        session.add(order)
        session.add(
            Position(
                user_id=owner,
                deployment_id=deployment_id,
                symbol=SYMBOL,
                quantity=Decimal(10),
                average_price=Decimal(100),
            )
        )
        for hour in range(300):
            equity = 10_000 + 50 * ((hour % 20) - 10)
            session.add(
                PnlSnapshot(
                    user_id=owner,
                    deployment_id=deployment_id,
                    bar_at=bar + timedelta(hours=hour),
                    equity=Decimal(equity),
                    cash=Decimal(9000),
                    realized_pnl=Decimal(0),
                    unrealized_pnl=Decimal(equity - 10_000),
                    positions_value=Decimal(equity - 9000),
                    drawdown=min(0.0, (equity - 10_500) / 10_500),
                )
            )
        session.add(
            RiskDecision(
                user_id=owner,
                deployment_id=deployment_id,
                bar_at=bar,
                client_order_id="d1-entry-2",
                allowed=False,
                rule="max_position_notional",
                compared={"notional": 20_000, "limit": 15_000},
                message="position too large",
            )
        )
    order_id = str(order.id)

    # Safety actions are recorded at once for the next cycle.
    closed = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "close", "symbol": SYMBOL.lower()},
        headers=trader.headers,
    )
    assert closed.status_code == 202, closed.text
    assert (closed.json()["action"], closed.json()["status"], closed.json()["params"]) == (
        "close",
        "pending",
        {"symbol": SYMBOL},
    )
    reduced = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "reduce", "symbol": SYMBOL, "fraction": 0.5},
        headers=trader.headers,
    )
    assert reduced.json()["params"] == {"symbol": SYMBOL, "fraction": 0.5}
    cancel = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "cancel_order", "order_id": order_id},
        headers=trader.headers,
    )
    assert cancel.json()["params"]["client_order_id"] == "d1-entry-1"
    flatten = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "flatten", "reason": "risk off"},
        headers=trader.headers,
    )
    assert flatten.json()["reason"] == "flatten by the user: risk off"
    nothing = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "close", "symbol": "BTC"},
        headers=trader.headers,
    )
    assert nothing.status_code == 409
    both = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "reduce", "symbol": SYMBOL, "fraction": 0.5, "quantity": 1},
        headers=trader.headers,
    )
    assert both.status_code == 422

    # Opening needs confirmation, then it is recorded like the others, bound to its confirmation.
    opening = await api.post(
        f"/deployments/{deployment_id}/actions",
        json={"action": "open", "symbol": SYMBOL, "direction": "long", "notional": 2500},
        headers=trader.headers,
    )
    assert opening.status_code == 202 and opening.json()["status"] == "confirmation_required"
    assert "Buy 2,500.00 USD of SYNTH-PT at market" in opening.json()["summary"]
    opened = (await confirm(api, trader, opening.json()))["manual_action"]
    assert opened["action"] == "open" and opened["confirmation_id"] == opening.json()["confirmation_id"]
    assert opened["params"] == {
        "symbol": SYMBOL,
        "direction": "long",
        "order_type": "market",
        "notional": "2500",
    }
    actions = (await api.get(f"/deployments/{deployment_id}/actions", headers=trader.headers)).json()["items"]
    assert [a["action"] for a in actions] == ["open", "flatten", "cancel_order", "reduce", "close"]
    assert (await api.get(f"/deployments/{deployment_id}", headers=trader.headers)).json()[
        "pending_manual_actions"
    ] == 5

    # Tighter limits apply at once; raising one needs confirmation.
    tighter = await api.put(
        f"/deployments/{deployment_id}/risk-limits",
        json={"max_daily_loss": 0.02, "max_drawdown": 0.1},
        headers=trader.headers,
    )
    assert tighter.status_code == 200 and tighter.json()["risk_limits"]["max_daily_loss"] == 0.02
    looser = await api.put(
        f"/deployments/{deployment_id}/risk-limits",
        json={"max_daily_loss": 0.1, "max_drawdown": 0.1},
        headers=trader.headers,
    )
    assert looser.status_code == 202 and looser.json()["preview"]["raised"] == ["max_daily_loss"]
    raised = (await confirm(api, trader, looser.json()))["deployment"]
    assert raised["risk_limits"]["max_daily_loss"] == 0.1

    orders = (
        await api.get(
            f"/deployments/{deployment_id}/orders", params={"status": "accepted"}, headers=trader.headers
        )
    ).json()
    assert [o["client_order_id"] for o in orders["items"]] == ["d1-entry-1"] and orders["items"][0][
        "limit_price"
    ] == 99.5
    positions = (await api.get(f"/deployments/{deployment_id}/positions", headers=trader.headers)).json()[
        "items"
    ]
    assert [(p["symbol"], p["quantity"]) for p in positions] == [(SYMBOL, 10.0)]
    risk = (await api.get(f"/deployments/{deployment_id}/risk-log", headers=trader.headers)).json()["items"]
    assert risk[0]["rule"] == "max_position_notional" and risk[0]["compared"] == {
        "notional": 20_000,
        "limit": 15_000,
    }

    pnl = (
        await api.get(f"/deployments/{deployment_id}/pnl", params={"points": 40}, headers=trader.headers)
    ).json()
    assert pnl["snapshots"] == 300 and 2 <= pnl["points"] <= 40
    assert len(pnl["time"]) == len(pnl["equity"]) == len(pnl["drawdown"]) == pnl["points"]
    assert max(pnl["equity"]) == 10_450 and min(pnl["equity"]) == 9_500  # extremes survive
    assert pnl["time"] == sorted(pnl["time"]) and pnl["latest"]["equity"] == 10_000 + 50 * ((299 % 20) - 10)
    ranged = (
        await api.get(
            f"/deployments/{deployment_id}/pnl",
            params={"start": "2024-01-10T06:00:00Z", "end": "2024-01-10T09:00:00Z"},
            headers=trader.headers,
        )
    ).json()
    assert ranged["snapshots"] == 3 and ranged["points"] == 3

    stopped = await api.post(f"/deployments/{deployment_id}/stop", headers=trader.headers)
    assert stopped.json()["pending_manual_actions"] == 0  # canceled: no cycle will run them
    async with api_app.state.resources.session_factory() as session:
        audited = list(
            (
                await session.scalars(
                    select(AuditRecord.action)
                    .where(AuditRecord.subject_id == str(deployment_id))
                    .order_by(AuditRecord.id)
                )
            ).all()
        )
    assert audited == [
        "create",
        "manual_close",
        "manual_reduce",
        "manual_cancel_order",
        "manual_flatten",
        "manual_open",
        "risk_limits",
        "risk_limits",
    ]


async def test_deployment_cap_and_replay_start_is_checked_against_the_data(
    api: httpx.AsyncClient, make_account: Any, settings: Any
) -> None:
    trader = await new_trader(api, make_account)
    cap = settings.trading.max_deployments_per_user
    assert REPLAY_START  # every deployment below is a small replay one
    previews = []
    for _ in range(cap):
        response = await api.post(
            "/deployments", json=deployment_body(trader, capital=10), headers=trader.headers
        )
        previews.append(response.json())
    for preview in previews:
        await confirm(api, trader, preview)
    over = await api.post("/deployments", json=deployment_body(trader, capital=10), headers=trader.headers)
    assert over.status_code == 409 and "at most" in over.json()["detail"]
