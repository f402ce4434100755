"""Celery side of background jobs: one task per job kind, and the sweep that rescues or fails
jobs whose worker died."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from celery import Task

from packages.core.jobs.runner import JobKind, run_job
from packages.core.resources import Resources
from packages.infra.queue.celery_app import celery_app
from packages.shared_settings import get_settings

log = logging.getLogger("minsy.jobs")

# kind name -> (kind, task name); filled by each feature's tasks module.
JOB_TASKS: dict[str, tuple[JobKind[Any, Any], str]] = {}


async def with_task_resources[T](work: Any) -> T:
    # Each task runs in its own event loop: its clients (a small connection pool reused by the
    # claim, heartbeats and finish of this one job) are opened for it and closed after.
    resources = Resources.open(get_settings())
    try:
        result: T = await work(resources)
        return result
    finally:
        await resources.close()


def register_job_task(kind: JobKind[Any, Any], task_name: str) -> Task:
    @celery_app.task(name=task_name, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def run(self: Task, job_id: str) -> str:
        outcome: str = asyncio.run(with_task_resources(lambda r: run_job(r, kind, uuid.UUID(job_id))))
        if outcome == "busy":
            raise self.retry(countdown=get_settings().celery.job_stale_after_s)
        return outcome

    JOB_TASKS[kind.name] = (kind, task_name)
    return run


async def _reap(resources: Resources) -> dict[str, int]:
    settings = resources.settings.celery
    stale_after = timedelta(seconds=settings.job_stale_after_s)
    counts = {"requeued": 0, "failed": 0}
    for kind, task_name in JOB_TASKS.values():
        async with resources.unit_of_work() as uow:
            for job_id, attempt in await kind.lifecycle.stale_running(uow.session, stale_after):
                if attempt < settings.job_max_attempts and await kind.lifecycle.requeue(
                    uow.session, job_id, attempt
                ):
                    uow.enqueue(task_name, str(job_id))
                    counts["requeued"] += 1
                elif await kind.lifecycle.finish(
                    uow.session,
                    job_id,
                    attempt,
                    "failed",
                    error={
                        "code": "worker_lost",
                        "message": f"The worker stopped answering {attempt} time(s); the job was given up.",
                    },
                ):
                    counts["failed"] += 1
    if any(counts.values()):
        log.warning("stale jobs swept", extra=counts)
    return counts


@celery_app.task(name="maintenance.reap_stale_jobs")
def reap_stale_jobs() -> dict[str, int]:
    counts: dict[str, int] = asyncio.run(with_task_resources(_reap))
    return counts
