"""Fixed-window rate limiting in Redis, shared by every API process."""

from __future__ import annotations

from redis.asyncio import Redis

from packages.core.errors import RateLimited


async def enforce_rate_limit(redis: Redis, key: str, *, limit: int, window_s: int) -> None:
    full_key = f"minsy:ratelimit:{key}"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(full_key)
        pipe.expire(full_key, window_s, nx=True)
        count, _ = await pipe.execute()
    if int(count) > limit:
        ttl = await redis.ttl(full_key)
        retry_after = max(int(ttl), 1)
        raise RateLimited(
            f"Too many attempts; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            extra={"retry_after_s": retry_after},
        )
