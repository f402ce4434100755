"""The SQL every job table needs (backtests, stress tests, market-data syncs): the owner's lock,
the idempotency lookup, the active-job count, keyset pages, and the worker's read of a claimed row."""

from __future__ import annotations

import uuid
import zlib
from typing import Any, cast

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.base import ExecutableOption

from packages.core.jobs.schemas import ACTIVE_STATUSES
from packages.core.pagination import Page, newest_first
from packages.core.repository import OwnedRepository


def lock_space(table_name: str) -> int:
    """First key of a table's advisory locks (the second is the user): apart for every table."""
    return zlib.crc32(table_name.encode("utf-8")) & 0x7FFF_FFFF


class JobRepository[JobT](OwnedRepository[JobT]):
    """A job table's rows as their owner sees them (``model`` has the ``_JobColumns`` and ``user_id``)."""

    async def lock_owner(self) -> None:
        """Serialise this user's submissions of this kind until the transaction ends, so the cap and
        the idempotency lookup cannot be raced."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": lock_space(self.model.__tablename__), "key": self.owner_id.int & 0x7FFF_FFFF},
        )

    async def by_idempotency_key(self, key: str) -> JobT | None:
        found: JobT | None = await self.session.scalar(
            self.base_query().where(self.model.idempotency_key == key)
        )
        return found

    async def count_active(self) -> int:
        """Jobs of this user that are queued or running (what the per-user cap counts)."""
        status: Mapped[str] = self.model.status
        count = await self.session.scalar(
            select(func.count())
            .select_from(self.model)
            .where(self.model.user_id == self.owner_id, status.in_(ACTIVE_STATUSES))
        )
        return int(count or 0)

    async def page(self, *, limit: int, cursor: str | None, status: str | None = None) -> Page[JobT]:
        """Newest first, ``limit`` rows after ``cursor``, optionally of one status."""
        keyset = newest_first(self.model)
        query = self.base_query()
        if status:
            query = query.where(self.model.status == status)
        rows = (await self.session.scalars(keyset.apply(query, cursor=cursor, limit=limit))).all()
        return cast(Page[JobT], keyset.page(rows, limit))


async def job_for_worker[JobT](
    session: AsyncSession, model: type[JobT], job_id: uuid.UUID, *options: ExecutableOption
) -> JobT | None:
    """The worker's read of a job it was handed by id (no owner filter: the claim proved it is the
    worker's to run)."""
    found: JobT | None = await session.scalar(
        select(cast(Any, model)).options(*options).where(cast(Any, model).id == job_id)
    )
    return found
