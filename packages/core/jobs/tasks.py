"""Celery side of background jobs: the tasks of each job kind, and the sweep that rescues or fails
jobs (and parts of fanned-out jobs) whose worker died."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from celery import Task

from packages.core.jobs.fanout import FanOutJobKind, part_task_name, run_parent, run_part, settle
from packages.core.jobs.runner import JobKind, Outcome, run_job
from packages.core.resources import Resources
from packages.infra.queue.celery_app import celery_app
from packages.shared_settings import get_settings

log = logging.getLogger("minsy.jobs")

AnyKind = JobKind[Any, Any] | FanOutJobKind[Any, Any, Any]

# kind name -> (kind, task name); filled by each feature's tasks module.
JOB_TASKS: dict[str, tuple[AnyKind, str]] = {}


async def with_task_resources[T](work: Any) -> T:
    # Each task runs in its own event loop: its clients (a small connection pool reused by the
    # claim, heartbeats and finish of this one job) are opened for it and closed after.
    resources = Resources.open(get_settings())
    try:
        result: T = await work(resources)
        return result
    finally:
        await resources.close()


def _job_task(task_name: str, run: Callable[[Resources, uuid.UUID, str | None], Awaitable[Outcome]]) -> Task:
    """A task running ``run`` on the id it is sent; while another worker holds the row ("busy") it
    looks again once that worker's heartbeat could have gone stale."""

    @celery_app.task(name=task_name, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
    def task(self: Task, row_id: str) -> str:
        node = getattr(self.request, "hostname", None)
        outcome: str = asyncio.run(with_task_resources(lambda r: run(r, uuid.UUID(row_id), node)))
        if outcome == "busy":
            raise self.retry(countdown=get_settings().celery.job_stale_after_s)
        return outcome

    return task


def register_job_task(kind: AnyKind, task_name: str) -> Task:
    """Register the task ``task_name`` (``<queue>.<action>``) running ``kind``'s jobs; a fan-out
    kind also gets ``<task_name>.part`` for its parts, on the same queue."""
    JOB_TASKS[kind.name] = (kind, task_name)
    if isinstance(kind, FanOutJobKind):
        fan_out, part_task = kind, part_task_name(task_name)
        _job_task(part_task, lambda r, part_id, node: run_part(r, fan_out, part_id, node))
        return _job_task(
            task_name, lambda r, job_id, node: run_parent(r, fan_out, job_id, part_task=part_task, node=node)
        )
    single = kind
    return _job_task(task_name, lambda r, job_id, node: run_job(r, single, job_id, node))


def _worker_lost(attempt: int) -> dict[str, Any]:
    return {
        "code": "worker_lost",
        "message": f"The worker stopped answering {attempt} time(s); the job was given up.",
    }


async def _reap_parts(
    resources: Resources, kind: FanOutJobKind[Any, Any, Any], task_name: str, counts: dict[str, int]
) -> None:
    settings = resources.settings.celery
    parts = kind.lifecycle.parts
    given_up: list[uuid.UUID] = []
    async with resources.unit_of_work() as uow:
        stale = await parts.stale_running(uow.session, timedelta(seconds=settings.job_stale_after_s))
        for part_id, attempt, parent_id in stale:
            if attempt < settings.job_max_attempts and await parts.requeue(uow.session, part_id, attempt):
                uow.enqueue(part_task_name(task_name), str(part_id))
                counts["requeued"] += 1
            elif await parts.finish(uow.session, part_id, attempt, "failed", error=_worker_lost(attempt)):
                counts["failed"] += 1
                given_up.append(parent_id)
    for parent_id in given_up:
        # A failed part fails its parent (nothing is merged, so the inputs are never loaded).
        await settle(resources, kind, parent_id, functools.partial(kind.load, resources, parent_id))


async def reap_stale(resources: Resources) -> dict[str, int]:
    """Re-queue or fail every running job and part whose worker stopped answering; the counts."""
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
                    uow.session, job_id, attempt, "failed", error=_worker_lost(attempt)
                ):
                    counts["failed"] += 1
        if isinstance(kind, FanOutJobKind):
            await _reap_parts(resources, kind, task_name, counts)
    if any(counts.values()):
        log.warning("stale jobs swept", extra=counts)
    return counts


@celery_app.task(name="maintenance.reap_stale_jobs")
def reap_stale_jobs() -> dict[str, int]:
    counts: dict[str, int] = asyncio.run(with_task_resources(reap_stale))
    return counts
