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
from typing import Any, Literal

from packages.core.errors import AppError
from packages.core.jobs.lifecycle import JobLifecycle
from packages.core.resources import Resources

log = logging.getLogger("minsy.jobs")

Outcome = Literal["succeeded", "failed", "cancelled", "skipped", "busy"]


class JobCancelled(Exception):
    """Raised inside a computation when its job was cancelled."""


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


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_job(resources: Resources, kind: JobKind[Any, Any], job_id: uuid.UUID) -> Outcome:
    settings = resources.settings.celery
    stale_after = timedelta(seconds=settings.job_stale_after_s)
    async with resources.unit_of_work() as uow:
        attempt = await kind.lifecycle.claim(
            uow.session,
            job_id,
            worker=worker_identity(),
            stale_after=stale_after,
            max_attempts=settings.job_max_attempts,
        )
        state = None if attempt is not None else await kind.lifecycle.state(uow.session, job_id)
    if attempt is None:
        held_elsewhere = (
            state is not None
            and state[0] == "running"
            and state[1] is not None
            and datetime.now(UTC) - state[1] < stale_after
        )
        # "busy": another worker holds it; look again once its heartbeat could have gone stale.
        return "busy" if held_elsewhere else "skipped"

    control = JobControl()
    stop_heartbeat = asyncio.Event()

    async def heartbeat() -> None:
        while not stop_heartbeat.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_heartbeat.wait(), settings.job_heartbeat_s)
            latest = control.take_progress()
            async with resources.unit_of_work() as uow:
                cancel = await kind.lifecycle.heartbeat(
                    uow.session, job_id, attempt, latest[0] if latest else None, latest[1] if latest else None
                )
            if cancel:
                control.cancelled.set()

    beat_task = asyncio.create_task(heartbeat())
    outcome: Outcome
    values: dict[str, Any]
    try:
        inputs = await kind.load(resources, job_id)
        result = await asyncio.to_thread(kind.compute, inputs, control)
        stored = kind.store(result)
        values = await stored if isinstance(stored, Awaitable) else stored
        outcome, values = "succeeded", {**values, "progress": 1.0, "progress_message": "done"}
    except JobCancelled:
        outcome, values = "cancelled", {"progress_message": "cancelled"}
    except AppError as exc:
        outcome = "failed"
        values = {
            "error": {"code": exc.code, "message": exc.detail, "errors": [e.as_dict() for e in exc.errors]}
        }
    except Exception as exc:
        log.exception("job failed", extra={"job_id": str(job_id), "kind": kind.name})
        outcome = "failed"
        values = {
            "error": {
                "code": "internal_error",
                "message": f"{type(exc).__name__}: {exc}"[:500],
                "trace": traceback.format_exc(limit=5)[-2000:],
            }
        }
    finally:
        stop_heartbeat.set()
        await beat_task
    async with resources.unit_of_work() as uow:
        finished = await kind.lifecycle.finish(uow.session, job_id, attempt, outcome, **values)
    if not finished:
        log.warning("job superseded; result discarded", extra={"job_id": str(job_id), "attempt": attempt})
        return "skipped"
    log.info("job finished", extra={"job_id": str(job_id), "kind": kind.name, "outcome": outcome})
    return outcome
