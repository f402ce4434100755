"""All SQL of backtest jobs: the owner's view for routes and tools, the job's own row for the worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import Select, and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from packages.core.jobs.schemas import ACTIVE_STATUSES
from packages.core.repository import OwnedRepository
from packages.infra.db.models import BacktestJob

# First key of this feature's advisory locks (the second is the user), apart from other features'.
_LOCK_SPACE = 0x42_54_4A_42  # "BTJB"


class BacktestJobRepository(OwnedRepository[BacktestJob]):
    model = BacktestJob
    noun = "backtest"

    def base_query(self) -> Select[tuple[BacktestJob]]:
        # The compressed arrays are only read by the views that need them (``artifacts``).
        return super().base_query().options(defer(BacktestJob.artifacts))

    async def lock_owner(self) -> None:
        """Serialise this user's submissions until the transaction ends, so caps cannot be raced."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _LOCK_SPACE, "key": self.owner_id.int & 0x7FFF_FFFF},
        )

    async def by_idempotency_key(self, key: str) -> BacktestJob | None:
        found: BacktestJob | None = await self.session.scalar(
            self.base_query().where(BacktestJob.idempotency_key == key)
        )
        return found

    async def count_active(self) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(BacktestJob)
            .where(BacktestJob.user_id == self.owner_id, BacktestJob.status.in_(ACTIVE_STATUSES))
        )
        return int(count or 0)

    async def page(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None, status: str | None
    ) -> list[BacktestJob]:
        query: Select[tuple[BacktestJob]] = self.base_query()
        if status:
            query = query.where(BacktestJob.status == status)
        if after is not None:
            created, last_id = after
            query = query.where(
                or_(
                    BacktestJob.created_at < created,
                    and_(BacktestJob.created_at == created, BacktestJob.id < last_id),
                )
            )
        query = query.order_by(BacktestJob.created_at.desc(), BacktestJob.id.desc()).limit(limit)
        # OwnedRepository types its query as Select[tuple[Model]]; its scalars are the model rows.
        return cast(list[BacktestJob], list((await self.session.scalars(query)).all()))

    async def artifacts(self, job_id: uuid.UUID) -> bytes | None:
        blob: bytes | None = await self.session.scalar(
            select(BacktestJob.artifacts).where(
                BacktestJob.id == job_id, BacktestJob.user_id == self.owner_id
            )
        )
        return blob


async def job_for_run(session: AsyncSession, job_id: uuid.UUID) -> BacktestJob | None:
    """The worker's read of the job it claimed (the claim already proved it exists and is ours to run)."""
    found: BacktestJob | None = await session.scalar(
        select(BacktestJob).options(defer(BacktestJob.artifacts)).where(BacktestJob.id == job_id)
    )
    return found
