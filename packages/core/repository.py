"""Repositories hold all SQL. Their base query only ever sees the caller's rows."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from packages.core.errors import NotFound


class OwnedRepository[ModelT]:
    """Every read starts from ``base_query()``, filtered to ``owner_id``: another user's id is simply
    not found (404), never forbidden, so ids leak nothing."""

    model: ClassVar[type[Any]]
    noun: ClassVar[str] = "object"

    def __init__(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        self.session = session
        self.owner_id = owner_id

    def base_query(self) -> Select[Any]:
        return select(self.model).where(self.model.user_id == self.owner_id)

    async def find(self, object_id: uuid.UUID, *, for_update: bool = False) -> ModelT | None:
        query = self.base_query().where(self.model.id == object_id)
        if for_update:
            query = query.with_for_update()
        result: ModelT | None = await self.session.scalar(query)
        return result

    async def get(self, object_id: uuid.UUID, *, for_update: bool = False) -> ModelT:
        found = await self.find(object_id, for_update=for_update)
        if found is None:
            raise NotFound(f"No {self.noun} with id {object_id}.")
        return found

    async def count(self) -> int:
        """How many rows the caller owns."""
        total = await self.session.scalar(select(func.count()).select_from(self.base_query().subquery()))
        return int(total or 0)

    async def add(self, obj: ModelT) -> ModelT:
        if getattr(obj, "user_id", None) != self.owner_id:
            raise ValueError("objects added through an owned repository must belong to its owner")
        self.session.add(obj)
        await self.session.flush()
        return obj
