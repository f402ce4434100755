"""The shared rate limiter, run against Redis 6.2 (the embedded server of `make run`), so a
command that only newer Redis versions know can never slip into it again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from packages.core.errors import RateLimited
from packages.core.rate_limit import Limit, enforce_rate_limits
from packages.infra.redis_client import create_async_redis
from tests.support.stack import embedded_redis


@pytest.fixture(scope="module")
def redis_6_2_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with embedded_redis(tmp_path_factory.mktemp("redis-6.2")) as url:
        yield url


@pytest.fixture
async def redis(redis_6_2_url: str) -> AsyncIterator[Redis]:
    # Configured as the app configures its client (decoded answers), on the 6.2 server.
    client = create_async_redis(f"{redis_6_2_url}/0")
    assert str((await client.info("server"))["redis_version"]).startswith("6.2.")
    yield client
    await client.aclose()


def _subject() -> str:
    return uuid.uuid4().hex


async def test_limit_applies_per_subject_and_says_when_to_retry(redis: Redis) -> None:
    subject = _subject()
    for _ in range(3):
        await enforce_rate_limits(redis, Limit("test", subject, amount=3, window_s=60))
    with pytest.raises(RateLimited) as caught:
        await enforce_rate_limits(redis, Limit("test", subject, amount=3, window_s=60))
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 60
    assert caught.value.extra["retry_after_s"] == int(caught.value.headers["Retry-After"])
    # Another subject, or the same subject in another scope, has its own window.
    await enforce_rate_limits(redis, Limit("test", _subject(), amount=3, window_s=60))
    await enforce_rate_limits(redis, Limit("other-test", subject, amount=3, window_s=60))


async def test_window_moves_so_attempts_come_back_as_old_ones_expire(redis: Redis) -> None:
    limit = Limit("test", _subject(), amount=2, window_s=1)
    await enforce_rate_limits(redis, limit)
    await enforce_rate_limits(redis, limit)
    with pytest.raises(RateLimited) as caught:
        await enforce_rate_limits(redis, limit)
    assert caught.value.headers["Retry-After"] == "1"
    await asyncio.sleep(1.1)
    await enforce_rate_limits(redis, limit)


async def test_every_limit_of_a_request_counts_and_the_first_exhausted_one_refuses(redis: Redis) -> None:
    client, account = _subject(), _subject()
    await enforce_rate_limits(
        redis,
        Limit("client", client, amount=5, window_s=60),
        Limit("account", account, amount=1, window_s=60),
    )
    with pytest.raises(RateLimited):
        await enforce_rate_limits(
            redis,
            Limit("client", client, amount=5, window_s=60),
            Limit("account", account, amount=1, window_s=60),
        )
    # Both hits were counted against the client: 2 of its 5 are used, so 3 more pass.
    for _ in range(3):
        await enforce_rate_limits(redis, Limit("client", client, amount=5, window_s=60))
    with pytest.raises(RateLimited):
        await enforce_rate_limits(redis, Limit("client", client, amount=5, window_s=60))


async def test_concurrent_hits_never_exceed_the_limit(redis: Redis) -> None:
    limit = Limit("test", _subject(), amount=10, window_s=60)
    outcomes = await asyncio.gather(
        *(enforce_rate_limits(redis, limit) for _ in range(30)), return_exceptions=True
    )
    assert sum(outcome is None for outcome in outcomes) == 10
    assert all(isinstance(outcome, RateLimited) for outcome in outcomes if outcome is not None)
