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


class UnreadableDraft(Exception):
    """A stored draft that cannot be read back (damaged, or written before today's input rules)."""

    def __init__(self, draft_id: uuid.UUID) -> None:
        super().__init__(f"draft {draft_id} cannot be read")
        self.draft_id = draft_id


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
        """The stored record; ``UnreadableDraft`` when it is not a JSON object."""
        try:
            raw = await self.redis.get(_key(self.user_id, draft_id))
        except UnicodeDecodeError as exc:  # the client decodes replies as UTF-8
            raise UnreadableDraft(draft_id) from exc
        if raw is None:
            raise NotFound(f"No draft with id {draft_id} (it may have expired).")
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise UnreadableDraft(draft_id) from exc
        if not isinstance(record, dict):
            raise UnreadableDraft(draft_id)
        return record

    async def delete(self, draft_id: uuid.UUID) -> None:
        removed = await self.redis.delete(_key(self.user_id, draft_id))
        await self.redis.zrem(_index_key(self.user_id), str(draft_id))
        if not removed:
            raise NotFound(f"No draft with id {draft_id} (it may have expired).")

    async def ids(self) -> list[uuid.UUID]:
        """Ids of the drafts that have not expired (members of the index that are not ids are left
        out: only ``save`` writes the index)."""
        await self._prune_index(datetime.now(UTC))
        ids = []
        for member in await self.redis.zrange(_index_key(self.user_id), 0, -1):
            try:
                ids.append(uuid.UUID(str(member)))
            except ValueError:
                continue
        return ids

    async def _prune_index(self, now: datetime) -> None:
        await self.redis.zremrangebyscore(_index_key(self.user_id), "-inf", now.timestamp())
