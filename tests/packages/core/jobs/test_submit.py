"""The one submit path: replay of the same key and body, 422 for another body, the per-user cap."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from packages.core.errors import RateLimited, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.infra.db.models import StressJob
from tests.support.fanout_jobs import LIFECYCLE, MAX_ACTIVE, RETRY_AFTER_S, SumsRequest, submit_sums
from tests.support.jobs import poll

# Slow enough to stay queued or running while the test looks (cancelled at the end).
SLOW = SumsRequest(n=100, parts=1, part_seconds=60)


async def test_replay_returns_the_first_job_and_another_body_is_refused_with_its_id(
    api_app: Any, make_account: Any
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    key = IdempotencyKey.header("same-key")
    first, created = await submit_sums(resources, user_id, SLOW, key)
    again, created_again = await submit_sums(resources, user_id, SLOW.model_copy(), key)
    assert (created, created_again) == (True, False) and again.id == first.id
    for source, pointer in (
        (IdempotencyKey.header, "/header/Idempotency-Key"),
        (IdempotencyKey.argument, "/idempotency_key"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await submit_sums(resources, user_id, SLOW.model_copy(update={"seed": 1}), source("same-key"))
        [error] = refused.value.errors
        assert (error.code, error.pointer) == ("idempotency_key_reused", pointer)
        assert refused.value.extra == {"job_id": str(first.id)}
    # Keys belong to their user: another user's same key is a new job.
    stranger = uuid.UUID((await make_account()).user_id)
    theirs, created = await submit_sums(resources, stranger, SLOW, key)
    assert created and theirs.id != first.id
    await _cancel(resources, first.id, theirs.id)


async def test_the_active_cap_answers_rate_limited_with_retry_after(api_app: Any, make_account: Any) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    key = IdempotencyKey.header("first")
    keyed, _ = await submit_sums(resources, user_id, SLOW, key)
    # Without a key every submission is a new job.
    jobs = [keyed] + [(await submit_sums(resources, user_id, SLOW))[0] for _ in range(MAX_ACTIVE - 1)]
    assert len({job.id for job in jobs}) == MAX_ACTIVE
    with pytest.raises(RateLimited) as refused:
        await submit_sums(resources, user_id, SLOW)
    assert refused.value.headers == {"Retry-After": str(RETRY_AFTER_S)}
    assert f"You have {MAX_ACTIVE} sums jobs queued or running" in refused.value.detail
    # A replay starts nothing, so it is answered at the cap too.
    replayed, created = await submit_sums(resources, user_id, SLOW, key)
    assert replayed.id == keyed.id and created is False
    await _cancel(resources, jobs[0].id)
    # Queued, it is cancelled at once; running (a worker took it), its part stops within a heartbeat.
    await poll(lambda: _status(resources, jobs[0].id), lambda status: status == "cancelled", within_s=15)
    admitted, created = await submit_sums(resources, user_id, SLOW)
    assert created
    await _cancel(resources, *(job.id for job in jobs[1:]), admitted.id)


async def _status(resources: Any, job_id: uuid.UUID) -> str:
    async with resources.session_factory() as session:
        return str(await session.scalar(select(StressJob.status).where(StressJob.id == job_id)))


async def _cancel(resources: Any, *job_ids: uuid.UUID) -> None:
    async with resources.unit_of_work() as uow:
        for job_id in job_ids:
            await LIFECYCLE.request_cancel(uow.session, job_id)
