"""The job kit's state changes on real rows: claim, heartbeat, fenced finish, and the stale sweep
(jobs and the parts of fanned-out jobs)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from packages.core.jobs.tasks import reap_stale
from packages.infra.db.models import OutboxMessage, StressJob
from packages.infra.db.models.jobs import JobChild
from tests.support.fanout_jobs import KIND, LIFECYCLE, TASK, SumsRequest

MINUTE = timedelta(minutes=1)
LONG_AGO = datetime.now(UTC) - timedelta(hours=1)


async def _job(resources: Any, user_id: uuid.UUID, **values: Any) -> uuid.UUID:
    async with resources.unit_of_work() as uow:
        # Slow parts: a worker that picks up what the sweep re-queues keeps it running for the test.
        request = SumsRequest(n=10, parts=2, part_seconds=30).model_dump()
        job = StressJob(user_id=user_id, kind=KIND, request=request, **values)
        uow.session.add(job)
        await uow.session.flush()
        return job.id


async def _part(
    resources: Any, user_id: uuid.UUID, parent_id: uuid.UUID, position: int, **values: Any
) -> uuid.UUID:
    async with resources.unit_of_work() as uow:
        part = JobChild(
            user_id=user_id,
            parent_kind=KIND,
            parent_id=parent_id,
            position=position,
            spec={"start": 0, "stop": 5},
            **values,
        )
        uow.session.add(part)
        await uow.session.flush()
        return part.id


async def _row(resources: Any, model: Any, row_id: uuid.UUID) -> Any:
    async with resources.session_factory() as session:
        return await session.scalar(select(model).where(model.id == row_id))


async def _messages(resources: Any, task: str, row_id: uuid.UUID) -> int:
    async with resources.session_factory() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.name == task, OutboxMessage.payload["args"][0].astext == str(row_id)
            )
        )
        return len(list(rows))


async def test_claim_heartbeat_and_finish_are_fenced_by_the_attempt(api_app: Any, make_account: Any) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    job_id = await _job(resources, user_id)

    async def claim(worker: str, max_attempts: int = 3) -> int | None:
        async with resources.unit_of_work() as uow:
            return await LIFECYCLE.claim(
                uow.session, job_id, worker=worker, stale_after=MINUTE, max_attempts=max_attempts
            )

    assert await claim("first:1") == 1
    row = await _row(resources, StressJob, job_id)
    assert (row.status, row.attempts, row.worker) == ("running", 1, "first:1")
    assert await claim("second:2") is None  # held, heartbeat fresh
    async with resources.unit_of_work() as uow:
        row = await uow.session.get(StressJob, job_id)
        row.heartbeat_at = LONG_AGO  # its worker went silent
    assert await claim("second:2", max_attempts=1) is None  # no attempts left
    assert await claim("second:2") == 2  # taken over

    async with resources.unit_of_work() as uow:
        superseded = await LIFECYCLE.heartbeat(uow.session, job_id, 1, 0.9, "old attempt")
        cancel = await LIFECYCLE.heartbeat(uow.session, job_id, 2, 0.5, "half way")
    assert (superseded, cancel) == (False, False)
    row = await _row(resources, StressJob, job_id)
    assert (row.progress, row.progress_message, row.worker) == (0.5, "half way", "second:2")

    async with resources.unit_of_work() as uow:
        await LIFECYCLE.request_cancel(uow.session, job_id)
        assert await LIFECYCLE.heartbeat(uow.session, job_id, 2, None, None) is True
        # The superseded attempt finishes nothing; the current one does, once.
        assert await LIFECYCLE.finish(uow.session, job_id, 1, "succeeded", summary={"from": 1}) is False
        assert await LIFECYCLE.finish(uow.session, job_id, 2, "cancelled") is True
        assert await LIFECYCLE.finish(uow.session, job_id, 2, "succeeded", summary={"from": 2}) is False
    row = await _row(resources, StressJob, job_id)
    assert (row.status, row.summary, row.cancel_requested) == ("cancelled", None, True)
    assert await claim("third:3") is None  # a finished job is never run again


async def test_the_sweep_requeues_or_fails_jobs_and_parts_and_leaves_carried_parents(
    api_app: Any, make_account: Any, settings: Any
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    limit = settings.celery.job_max_attempts
    stale = {"status": "running", "started_at": LONG_AGO, "heartbeat_at": LONG_AGO}
    retried = await _job(resources, user_id, attempts=1, **stale)
    exhausted = await _job(resources, user_id, attempts=limit, **stale)
    # A parent whose own heartbeat is old but whose parts still run: the parts carry it.
    carried = await _job(resources, user_id, attempts=1, **stale)
    lost_part = await _part(resources, user_id, carried, 0, attempts=1, **stale)
    waiting_part = await _part(resources, user_id, carried, 1)
    # A parent one of whose parts died on its last attempt.
    doomed = await _job(resources, user_id, attempts=1, **{**stale, "heartbeat_at": datetime.now(UTC)})
    dead_part = await _part(resources, user_id, doomed, 0, attempts=limit, **stale)
    done_part = await _part(resources, user_id, doomed, 1, status="succeeded", progress=1.0)
    never_run = await _part(resources, user_id, doomed, 2)

    counts = await reap_stale(resources)
    assert counts["requeued"] >= 2 and counts["failed"] >= 2

    # Re-queued with its task announced (a worker may already have taken it again).
    assert await _messages(resources, TASK, retried) == 1
    assert (await _row(resources, StressJob, retried)).status != "failed"
    failed = await _row(resources, StressJob, exhausted)
    assert failed.status == "failed" and failed.error["code"] == "worker_lost"
    assert await _messages(resources, TASK, exhausted) == 0

    assert (await _row(resources, StressJob, carried)).status == "running"
    assert await _messages(resources, TASK, carried) == 0
    assert await _messages(resources, f"{TASK}.part", lost_part) == 1
    assert (await _row(resources, JobChild, waiting_part)).status in ("queued", "running", "succeeded")

    parent = await _row(resources, StressJob, doomed)
    assert parent.status == "failed" and parent.error["code"] == "part_failed"
    assert parent.error["part"] == 0 and parent.error["cause"]["code"] == "worker_lost"
    statuses = [(await _row(resources, JobChild, part)).status for part in (dead_part, done_part, never_run)]
    assert statuses == ["failed", "succeeded", "cancelled"]

    async with resources.unit_of_work() as uow:  # what a worker may have picked up stops now
        for job_id in (retried, carried):
            await LIFECYCLE.request_cancel(uow.session, job_id)
