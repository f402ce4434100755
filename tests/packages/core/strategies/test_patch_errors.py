"""PATCH /strategies/{id}: errors point into the request's `patch`, their messages name the document path."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from packages.domain.strategy.examples import get_example

NEW_MACD = {"id": "m", "indicator": "macd", "params": {"fast_period": 30, "slow_period": 10}}

CASES = [
    # (operations, [(code, request pointer, document path named in the message)])
    (
        [{"op": "replace", "path": "/timeframe", "value": "7m"}],
        [("UNSUPPORTED_TIMEFRAME", "/patch/0/value", "/timeframe")],
    ),
    (
        [{"op": "add", "path": "/factors/-", "value": NEW_MACD}],
        [("PARAM_CONFLICT", "/patch/0/value/params/fast_period", "/factors/2/params/fast_period")],
    ),
    (
        [
            {"op": "test", "path": "/timeframe", "value": "1d"},
            {"op": "add", "path": "/factors/0", "value": {"id": "extra", "indicator": "rsii"}},
        ],
        [("UNKNOWN_INDICATOR", "/patch/1/value/indicator", "/factors/0/indicator")],
    ),
    (
        [{"op": "remove", "path": "/metadata/name"}],
        [("MISSING_FIELD", "/patch/0", "/metadata/name")],
    ),
    (  # nothing the patch wrote is wrong: the reference to the removed factor is
        [{"op": "remove", "path": "/factors/1"}],
        [
            ("UNKNOWN_FACTOR_REFERENCE", "/patch", "/trade/long/entry/condition/right/factor"),
            ("UNKNOWN_FACTOR_REFERENCE", "/patch", "/trade/long/exits/0/condition/right/factor"),
        ],
    ),
]


@pytest.mark.parametrize(("operations", "expected"), CASES)
async def test_patch_errors_point_at_what_the_client_sent(
    api: httpx.AsyncClient,
    make_account: Any,
    operations: list[dict[str, Any]],
    expected: list[tuple[str, str, str]],
) -> None:
    account = await make_account()
    created = await api.post(
        "/strategies", json={"document": get_example("sma_crossover_trend")}, headers=account.headers
    )
    sid = created.json()["id"]
    response = await api.patch(
        f"/strategies/{sid}", json={"patch": operations, "expected_version": 1}, headers=account.headers
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["code"], e["pointer"]) for e in errors] == [(code, pointer) for code, pointer, _ in expected]
    for error, (_, _, path) in zip(errors, expected, strict=True):
        assert f"at {path}:" in error["message"]
    assert (await api.get(f"/strategies/{sid}", headers=account.headers)).json()["current_version"] == 1


async def test_an_operation_that_cannot_apply_is_named(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    document = copy.deepcopy(get_example("sma_crossover_trend"))
    sid = (await api.post("/strategies", json={"document": document}, headers=account.headers)).json()["id"]
    operations = [
        {"op": "replace", "path": "/timeframe", "value": "1h"},
        {"op": "remove", "path": "/does/not/exist"},
    ]
    response = await api.patch(
        f"/strategies/{sid}", json={"patch": operations, "expected_version": 1}, headers=account.headers
    )
    assert response.status_code == 422
    assert [(e["code"], e["pointer"]) for e in response.json()["errors"]] == [("patch_failed", "/patch/1")]
