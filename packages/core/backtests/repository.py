"""Backtest job SQL: the job kit's repository, with the compressed arrays read only when needed."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from packages.core.jobs.repository import JobRepository, job_for_worker
from packages.infra.db.models import BacktestJob


class BacktestJobRepository(JobRepository[BacktestJob]):
    model = BacktestJob
    noun = "backtest"

    def base_query(self) -> Select[tuple[BacktestJob]]:
        # The compressed arrays are only read by the views that need them (``artifacts``).
        return super().base_query().options(defer(BacktestJob.artifacts))

    async def artifacts(self, job_id: uuid.UUID) -> bytes | None:
        blob: bytes | None = await self.session.scalar(
            select(BacktestJob.artifacts).where(
                BacktestJob.id == job_id, BacktestJob.user_id == self.owner_id
            )
        )
        return blob


async def job_for_run(session: AsyncSession, job_id: uuid.UUID) -> BacktestJob | None:
    """The worker's read of the job it claimed, without the arrays it is about to compute."""
    return await job_for_worker(session, BacktestJob, job_id, defer(BacktestJob.artifacts))
