"""Bad input of every kind gets a problem+json 4xx, never a 500."""

from __future__ import annotations

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
