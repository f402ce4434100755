"""Runs one background job inside a worker: claim, heartbeat, progress, cancellation, finish.

The computation itself is synchronous (numba, numpy) and runs in a thread; a coroutine beside it
writes heartbeats and the latest progress, and turns a cancellation request into an event the
computation checks between steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from packages.core.errors import AppError
from packages.core.jobs.lifecycle import JobLifecycle
from packages.core.resources import Resources

log = logging.getLogger("minsy.jobs")

# "fanned_out": a fan-out parent handed its work to its parts (packages.core.jobs.fanout).
Outcome = Literal["succeeded", "failed", "cancelled", "skipped", "busy", "fanned_out"]


class JobCancelled(Exception):
    """Raised inside a computation when its job was cancelled."""


class JobFailed(Exception):
    """Raised by a kind's ``compute`` or ``store`` when its run completed but did not do its work
    (say every chunk of a sync failed): the job ends ``failed`` with ``error`` and still keeps
    ``values`` (the per-chunk report, say)."""

    def __init__(self, error: dict[str, Any], values: dict[str, Any]) -> None:
        super().__init__(error.get("message", "the job failed"))
        self.error = error
        self.values = values


class JobControl:
    """What a running computation may do: report progress and notice cancellation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: tuple[float, str | None] | None = None
        self.cancelled = threading.Event()

    def progress(self, fraction: float, message: str | None = None) -> None:
        with self._lock:
            self._progress = (fraction, message)

    def take_progress(self) -> tuple[float, str | None] | None:
        with self._lock:
            latest, self._progress = self._progress, None
            return latest

    def check_cancelled(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled


@dataclass(frozen=True)
class JobKind[InputT, ResultT]:
    """How one kind of job loads its inputs, computes, and stores its result."""

    name: str
    lifecycle: JobLifecycle
    load: Callable[[Resources, uuid.UUID], Awaitable[InputT]]
    compute: Callable[[InputT, JobControl], ResultT]
    store: Callable[[ResultT], Awaitable[dict[str, Any]] | dict[str, Any]]


def worker_identity(node: str | None = None) -> str:
    """``<celery node name or host>:<pid>``: which worker process holds a claim."""
    return f"{node or socket.gethostname()}:{os.getpid()}"


# Records liveness and the latest progress of a claimed row; True means "stop" (cancelled).
Beat = Callable[[float | None, str | None], Awaitable[bool]]


async def run_with_heartbeat[T](
    every_s: float, control: JobControl, beat: Beat, work: Callable[[], Awaitable[T]]
) -> T:
    """Run ``work`` while ``beat`` records liveness every ``every_s``; a "stop" from it sets
    ``control.cancelled``, which the computation checks between steps."""
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            latest = control.take_progress()
            if await beat(latest[0] if latest else None, latest[1] if latest else None):
                control.cancelled.set()

    beat_task = asyncio.create_task(heartbeat())
    try:
        return await work()
    finally:
        stop.set()
        await beat_task


async def stored_values[ResultT](
    store: Callable[[ResultT], Awaitable[dict[str, Any]] | dict[str, Any]], result: ResultT
) -> dict[str, Any]:
    stored = store(result)
    return await stored if isinstance(stored, Awaitable) else stored


def failure_values(exc: Exception, kind: str, job_id: uuid.UUID) -> dict[str, Any]:
    """The ``error`` a failed run records: an AppError as it is, anything else with a short trace."""
    if isinstance(exc, AppError):
        return {
            "error": {"code": exc.code, "message": exc.detail, "errors": [e.as_dict() for e in exc.errors]}
        }
    log.exception("job failed", extra={"job_id": str(job_id), "kind": kind})
    return {
        "error": {
            "code": "internal_error",
            "message": f"{type(exc).__name__}: {exc}"[:500],
            "trace": traceback.format_exc(limit=5)[-2000:],
        }
    }


class Claimable[ClaimT](Protocol):
    """Rows a worker claims and holds by attempt: job rows (JobLifecycle) and parts (PartRows)."""

    async def claim(
        self,
        session: AsyncSession,
        row_id: uuid.UUID,
        /,
        *,
        worker: str,
        stale_after: timedelta,
        max_attempts: int,
    ) -> ClaimT | None: ...

    async def state(self, session: AsyncSession, row_id: uuid.UUID, /) -> tuple[Any, ...] | None: ...


async def claim_row[ClaimT](
    resources: Resources, rows: Claimable[ClaimT], row_id: uuid.UUID, node: str | None
) -> ClaimT | Outcome:
    """What the claim returns, or why nothing was claimed: "busy" while another worker's heartbeat
    is fresh (look again once it could have gone stale), else "skipped" (finished, cancelled, or
    out of attempts)."""
    settings = resources.settings.celery
    stale_after = timedelta(seconds=settings.job_stale_after_s)
    async with resources.unit_of_work() as uow:
        claimed = await rows.claim(
            uow.session,
            row_id,
            worker=worker_identity(node),
            stale_after=stale_after,
            max_attempts=settings.job_max_attempts,
        )
        if claimed is not None:
            return claimed
        found = await rows.state(uow.session, row_id)
    held_elsewhere = (
        found is not None
        and found[0] == "running"
        and found[1] is not None
        and datetime.now(UTC) - found[1] < stale_after
    )
    return "busy" if held_elsewhere else "skipped"


async def run_job(
    resources: Resources, kind: JobKind[Any, Any], job_id: uuid.UUID, node: str | None = None
) -> Outcome:
    settings = resources.settings.celery
    attempt = await claim_row(resources, kind.lifecycle, job_id, node)
    if isinstance(attempt, str):
        return attempt
    control = JobControl()

    async def beat(progress: float | None, message: str | None) -> bool:
        async with resources.unit_of_work() as uow:
            return await kind.lifecycle.heartbeat(uow.session, job_id, attempt, progress, message)

    async def work() -> dict[str, Any]:
        inputs = await kind.load(resources, job_id)
        result = await asyncio.to_thread(kind.compute, inputs, control)
        return await stored_values(kind.store, result)

    outcome: Outcome
    values: dict[str, Any]
    try:
        values = await run_with_heartbeat(settings.job_heartbeat_s, control, beat, work)
        outcome, values = "succeeded", {**values, "progress": 1.0, "progress_message": "done"}
    except JobCancelled:
        outcome, values = "cancelled", {"progress_message": "cancelled"}
    except JobFailed as exc:
        outcome, values = (
            "failed",
            {**exc.values, "error": exc.error, "progress": 1.0, "progress_message": "done"},
        )
    except Exception as exc:
        outcome, values = "failed", failure_values(exc, kind.name, job_id)
    async with resources.unit_of_work() as uow:
        finished = await kind.lifecycle.finish(uow.session, job_id, attempt, outcome, **values)
    if not finished:
        log.warning("job superseded; result discarded", extra={"job_id": str(job_id), "attempt": attempt})
        return "skipped"
    log.info("job finished", extra={"job_id": str(job_id), "kind": kind.name, "outcome": outcome})
    return outcome
