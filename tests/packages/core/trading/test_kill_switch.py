"""Kill switches: set at once for a deployment or a user, cleared by their owner, listed with the
global one; the global switch belongs to operators (403 over REST, `minsy trading kill-switch`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from apps.cli import main
from packages.infra.db.models import AuditRecord, DeploymentEvent
from tests.packages.core.trading.trading_kit import create_deployment, new_trader


async def test_set_clear_and_list_kill_switches(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    trader = await new_trader(api, make_account)
    deployment = await create_deployment(api, trader, capital=1000)
    other = await create_deployment(api, trader, capital=1000)

    one = await api.post(
        "/kill-switch",
        json={"scope": "deployment", "deployment_id": deployment["id"], "reason": "odd fills"},
        headers=trader.headers,
    )
    assert one.status_code == 201, one.text
    assert (one.json()["scope"], one.json()["flatten"], one.json()["set_by"]) == ("deployment", False, "user")
    # Setting it again returns the switch in force; asking to flatten upgrades it.
    again = await api.post(
        "/kill-switch",
        json={"scope": "deployment", "deployment_id": deployment["id"], "flatten": True, "reason": "worse"},
        headers=trader.headers,
    )
    assert (
        again.status_code == 200
        and again.json()["id"] == one.json()["id"]
        and again.json()["flatten"] is True
    )
    everything = await api.post(
        "/kill-switch", json={"scope": "user", "reason": "stop all"}, headers=trader.headers
    )
    assert everything.status_code == 201

    listed = (await api.get("/kill-switch", headers=trader.headers)).json()["items"]
    assert {s["id"] for s in listed} == {one.json()["id"], everything.json()["id"]}
    detail = (await api.get(f"/deployments/{deployment['id']}", headers=trader.headers)).json()
    assert {s["scope"] for s in detail["kill_switches"]} == {"deployment", "user"}
    assert [
        s["scope"]
        for s in (await api.get(f"/deployments/{other['id']}", headers=trader.headers)).json()[
            "kill_switches"
        ]
    ] == ["user"]
    readiness = (await api.get(f"/deployments/{other['id']}/readiness", headers=trader.headers)).json()
    assert any("kill switch is on (stop all)" in p for p in readiness["problems"])

    # The live streams of the covered deployments hear about it.
    async with api_app.state.resources.session_factory() as session:
        risk = list(
            (
                await session.scalars(
                    select(DeploymentEvent.payload).where(
                        DeploymentEvent.deployment_id == other["id"], DeploymentEvent.type == "risk"
                    )
                )
            ).all()
        )
    assert [p["rule"] for p in risk] == ["kill_switch"] and "stop all" in risk[0]["message"]

    stranger = await make_account()
    assert (await api.delete(f"/kill-switch/{one.json()['id']}", headers=stranger.headers)).status_code == 404
    assert (await api.get("/kill-switch", headers=stranger.headers)).json()["items"] == []
    foreign = await api.post(
        "/kill-switch",
        json={"scope": "deployment", "deployment_id": deployment["id"], "reason": "x"},
        headers=stranger.headers,
    )
    assert foreign.status_code == 404

    cleared = await api.delete(
        f"/kill-switch/{everything.json()['id']}", params={"reason": "calm"}, headers=trader.headers
    )
    assert (
        cleared.status_code == 200
        and cleared.json()["cleared_at"] is not None
        and cleared.json()["cleared_by"] == "user"
    )
    assert [s["id"] for s in (await api.get("/kill-switch", headers=trader.headers)).json()["items"]] == [
        one.json()["id"]
    ]
    async with api_app.state.resources.session_factory() as session:
        audited = list(
            (
                await session.scalars(
                    select(AuditRecord.action)
                    .where(
                        AuditRecord.subject == "kill_switch", AuditRecord.user_id == trader.account.user_id
                    )
                    .order_by(AuditRecord.id)
                )
            ).all()
        )
    assert audited == ["set", "flatten", "set", "clear"]

    # Only operators set the global switch.
    refused = await api.post(
        "/kill-switch", json={"scope": "global", "reason": "mine"}, headers=trader.headers
    )
    assert refused.status_code == 403 and "operator" in refused.json()["detail"]
    missing = await api.post(
        "/kill-switch", json={"scope": "deployment", "reason": "which?"}, headers=trader.headers
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["pointer"] == "/deployment_id"


async def _minsy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """``minsy trading kill-switch ...`` in a thread (it runs its own event loop), as an operator would."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(main, ["trading", "kill-switch", *args])
    out = capsys.readouterr().out
    printed = out[out.find("{\n") :] if "{\n" in out else "{}"
    return int(exited.value.code or 0), json.loads(printed)


async def test_the_operator_global_switch_from_the_cli(
    capsys: pytest.CaptureFixture[str], api: httpx.AsyncClient, make_account: Any
) -> None:
    user = await make_account()
    code, _ = await _minsy(capsys, "--global", "on")
    assert code == 2  # a reason is required
    try:
        code, shown = await _minsy(
            capsys, "--global", "on", "--reason", "exchange outage", "--operator", "ops-anna"
        )
        assert code == 0 and shown["set"] is True
        switch = shown["in_force"][0]
        assert (switch["scope"], switch["set_by"], switch["flatten"]) == (
            "global",
            "operator:ops-anna",
            False,
        )
        code, shown = await _minsy(capsys, "--global", "on", "--reason", "still out", "--flatten")
        assert (
            shown["set"] is False
            and shown["in_force"][0]["id"] == switch["id"]
            and shown["in_force"][0]["flatten"]
        )
        code, shown = await _minsy(capsys, "--global", "status")
        assert [s["id"] for s in shown["in_force"]] == [switch["id"]]

        # Every user sees it in force, and none can clear it.
        listed = (await api.get("/kill-switch", headers=user.headers)).json()["items"]
        assert [(s["id"], s["scope"]) for s in listed] == [(switch["id"], "global")]
        assert (await api.delete(f"/kill-switch/{switch['id']}", headers=user.headers)).status_code == 403

        code, shown = await _minsy(capsys, "--global", "off", "--reason", "back", "--operator", "ops-anna")
        assert code == 0 and [s["id"] for s in shown["cleared"]] == [switch["id"]]
        assert shown["cleared"][0]["cleared_by"] == "operator:ops-anna"
        code, shown = await _minsy(capsys, "--global", "status")
        assert shown["in_force"] == []
        assert (await api.get("/kill-switch", headers=user.headers)).json()["items"] == []
    finally:
        # A global switch left on by a failed assertion would stop every later test's deployments.
        await _minsy(capsys, "--global", "off")
