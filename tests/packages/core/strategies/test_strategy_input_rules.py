"""Input the strategy endpoints refuse before storing anything: text no store can keep (NUL, lone
surrogates) and version numbers no revision can have; and drafts that cannot be read back."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from packages.domain.strategy.examples import get_example

LONE = "\ud800"  # what JSON's "\ud800" escape decodes to
PROBLEM = "application/problem+json"


def _doc(name: str | None = None) -> dict[str, Any]:
    document = copy.deepcopy(get_example("sma_crossover_trend"))
    if name is not None:
        document["metadata"]["name"] = name
    return document


async def _send(
    api: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """Send ``body`` as ASCII JSON: lone surrogates travel as escapes, as any client writes them
    (httpx's ``json=`` would refuse to encode them)."""
    return await api.request(
        method,
        path,
        content=json.dumps(body).encode("ascii"),
        headers={**headers, "content-type": "application/json"},
    )


def _error(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    (error,) = response.json()["errors"]
    return dict(error)


UNSTORABLE = [
    # (method, path, body, code, pointer); {sid} and {did} are a saved strategy and a draft
    ("POST", "/strategies", {"document": _doc(f"a{LONE}b")}, "lone_surrogate", "/document/metadata/name"),
    ("POST", "/strategies", {"document": _doc("a\x00b")}, "nul_character", "/document/metadata/name"),
    ("POST", "/strategies", {"document": {**_doc(), f"x-{LONE}": 1}}, "lone_surrogate", "/document"),
    (
        "PUT",
        "/strategies/{sid}",
        {"document": _doc(f"{LONE}"), "expected_version": 1},
        "lone_surrogate",
        "/document/metadata/name",
    ),
    (
        "PATCH",
        "/strategies/{sid}",
        {"patch": [{"op": "replace", "path": "/metadata/name", "value": f"x{LONE}"}], "expected_version": 1},
        "lone_surrogate",
        "/patch/0/value",
    ),
    (
        "PATCH",
        "/strategies/{sid}",
        {"patch": [{"op": "add", "path": f"/x-{LONE}", "value": 1}], "expected_version": 1},
        "lone_surrogate",
        "/patch/0/path",
    ),
    (
        "POST",
        "/strategies/validate",
        {"document": _doc(f"a{LONE}")},
        "lone_surrogate",
        "/document/metadata/name",
    ),
    (
        "POST",
        "/strategies/drafts",
        {"document": _doc(f"a{LONE}")},
        "lone_surrogate",
        "/document/metadata/name",
    ),
    (
        "PUT",
        "/strategies/drafts/{did}",
        {"document": _doc(f"\udfff{LONE}")},
        "lone_surrogate",
        "/document/metadata/name",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "code", "pointer"), UNSTORABLE)
async def test_unstorable_text_is_refused_with_a_pointer_and_nothing_is_stored(
    api: httpx.AsyncClient,
    make_account: Any,
    method: str,
    path: str,
    body: dict[str, Any],
    code: str,
    pointer: str,
) -> None:
    account = await make_account()
    strategy = (await api.post("/strategies", json={"document": _doc()}, headers=account.headers)).json()
    draft = (await api.post("/strategies/drafts", json={"document": _doc()}, headers=account.headers)).json()

    response = await _send(
        api, method, path.format(sid=strategy["id"], did=draft["id"]), body, account.headers
    )
    error = _error(response)
    assert (error["code"], error["pointer"]) == (code, pointer)

    strategies = (await api.get("/strategies", headers=account.headers)).json()["items"]
    assert [(s["id"], s["current_version"]) for s in strategies] == [(strategy["id"], 1)]
    assert (await api.get(f"/strategies/{strategy['id']}", headers=account.headers)).json()[
        "document"
    ] == _doc()
    drafts = (await api.get("/strategies/drafts", headers=account.headers)).json()
    assert [(d["id"], d["document"]) for d in drafts] == [(draft["id"], _doc())]


async def test_query_strings_and_paths_cannot_carry_unstorable_text(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    # Servers decode percent-escapes as UTF-8, replacing what is not (an encoded surrogate) with
    # U+FFFD; a NUL is a character like any other and must meet a 4xx, not the database.
    account = await make_account()
    assert (await api.get("/strategies?cursor=%00", headers=account.headers)).status_code == 422
    assert (await api.get("/strategies?cursor=%ED%A0%80", headers=account.headers)).status_code == 422
    assert (await api.get("/strategies/indicators/%ED%A0%80", headers=account.headers)).status_code == 404
    assert (await api.get("/strategies/examples/a%00b", headers=account.headers)).status_code == 404


async def test_a_draft_that_cannot_be_read_leaves_the_listing_working(
    api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    account = await make_account()
    good = (await api.post("/strategies/drafts", json={"document": _doc()}, headers=account.headers)).json()
    now = time.time()
    as_stored_before = {  # what a save with a lone surrogate left behind (json.dumps escapes it)
        "id": None,
        "session_id": None,
        "document": _doc(f"a{LONE}"),
        "updated_at": "2030-01-01T00:00:00+00:00",
        "expires_at": "2030-01-08T00:00:00+00:00",
    }
    unreadable: dict[uuid.UUID, str | bytes] = {
        uuid.uuid4(): raw for raw in ("{not json", "[1, 2]", json.dumps({"id": "x"}), b"\xff\xfe{}")
    }
    surrogate_id = uuid.uuid4()
    unreadable[surrogate_id] = json.dumps({**as_stored_before, "id": str(surrogate_id)})
    redis = api_app.state.resources.redis
    for draft_id, raw in unreadable.items():
        await redis.set(f"minsy:strategy-draft:{account.user_id}:{draft_id}", raw, ex=600)
        await redis.zadd(f"minsy:strategy-drafts:{account.user_id}", {str(draft_id): now + 600})
    await redis.zadd(f"minsy:strategy-drafts:{account.user_id}", {"not-an-id": now + 600})

    listed = await api.get("/strategies/drafts", headers=account.headers)
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()] == [good["id"]]

    first, *others = unreadable
    for draft_id in unreadable:
        for method, path in (("GET", ""), ("POST", "/confirm")):
            response = await api.request(
                method, f"/strategies/drafts/{draft_id}{path}", headers=account.headers
            )
            assert response.status_code == 409, (draft_id, method, response.text)
            assert response.json()["draft_id"] == str(draft_id)
    replaced = await api.put(
        f"/strategies/drafts/{first}", json={"document": _doc()}, headers=account.headers
    )
    assert replaced.status_code == 200, replaced.text
    for draft_id in others:
        assert (
            await api.delete(f"/strategies/drafts/{draft_id}", headers=account.headers)
        ).status_code == 204
    listed = (await api.get("/strategies/drafts", headers=account.headers)).json()
    assert {d["id"] for d in listed} == {good["id"], str(first)}
    assert (await api.get("/strategies", headers=account.headers)).json()["items"] == []


TOO_LARGE = 2**31  # one past the largest value of the integer column versions are stored in
LARGEST = 2**31 - 1

VERSION_INPUTS = [
    # (method, path, body, pointer of the 422)
    ("GET", f"/strategies/{{sid}}/versions/{TOO_LARGE}", None, "/path/version"),
    ("GET", "/strategies/{sid}/versions/0", None, "/path/version"),
    ("GET", f"/strategies/{{sid}}/diff?from={TOO_LARGE}&to=1", None, "/query/from"),
    ("GET", f"/strategies/{{sid}}/diff?from=1&to={10**20}", None, "/query/to"),
    ("GET", f"/strategies/{{sid}}/tunable-parameters?version={TOO_LARGE}", None, "/query/version"),
    ("POST", "/strategies/{sid}/rollback", {"version": TOO_LARGE, "expected_version": 1}, "/version"),
    ("POST", "/strategies/{sid}/rollback", {"version": 1, "expected_version": 2**63}, "/expected_version"),
    ("PUT", "/strategies/{sid}", {"document": _doc(), "expected_version": TOO_LARGE}, "/expected_version"),
    (
        "PATCH",
        "/strategies/{sid}",
        {"patch": [{"op": "test", "path": "/timeframe", "value": "1d"}], "expected_version": TOO_LARGE},
        "/expected_version",
    ),
    ("POST", "/backtests", {"strategy_id": "{sid}", "version": TOO_LARGE}, "/version"),
]


@pytest.mark.parametrize(("method", "path", "body", "pointer"), VERSION_INPUTS)
async def test_version_numbers_beyond_storage_are_a_422_at_their_pointer(
    api: httpx.AsyncClient,
    make_account: Any,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    pointer: str,
) -> None:
    account = await make_account()
    sid = (await api.post("/strategies", json={"document": _doc()}, headers=account.headers)).json()["id"]
    if body is not None:
        body = {
            key: value.format(sid=sid) if isinstance(value, str) else value for key, value in body.items()
        }
    headers = {**account.headers, "Idempotency-Key": uuid.uuid4().hex}
    response = await api.request(method, path.format(sid=sid), json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert pointer in {e["pointer"] for e in response.json()["errors"]}


async def test_the_largest_storable_version_is_simply_not_found(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    sid = (await api.post("/strategies", json={"document": _doc()}, headers=account.headers)).json()["id"]
    for method, path, body in [
        ("GET", f"/strategies/{sid}/versions/{LARGEST}", None),
        ("GET", f"/strategies/{sid}/diff?from=1&to={LARGEST}", None),
        ("GET", f"/strategies/{sid}/tunable-parameters?version={LARGEST}", None),
        ("POST", f"/strategies/{sid}/rollback", {"version": LARGEST, "expected_version": 1}),
    ]:
        response = await api.request(method, path, json=body, headers=account.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == PROBLEM
