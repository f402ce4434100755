"""Fanned-out jobs on real Celery workers: parts spread over two CPU worker processes with different
node names, merge to exactly the unsplit result, survive a killed worker, stop when cancelled, and
fail their parent when one fails."""

from __future__ import annotations

import os
import signal
import uuid
from typing import Any

from sqlalchemy import select

from packages.infra.db.models import StressJob
from packages.infra.db.models.jobs import JobChild
from tests.support.fanout_jobs import KIND, LIFECYCLE, SumsJobs, SumsRequest, submit_sums, unsplit
from tests.support.jobs import TERMINAL, poll

COMPARED = ("count", "sum", "sum_sq", "histogram")


async def _job(resources: Any, job_id: uuid.UUID) -> StressJob:
    async with resources.session_factory() as session:
        job = await session.scalar(select(StressJob).where(StressJob.id == job_id))
    assert job is not None
    return job


async def _parts(resources: Any, job_id: uuid.UUID) -> list[JobChild]:
    async with resources.session_factory() as session:
        rows = await session.scalars(
            select(JobChild)
            .where(JobChild.parent_kind == KIND, JobChild.parent_id == job_id)
            .order_by(JobChild.position)
        )
        return list(rows)


async def _finished(resources: Any, job_id: uuid.UUID, within_s: float = 60) -> StressJob:
    return await poll(
        lambda: _job(resources, job_id), lambda job: job.status in TERMINAL, within_s=within_s, interval=0.1
    )


async def _running_part(resources: Any, job_id: uuid.UUID) -> JobChild:
    async def running() -> JobChild | None:
        return next((p for p in await _parts(resources, job_id) if p.status == "running"), None)

    part = await poll(running, lambda found: found is not None, within_s=30, interval=0.05)
    assert part is not None
    return part


async def test_parts_spread_over_two_workers_and_merge_to_the_unsplit_result(
    api_app: Any, make_account: Any, celery_workers: dict[str, str], second_cpu_worker: str
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    request = SumsRequest(n=200_000, parts=6, seed=3, part_seconds=1.0)
    job, _ = await submit_sums(resources, user_id, request)
    progress: list[float] = []

    async def read() -> StressJob:
        row = await _job(resources, job.id)
        progress.append(row.progress)
        return row

    done = await poll(read, lambda row: row.status in TERMINAL, within_s=60, interval=0.1)
    assert done.status == "succeeded", done.error
    assert {name: done.summary[name] for name in COMPARED} == unsplit(request)
    # The parent showed its parts' progress while they ran.
    assert any(0 < value < 1 for value in progress) and done.progress == 1.0
    parts = await _parts(resources, job.id)
    assert [(p.position, p.status, p.attempts) for p in parts] == [(i, "succeeded", 1) for i in range(6)]
    assert {p.worker.rsplit(":", 1)[0] for p in parts} == {celery_workers["cpu"], second_cpu_worker}
    # A process running several parts loaded the parent's inputs once.
    assert all(load_number == 1 for _pid, load_number in done.summary["loads"])

    whole, _ = await submit_sums(
        resources, user_id, request.model_copy(update={"parts": 1, "part_seconds": 0})
    )
    single = await _finished(resources, whole.id)
    assert {name: single.summary[name] for name in COMPARED} == unsplit(request)


async def test_a_part_whose_worker_is_killed_runs_again_and_the_merge_is_the_same(
    api_app: Any, make_account: Any, celery_workers: dict[str, str], second_cpu_worker: str
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    request = SumsRequest(n=50_000, parts=3, seed=5, part_seconds=3.0)
    job, _ = await submit_sums(resources, user_id, request)
    victim = await _running_part(resources, job.id)
    pid = int(victim.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)

    done = await _finished(resources, job.id)
    assert done.status == "succeeded", done.error
    assert {name: done.summary[name] for name in COMPARED} == unsplit(request)
    parts = {p.id: p for p in await _parts(resources, job.id)}
    again = parts[victim.id]
    assert again.status == "succeeded" and again.attempts == 2
    assert int(again.worker.rsplit(":", 1)[1]) != pid
    assert all(p.attempts == 1 for p in parts.values() if p.id != victim.id)


async def test_cancelling_the_parent_stops_its_parts(
    api_app: Any, make_account: Any, celery_workers: dict[str, str], second_cpu_worker: str
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    job, _ = await submit_sums(resources, user_id, SumsRequest(n=1000, parts=4, part_seconds=30))
    await _running_part(resources, job.id)
    async with resources.unit_of_work() as uow:
        row = await SumsJobs(uow.session, user_id).get(job.id, for_update=True)
        answer = await LIFECYCLE.cancel(uow.session, row, "sums job")
    assert answer.cancel_requested and answer.status == "running"
    done = await _finished(resources, job.id, within_s=10)
    assert done.status == "cancelled" and done.summary is None
    assert {p.status for p in await _parts(resources, job.id)} == {"cancelled"}


async def test_a_failing_part_fails_the_parent(
    api_app: Any, make_account: Any, celery_workers: dict[str, str], second_cpu_worker: str
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    job, _ = await submit_sums(
        resources, user_id, SumsRequest(n=1000, parts=3, part_seconds=0.5, fail_part=1)
    )
    done = await _finished(resources, job.id)
    assert done.status == "failed" and done.error["code"] == "part_failed" and done.error["part"] == 1
    assert "asked to fail" in done.error["message"] and done.summary is None
    # Parts still running when the parent failed stop at their next heartbeat (or finish first).
    parts = await poll(
        lambda: _parts(resources, job.id),
        lambda rows: all(p.status not in ("queued", "running") for p in rows),
        within_s=30,
        interval=0.1,
    )
    statuses = [p.status for p in parts]
    assert statuses[1] == "failed" and set(statuses) <= {"failed", "succeeded", "cancelled"}
