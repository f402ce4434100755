"""The one way a job is submitted, whatever its kind and whichever front end asks.

1. The owner's submissions of this kind are serialised (advisory lock) until the transaction ends.
2. Replay: the same Idempotency-Key with the same body returns the first job (``created`` False:
   the API answers 200, not 201); the same key with another body is a 422 ``idempotency_key_reused``
   at the key's pointer, naming the first job. The key is optional.
3. The per-user cap on queued + running jobs: 429 with Retry-After.
4. The feature builds its row (its own validation runs here, after the cheap checks).
5. Insert (a concurrent insert with the same key returns that job instead) and announce the job's
   task through the unit of work's outbox, published once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from packages.core.errors import FieldError, RateLimited, ValidationFailed
from packages.core.idempotency import IdempotencyKey, request_fingerprint
from packages.core.jobs.repository import JobRepository
from packages.core.uow import UnitOfWork


@dataclass(frozen=True)
class ActiveCap:
    """At most ``limit`` queued + running jobs of a kind per user; more answers 429."""

    limit: int
    retry_after_s: int


@dataclass(frozen=True)
class Submission:
    """How one kind's jobs are announced and described in errors."""

    task_name: str
    plural: str  # "backtests": "You have 4 backtests queued or running"
    id_field: str  # "backtest_id": names the first job in a refused replay
    cap: ActiveCap | None = None


async def _replay[JobT](
    repo: JobRepository[JobT], key: IdempotencyKey, fingerprint: str, submission: Submission
) -> JobT | None:
    existing: Any = await repo.by_idempotency_key(key.value)
    if existing is None:
        return None
    if existing.request_hash != fingerprint:
        raise ValidationFailed(
            "This Idempotency-Key was already used with a different request body.",
            errors=[
                FieldError("idempotency_key_reused", key.pointer, "use a new key for a different request")
            ],
            extra={submission.id_field: str(existing.id)},
        )
    found: JobT = existing
    return found


async def submit_job[JobT](
    uow: UnitOfWork,
    repo: JobRepository[JobT],
    submission: Submission,
    body: BaseModel,
    idempotency_key: IdempotencyKey | None,
    build: Callable[[], Awaitable[JobT]],
) -> tuple[JobT, bool]:
    """Submit one job; returns it and whether it is new. ``build`` makes the (unsaved) row."""
    fingerprint = request_fingerprint(body)
    await repo.lock_owner()
    if idempotency_key is not None:
        replayed = await _replay(repo, idempotency_key, fingerprint, submission)
        if replayed is not None:
            return replayed, False
    cap = submission.cap
    if cap is not None:
        active = await repo.count_active()
        if active >= cap.limit:
            raise RateLimited(
                f"You have {active} {submission.plural} queued or running (at most {cap.limit}); wait "
                "for one to finish or cancel one.",
                headers={"Retry-After": str(cap.retry_after_s)},
            )
    job: Any = await build()
    job.idempotency_key = None if idempotency_key is None else idempotency_key.value
    job.request_hash = fingerprint
    try:
        async with uow.session.begin_nested():
            await repo.add(job)
    except IntegrityError:
        # Another request with the same key committed first (the lock makes this rare).
        if idempotency_key is None:
            raise
        replayed = await _replay(repo, idempotency_key, fingerprint, submission)
        if replayed is None:
            raise
        return replayed, False
    await uow.session.refresh(job)
    uow.enqueue(submission.task_name, str(job.id))
    return job, True
