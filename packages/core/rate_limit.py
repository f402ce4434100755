"""Moving-window rate limits in Redis, shared by every API process, kept by the ``limits`` library.

The moving window is one Lua script per hit (LINDEX, LPUSH, LTRIM, EXPIRE), so a hit is atomic
across processes and needs nothing newer than Redis 6.2, the embedded server of `make run`.
A refused hit is not recorded: a client that keeps trying is let in again as its old attempts age
out of the window.
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from packages.core.errors import RateLimited

KEY_PREFIX = "minsy:ratelimit"


@dataclass(frozen=True)
class Limit:
    """At most ``amount`` hits per ``window_s`` seconds for one ``subject`` (e.g. a client address)
    within one ``scope`` (e.g. ``login:client``)."""

    scope: str
    subject: str
    amount: int
    window_s: int


# One limiter per Redis client, sharing its connection pool; it goes away with the client.
_limiters: weakref.WeakKeyDictionary[Redis, MovingWindowRateLimiter] = weakref.WeakKeyDictionary()


def _limiter(redis: Redis) -> MovingWindowRateLimiter:
    limiter = _limiters.get(redis)
    if limiter is None:
        # redis-py's asyncio client (the one the app uses), on the caller's connection pool.
        options: dict[str, Any] = {"connection_pool": redis.connection_pool}
        storage = RedisStorage("async+redis://", implementation="redispy", key_prefix=KEY_PREFIX, **options)
        limiter = _limiters[redis] = MovingWindowRateLimiter(storage)
    return limiter


async def enforce_rate_limits(redis: Redis, *limits: Limit) -> None:
    """Count one hit against each limit in turn; the first one already used up raises RateLimited
    (429 with Retry-After: seconds until its oldest hit leaves the window)."""
    limiter = _limiter(redis)
    for limit in limits:
        item = RateLimitItemPerSecond(limit.amount, limit.window_s)
        if await limiter.hit(item, limit.scope, limit.subject):
            continue
        stats = await limiter.get_window_stats(item, limit.scope, limit.subject)
        retry_after = max(math.ceil(stats.reset_time - time.time()), 1)
        raise RateLimited(
            f"Too many attempts; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after_s": retry_after},
        )
