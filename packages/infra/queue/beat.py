"""Beat scheduler that also records its own heartbeat in Redis, so /status can tell beat is alive."""

from __future__ import annotations

import time
from typing import Any

from celery.beat import PersistentScheduler
from redis.exceptions import RedisError

from packages.infra.redis_client import BEAT_HEARTBEAT_KEY, create_sync_redis
from packages.shared_settings import get_settings


class HeartbeatScheduler(PersistentScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._heartbeat_every = settings.celery.beat_heartbeat_s
        self._redis = create_sync_redis(settings.redis.app_url)
        self._last_beat = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.time()
        if now - self._last_beat >= self._heartbeat_every:
            try:
                self._redis.set(BEAT_HEARTBEAT_KEY, f"{now:.3f}", ex=int(self._heartbeat_every * 8))
                self._last_beat = now
            except (OSError, RedisError):
                # Redis briefly away: beat keeps scheduling; /status shows the stale heartbeat.
                pass
        interval = super().tick(*args, **kwargs)
        return min(interval, self._heartbeat_every)
