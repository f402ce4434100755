"""Redis clients for application data (db 0); Celery uses its own databases."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

BEAT_HEARTBEAT_KEY = "minsy:beat:heartbeat"


def create_async_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=2, health_check_interval=30
    )


def create_sync_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2)
