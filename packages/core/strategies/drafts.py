"""Unsaved strategy drafts: JSON documents in Redis that expire unless saved."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from packages.core.errors import NotFound, RateLimited


def _key(user_id: uuid.UUID, draft_id: uuid.UUID) -> str:
    return f"minsy:strategy-draft:{user_id}:{draft_id}"


def _index_key(user_id: uuid.UUID) -> str:
    return f"minsy:strategy-drafts:{user_id}"


class DraftStore:
    def __init__(self, redis: Redis, user_id: uuid.UUID, *, ttl_s: int, max_drafts: int) -> None:
        self.redis = redis
        self.user_id = user_id
        self.ttl_s = ttl_s
        self.max_drafts = max_drafts

    async def save(
        self, draft_id: uuid.UUID | None, document: dict[str, Any], session_id: uuid.UUID | None
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        if draft_id is None:
            await self._prune_index(now)
            if await self.redis.zcard(_index_key(self.user_id)) >= self.max_drafts:
                raise RateLimited(f"You already have {self.max_drafts} drafts; save or delete some first.")
            draft_id = uuid.uuid4()
        elif await self.redis.exists(_key(self.user_id, draft_id)) == 0:
            raise NotFound(f"No draft with id {draft_id} (it may have expired).")
        record = {
            "id": str(draft_id),
            "session_id": str(session_id) if session_id else None,
            "document": document,
            "updated_at": now.isoformat(),
            "expires_at": (now + timedelta(seconds=self.ttl_s)).isoformat(),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(_key(self.user_id, draft_id), json.dumps(record), ex=self.ttl_s)
            pipe.zadd(_index_key(self.user_id), {str(draft_id): now.timestamp() + self.ttl_s})
            pipe.expire(_index_key(self.user_id), self.ttl_s)
            await pipe.execute()
        return record

    async def get(self, draft_id: uuid.UUID) -> dict[str, Any]:
        raw = await self.redis.get(_key(self.user_id, draft_id))
        if raw is None:
            raise NotFound(f"No draft with id {draft_id} (it may have expired).")
        record: dict[str, Any] = json.loads(raw)
        return record

    async def delete(self, draft_id: uuid.UUID) -> None:
        removed = await self.redis.delete(_key(self.user_id, draft_id))
        await self.redis.zrem(_index_key(self.user_id), str(draft_id))
        if not removed:
            raise NotFound(f"No draft with id {draft_id} (it may have expired).")

    async def all(self) -> list[dict[str, Any]]:
        await self._prune_index(datetime.now(UTC))
        ids = await self.redis.zrange(_index_key(self.user_id), 0, -1)
        records = []
        for draft_id in ids:
            raw = await self.redis.get(_key(self.user_id, uuid.UUID(str(draft_id))))
            if raw is not None:
                records.append(json.loads(raw))
        return sorted(records, key=lambda r: r["updated_at"], reverse=True)

    async def _prune_index(self, now: datetime) -> None:
        await self.redis.zremrangebyscore(_index_key(self.user_id), "-inf", now.timestamp())
