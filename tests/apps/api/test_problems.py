"""Bad input of every kind gets a problem+json 4xx, never a 500."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

PROBLEM = "application/problem+json"


def _assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith(body["code"])
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_malformed_json(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/auth/login",
        content=b'{"email": "a@b.co", "password": ',
        headers={"content-type": "application/json"},
    )
    assert _assert_problem(response, 400)["code"] == "malformed_json"


async def test_wrong_types_and_unknown_fields_carry_pointers(api: httpx.AsyncClient) -> None:
    response = await api.post("/auth/register", json={"email": 12, "password": ["x"], "admin": True})
    body = _assert_problem(response, 422)
    pointers = {e["pointer"] for e in body["errors"]}
    assert {"/email", "/password", "/admin"} <= pointers


async def test_oversized_body(api: httpx.AsyncClient, settings: object) -> None:
    huge = b'{"email": "' + b"a" * 2_000_000 + b'"}'
    response = await api.post("/auth/login", content=huge, headers={"content-type": "application/json"})
    assert _assert_problem(response, 413)["code"] == "payload_too_large"


async def test_oversized_body_without_declared_length(api: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 65_536

    response = await api.post("/auth/login", content=chunks(), headers={"content-type": "application/json"})
    _assert_problem(response, 413)


async def test_unknown_route_and_method(api: httpx.AsyncClient) -> None:
    assert _assert_problem(await api.get("/no-such-thing"), 404)["code"] == "not_found"
    assert _assert_problem(await api.delete("/health"), 405)["code"] == "method_not_allowed"


@pytest.mark.parametrize("header", ["Bearer", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 5000, "Bearer a.b"])
async def test_bad_tokens(api: httpx.AsyncClient, header: str) -> None:
    _assert_problem(await api.get("/auth/me", headers={"Authorization": header}), 401)


async def test_supplied_request_id_is_echoed(api: httpx.AsyncClient) -> None:
    response = await api.get("/no-such-thing", headers={"X-Request-ID": "trace-123"})
    assert response.headers["x-request-id"] == "trace-123"
    assert response.json()["request_id"] == "trace-123"


async def test_openapi_declares_problem_responses(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert {"401", "422", "429"} <= set(login["responses"])
    assert "application/problem+json" in login["responses"]["401"]["content"]
    operation_ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_nul_characters_are_refused_not_stored(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/auth/register",
        json={"email": "nul@example.com", "password": "long-enough-pw", "display_name": "a\u0000b"},
    )
    body = _assert_problem(response, 422)
    assert "NUL" in body["errors"][0]["message"]


JSON = {"content-type": "application/json"}


def _ascii_json(body: object) -> bytes:
    """Lone surrogates travel as JSON escapes (httpx's ``json=`` cannot encode them)."""
    return json.dumps(body).encode("ascii")


@pytest.mark.parametrize(
    ("extra", "pointer"),
    [
        ({"display_name": "a\ud800b"}, "/display_name"),
        ({"display_name": "\udc00"}, "/display_name"),
        ({"x\udfff": "field name"}, ""),  # a key: the pointer names the object holding it
    ],
)
async def test_lone_surrogates_are_refused_not_stored(
    api: httpx.AsyncClient, extra: dict[str, str], pointer: str
) -> None:
    email = f"surrogate-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": "long-enough-pw", **extra}
    response = await api.post("/auth/register", content=_ascii_json(body), headers=JSON)
    problem = _assert_problem(response, 422)
    assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [("lone_surrogate", pointer)]
    assert "surrogate" in problem["errors"][0]["message"]
    # Nothing was stored: the address is still free.
    registered = await api.post("/auth/register", json={"email": email, "password": "long-enough-pw"})
    assert registered.status_code == 201, registered.text


async def test_backtest_inline_documents_with_unstorable_text_are_refused(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    from packages.domain.strategy.examples import get_example

    account = await make_account()
    for name, code in (("SMA \ud800", "lone_surrogate"), ("SMA \x00", "nul_character")):
        document = get_example("sma_crossover_trend")
        document["metadata"]["name"] = name
        body = {"document": document, "start": "2011-01-01", "end": "2012-01-01"}
        headers = {**account.headers, **JSON, "Idempotency-Key": uuid.uuid4().hex}
        response = await api.post("/backtests", content=_ascii_json(body), headers=headers)
        problem = _assert_problem(response, 422)
        assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [(code, "/document/metadata/name")]
    assert (await api.get("/backtests", headers=account.headers)).json()["items"] == []


async def test_a_refused_key_is_quoted_exactly(api: httpx.AsyncClient) -> None:
    # Braces in the caller's text must not be read as placeholders of the error message.
    key = "{message}{pointer}\udfff"
    body = {"email": "braces@example.com", "password": "long-enough-pw", key: 1}
    response = await api.post("/auth/register", content=_ascii_json(body), headers=JSON)
    (error,) = _assert_problem(response, 422)["errors"]
    assert error["pointer"] == ""
    assert f"the key {key!a} contains a lone surrogate" in error["message"]
