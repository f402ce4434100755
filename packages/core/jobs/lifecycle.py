"""State changes of a background job row, shared by backtest and stress jobs.

The row is the source of truth. A worker *claims* a job (queued -> running, attempt + 1) and only
the holder of the current attempt may finish it, so a job re-delivered after a worker died runs
again but completes exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from packages.core.jobs.schemas import ACTIVE_STATUSES, TERMINAL_STATUSES, CancelOut


def utcnow() -> datetime:
    return datetime.now(UTC)


def claimable(model: type[Any], now: datetime, stale_after: timedelta, max_attempts: int) -> list[Any]:
    """Rows a worker may claim: queued, or running with a stale heartbeat, with attempts left."""
    stale = (model.status == "running") & (model.heartbeat_at < now - stale_after)
    return [model.attempts < max_attempts, or_(model.status == "queued", stale)]


def running_values(model: type[Any], worker: str, now: datetime) -> dict[str, Any]:
    """What a claim writes: running, one more attempt, held by ``worker`` from ``now``."""
    return {
        "status": "running",
        "attempts": model.attempts + 1,
        "worker": worker,
        "started_at": now,
        "heartbeat_at": now,
        "progress": 0.0,
        "error": None,
    }


async def fenced_update(
    session: AsyncSession,
    model: type[Any],
    row_id: uuid.UUID,
    attempt: int,
    *,
    returning: Any = None,
    **values: Any,
) -> Any:
    """Change a running row only while ``attempt`` holds it; the ``returning`` column's value (the
    id by default), or None when a later attempt (or a finish) superseded this one."""
    return await session.scalar(
        update(model)
        .where(model.id == row_id, model.attempts == attempt, model.status == "running")
        .values(**values)
        .returning(model.id if returning is None else returning)
    )


async def finished(
    session: AsyncSession,
    model: type[Any],
    row_id: uuid.UUID,
    attempt: int,
    status: str,
    values: dict[str, Any],
) -> bool:
    """The terminal transition of a running row, fenced by its attempt."""
    now = utcnow()
    done = await fenced_update(
        session, model, row_id, attempt, status=status, finished_at=now, heartbeat_at=now, **values
    )
    return done is not None


class JobLifecycle:
    """The state changes of one job table's rows (``model`` has the ``_JobColumns``).

    Several kinds may share a table that has a ``kind`` column (stress tests): ``rows_of_kind``
    then limits the sweep to this kind's rows, so each is re-queued to its own task.
    """

    def __init__(self, model: type[Any], *, rows_of_kind: str | None = None) -> None:
        self.model = model
        self.rows_of_kind = rows_of_kind

    def _swept(self) -> list[Any]:
        """Conditions a row must meet to be swept by this lifecycle."""
        return [] if self.rows_of_kind is None else [self.model.kind == self.rows_of_kind]

    async def claim(
        self,
        session: AsyncSession,
        job_id: uuid.UUID,
        *,
        worker: str,
        stale_after: timedelta,
        max_attempts: int,
    ) -> int | None:
        """Start (or take over a stale) run; returns the attempt number, or None if not ours to run."""
        m = self.model
        now = utcnow()
        claimed = await session.scalar(
            update(m)
            .where(
                m.id == job_id, m.cancel_requested.is_(False), *claimable(m, now, stale_after, max_attempts)
            )
            .values(**running_values(m, worker, now), progress_message="started")
            .returning(m.attempts)
        )
        return int(claimed) if claimed is not None else None

    async def state(
        self, session: AsyncSession, job_id: uuid.UUID
    ) -> tuple[str, datetime | None, bool] | None:
        m = self.model
        row = (
            await session.execute(select(m.status, m.heartbeat_at, m.cancel_requested).where(m.id == job_id))
        ).one_or_none()
        return (row[0], row[1], row[2]) if row else None

    async def heartbeat(
        self,
        session: AsyncSession,
        job_id: uuid.UUID,
        attempt: int,
        progress: float | None,
        message: str | None,
    ) -> bool:
        """Record liveness (and progress); returns whether cancellation was requested."""
        m = self.model
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"] = round(min(max(progress, 0.0), 1.0), 4)
        if message is not None:
            values["progress_message"] = message[:200]
        cancel = await fenced_update(session, m, job_id, attempt, returning=m.cancel_requested, **values)
        return bool(cancel)

    async def finish(
        self, session: AsyncSession, job_id: uuid.UUID, attempt: int, status: str, **values: Any
    ) -> bool:
        """Terminal transition, fenced by the attempt number: a superseded run changes nothing."""
        return await finished(session, self.model, job_id, attempt, status, values)

    async def request_cancel(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        m = self.model
        await session.execute(
            update(m).where(m.id == job_id, m.status.in_(ACTIVE_STATUSES)).values(cancel_requested=True)
        )
        # A job no worker has started yet is cancelled at once.
        await session.execute(
            update(m)
            .where(m.id == job_id, m.status == "queued")
            .values(status="cancelled", finished_at=utcnow(), progress_message="cancelled before start")
        )

    async def cancel(
        self, session: AsyncSession, job: Any, noun: str, shown_status: Callable[[Any], str] | None = None
    ) -> CancelOut:
        """Cancel a job the caller owns (``job`` loaded ``for_update``); a finished one stays as it is.

        ``shown_status`` maps the row to the status callers read elsewhere (default: the row's own).
        """
        status_of = shown_status or (lambda row: row.status)
        if job.status in TERMINAL_STATUSES:
            return CancelOut(
                id=job.id,
                status=status_of(job),
                cancel_requested=job.cancel_requested,
                message=f"The {noun} already {status_of(job)}; nothing to cancel.",
            )
        await self.request_cancel(session, job.id)
        await session.refresh(job)
        message = (
            "Cancelled before it started."
            if job.status == "cancelled"
            else "Cancellation requested; the worker stops at its next check (within seconds)."
        )
        return CancelOut(
            id=job.id, status=status_of(job), cancel_requested=job.cancel_requested, message=message
        )

    async def stale_running(
        self, session: AsyncSession, stale_after: timedelta
    ) -> list[tuple[uuid.UUID, int]]:
        m = self.model
        rows = await session.execute(
            select(m.id, m.attempts)
            .where(m.status == "running", m.heartbeat_at < utcnow() - stale_after, *self._swept())
            .with_for_update(skip_locked=True)
        )
        return [(row[0], int(row[1])) for row in rows]

    async def requeue(self, session: AsyncSession, job_id: uuid.UUID, attempt: int) -> bool:
        message = "re-queued after its worker stopped answering"
        done = await fenced_update(
            session, self.model, job_id, attempt, status="queued", progress_message=message
        )
        return done is not None
