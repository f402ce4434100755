from __future__ import annotations

import asyncio
import copy
from datetime import datetime
from typing import Any

import httpx
import pytest

from packages.domain.strategy.examples import get_example


def _doc(slug: str = "sma_crossover_trend") -> dict[str, Any]:
    return copy.deepcopy(get_example(slug))


async def _create(
    api: httpx.AsyncClient, account: Any, document: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await api.post("/strategies", json={"document": document or _doc()}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_get_list(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    created = await _create(api, account)
    assert created["current_version"] == 1
    assert created["status"] == "draft"
    assert created["symbols"] == ["AAPL"]
    fetched = (await api.get(f"/strategies/{created['id']}", headers=account.headers)).json()
    assert fetched["document"] == _doc()
    assert fetched["content_hash"] == created["content_hash"]
    listed = (await api.get("/strategies", headers=account.headers)).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]


async def test_invalid_document_lists_every_error_with_pointers(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    document = _doc()
    document["factors"][0]["params"]["period"] = 0
    document["trade"]["long"]["entry"]["condition"]["left"]["factor"] = "nope"
    response = await api.post("/strategies", json={"document": document}, headers=account.headers)
    assert response.status_code == 422
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert (
        "/document/factors/0/params/period" in pointers
        or "/document/trade/long/entry/condition/left/factor" in pointers
    )
    validate = (
        await api.post("/strategies/validate", json={"document": document}, headers=account.headers)
    ).json()
    assert validate["valid"] is False and validate["errors"]


async def test_patch_diff_rollback_round_trip(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    created = await _create(api, account)
    sid = created["id"]
    patch = [{"op": "replace", "path": "/factors/0/params/period", "value": 12}]
    patched = await api.patch(
        f"/strategies/{sid}", json={"patch": patch, "expected_version": 1}, headers=account.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["current_version"] == 2
    assert patched.json()["document"]["factors"][0]["params"]["period"] == 12

    diff = (await api.get(f"/strategies/{sid}/diff?from=1&to=2", headers=account.headers)).json()
    assert diff["patch"] == patch

    v2 = (await api.get(f"/strategies/{sid}/versions/2", headers=account.headers)).json()
    assert v2["change_type"] == "patch" and v2["source_version"] == 1 and v2["patch"] == patch

    rolled = await api.post(
        f"/strategies/{sid}/rollback", json={"version": 1, "expected_version": 2}, headers=account.headers
    )
    assert rolled.status_code == 200
    assert rolled.json()["current_version"] == 3
    assert rolled.json()["document"] == _doc()
    assert rolled.json()["content_hash"] == created["content_hash"]
    versions = (await api.get(f"/strategies/{sid}/versions", headers=account.headers)).json()
    assert [(v["version"], v["change_type"]) for v in versions] == [
        (1, "create"),
        (2, "patch"),
        (3, "rollback"),
    ]


async def test_confirm_marks_the_strategy_confirmed(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    created = await _create(api, account)
    sid = created["id"]
    confirmed = await api.post(f"/strategies/{sid}/confirm", headers=account.headers)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["status"] == "confirmed" and body["confirmed_at"] is not None
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(created["updated_at"])
    fetched = (await api.get(f"/strategies/{sid}", headers=account.headers)).json()
    assert (fetched["status"], fetched["updated_at"]) == ("confirmed", body["updated_at"])

    again = await api.post(f"/strategies/{sid}/confirm", headers=account.headers)
    assert again.status_code == 200, again.text
    assert again.json()["confirmed_at"] == body["confirmed_at"]


async def test_every_write_answers_the_stored_change_time(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    sid = (await _create(api, account))["id"]
    patch = {
        "patch": [{"op": "replace", "path": "/factors/0/params/period", "value": 12}],
        "expected_version": 1,
    }
    writes = [
        ("PUT", f"/strategies/{sid}", {"document": _doc(), "expected_version": 2}),
        ("POST", f"/strategies/{sid}/rollback", {"version": 2, "expected_version": 3}),
        ("POST", f"/strategies/{sid}/confirm", None),
    ]
    previous = (await api.patch(f"/strategies/{sid}", json=patch, headers=account.headers)).json()
    for method, path, body in writes:
        response = await api.request(method, path, json=body, headers=account.headers)
        assert response.status_code == 200, (method, path, response.text)
        stored = (await api.get(f"/strategies/{sid}", headers=account.headers)).json()
        assert response.json()["updated_at"] == stored["updated_at"]
        assert datetime.fromisoformat(stored["updated_at"]) > datetime.fromisoformat(previous["updated_at"])
        previous = stored


async def test_stale_version_gets_409_with_current_version(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    sid = (await _create(api, account))["id"]

    async def bump(period: int) -> httpx.Response:
        body = {
            "patch": [{"op": "replace", "path": "/factors/0/params/period", "value": period}],
            "expected_version": 1,
        }
        return await api.patch(f"/strategies/{sid}", json=body, headers=account.headers)

    first, second = await asyncio.gather(bump(11), bump(13))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409]
    conflict = first if first.status_code == 409 else second
    assert conflict.json()["current_version"] == 2
    assert len((await api.get(f"/strategies/{sid}/versions", headers=account.headers)).json()) == 2


async def test_bad_patch_is_422_and_changes_nothing(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    sid = (await _create(api, account))["id"]
    body = {"patch": [{"op": "remove", "path": "/does/not/exist"}], "expected_version": 1}
    response = await api.patch(f"/strategies/{sid}", json=body, headers=account.headers)
    assert response.status_code == 422
    invalid = {"patch": [{"op": "replace", "path": "/timeframe", "value": "7m"}], "expected_version": 1}
    response = await api.patch(f"/strategies/{sid}", json=invalid, headers=account.headers)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/patch/0/value"]
    assert (await api.get(f"/strategies/{sid}", headers=account.headers)).json()["current_version"] == 1


async def test_another_users_strategy_is_404_everywhere(api: httpx.AsyncClient, make_account: Any) -> None:
    owner, other = await make_account(), await make_account()
    sid = (await _create(api, owner))["id"]
    body = {"patch": [{"op": "replace", "path": "/timeframe", "value": "1h"}], "expected_version": 1}
    for method, path, payload in [
        ("GET", f"/strategies/{sid}", None),
        ("GET", f"/strategies/{sid}/versions", None),
        ("GET", f"/strategies/{sid}/versions/1", None),
        ("GET", f"/strategies/{sid}/diff?from=1&to=1", None),
        ("GET", f"/strategies/{sid}/tunable-parameters", None),
        ("PATCH", f"/strategies/{sid}", body),
        ("PUT", f"/strategies/{sid}", {"document": _doc(), "expected_version": 1}),
        ("POST", f"/strategies/{sid}/rollback", {"version": 1, "expected_version": 1}),
        ("POST", f"/strategies/{sid}/confirm", None),
        ("DELETE", f"/strategies/{sid}", None),
    ]:
        response = await api.request(method, path, json=payload, headers=other.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert (await api.get("/strategies", headers=other.headers)).json()["items"] == []


async def test_delete_refused_while_deployed(api: httpx.AsyncClient, make_account: Any, api_app: Any) -> None:
    import uuid

    from packages.infra.db.models import BrokerAccount, Deployment

    account = await make_account()
    sid = (await _create(api, account))["id"]
    user_id = uuid.UUID(account.user_id)
    async with api_app.state.resources.unit_of_work() as uow:
        broker = BrokerAccount(user_id=user_id, kind="paper", provider="simulated", name="paper")
        uow.session.add(broker)
        await uow.session.flush()
        deployment = Deployment(
            user_id=user_id,
            strategy_id=uuid.UUID(sid),
            strategy_version=1,
            document=_doc(),
            account_id=broker.id,
            name="running",
            market="us_stocks",
            symbols=["MSFT"],
            timeframe="1d",
            capital=10_000,
        )
        uow.session.add(deployment)
    assert (await api.delete(f"/strategies/{sid}", headers=account.headers)).status_code == 409
    async with api_app.state.resources.unit_of_work() as uow:
        stopped = await uow.session.get(Deployment, deployment.id)
        assert stopped is not None
        stopped.status = "stopped"
    # A stopped deployment keeps its own copy of the document: the strategy may go.
    assert (await api.delete(f"/strategies/{sid}", headers=account.headers)).status_code == 204
    other = (await _create(api, account))["id"]
    assert (await api.delete(f"/strategies/{other}", headers=account.headers)).status_code == 204
    assert (await api.get(f"/strategies/{other}", headers=account.headers)).status_code == 404


async def test_drafts_expire_and_confirm(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    broken = _doc()
    broken["timeframe"] = "7m"
    draft = (await api.post("/strategies/drafts", json={"document": broken}, headers=account.headers)).json()
    assert draft["validation"]["valid"] is False
    refused = await api.post(f"/strategies/drafts/{draft['id']}/confirm", headers=account.headers)
    assert refused.status_code == 422
    assert (await api.get(f"/strategies/drafts/{draft['id']}", headers=account.headers)).status_code == 200

    fixed = await api.put(
        f"/strategies/drafts/{draft['id']}", json={"document": _doc()}, headers=account.headers
    )
    assert fixed.json()["validation"]["valid"] is True
    confirmed = await api.post(f"/strategies/drafts/{draft['id']}/confirm", headers=account.headers)
    assert confirmed.status_code == 201
    assert confirmed.json()["status"] == "confirmed"
    assert (await api.get(f"/strategies/drafts/{draft['id']}", headers=account.headers)).status_code == 404

    other = await make_account()
    mine = (await api.post("/strategies/drafts", json={"document": _doc()}, headers=account.headers)).json()
    assert (await api.get(f"/strategies/drafts/{mine['id']}", headers=other.headers)).status_code == 404


async def test_draft_ttl_is_set_in_redis(
    api: httpx.AsyncClient, make_account: Any, api_app: Any, settings: Any
) -> None:
    account = await make_account()
    draft = (await api.post("/strategies/drafts", json={"document": _doc()}, headers=account.headers)).json()
    ttl = await api_app.state.resources.redis.ttl(f"minsy:strategy-draft:{account.user_id}:{draft['id']}")
    assert 0 < ttl <= settings.strategies.draft_ttl_s


async def test_reference_endpoints(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    schema = (await api.get("/strategies/schema", headers=account.headers)).json()
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    catalogue = (await api.get("/strategies/indicators", headers=account.headers)).json()
    assert len(catalogue["indicators"]) >= 80
    rsi = (await api.get("/strategies/indicators/rsi", headers=account.headers)).json()
    assert rsi["name"] == "rsi"
    assert (await api.get("/strategies/indicators/nope", headers=account.headers)).status_code == 404
    examples = (await api.get("/strategies/examples", headers=account.headers)).json()
    assert len(examples) >= 12
    detail = (await api.get(f"/strategies/examples/{examples[0]['slug']}", headers=account.headers)).json()
    assert detail["document"]["dsl_version"]


@pytest.mark.parametrize("version", [None, 1])
async def test_tunable_parameters(api: httpx.AsyncClient, make_account: Any, version: int | None) -> None:
    account = await make_account()
    sid = (await _create(api, account))["id"]
    query = f"?version={version}" if version else ""
    body = (await api.get(f"/strategies/{sid}/tunable-parameters{query}", headers=account.headers)).json()
    pointers = {p["pointer"] for p in body["parameters"]}
    assert "/factors/0/params/period" in pointers


async def test_symbols_without_data_are_refused_offline(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    document = _doc()
    document["universe"]["symbols"] = ["TSLA"]
    response = await api.post("/strategies", json={"document": document}, headers=account.headers)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert (error["code"], error["pointer"]) == ("UNSUPPORTED_SYMBOL", "/document/universe/symbols/0")
    verdict = (
        await api.post("/strategies/validate", json={"document": document}, headers=account.headers)
    ).json()
    assert [e["code"] for e in verdict["errors"]] == ["UNSUPPORTED_SYMBOL"]


async def test_nul_character_in_a_document_is_a_422(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    document = _doc()
    document["metadata"]["name"] = "bad\u0000name"
    response = await api.post("/strategies", json={"document": document}, headers=account.headers)
    assert response.status_code == 422
    assert "NUL" in response.json()["errors"][0]["message"]
