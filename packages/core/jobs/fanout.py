"""Fanned-out jobs: a parent whose parts run as separate tasks on every worker of its queue.

The parent is a row of any job table; its parts are rows of ``job_children``. The protocol:

1. Submission is that of any job (``packages.core.jobs.submit``): the parent's task is queued.
2. The parent task claims the parent (queued -> running, attempt + 1), loads its inputs and calls
   the kind's pure ``plan``. In one transaction holding the parent's row lock it inserts one part
   row per spec and announces one part task per row through the outbox: they are published
   together once that transaction commits (a Celery group without a result backend), so parts
   exist exactly when their tasks do. A cancel requested meanwhile cancels the parent instead.
3. A part task claims its row (queued -> running, attempt + 1; only the current attempt may
   finish it), loads the parent's inputs (once per process and parent), runs the pure
   ``run_child`` in a thread and stores the encoded result. Its heartbeats record its progress,
   refresh the parent's heartbeat and progress (the mean of its parts'), and stop it when the
   parent was cancelled or has ended.
4. After a part ends its task settles the parent, under the parent's row lock: a failed part fails
   the parent at once (queued parts are cancelled, running ones stop at their next heartbeat);
   once no part is queued or running, parts that all succeeded are merged (the pure ``merge``, in
   plan order) and stored, finishing the parent fenced by its attempt; otherwise (cancelled) the
   parent is cancelled. The first task to take the lock after the last part ended settles it.
5. The stale sweep re-queues a running part whose heartbeat went stale while it has attempts
   left, else fails it and with it the parent. A parent with parts queued or running is never
   swept (its parts carry it); one whose parts all ended but which was never settled (the
   settling worker died) goes stale, is re-queued, and its task settles it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from packages.core.jobs.codec import decode_part, encode_part
from packages.core.jobs.lifecycle import (
    JobLifecycle,
    claimable,
    fenced_update,
    finished,
    running_values,
    utcnow,
)
from packages.core.jobs.runner import (
    JobCancelled,
    JobControl,
    Outcome,
    claim_row,
    failure_values,
    run_with_heartbeat,
    stored_values,
)
from packages.core.jobs.schemas import ACTIVE_STATUSES
from packages.core.resources import Resources
from packages.infra.db.models.jobs import JobChild

log = logging.getLogger("minsy.jobs")


@dataclass(frozen=True)
class PartState:
    position: int
    status: str
    error: dict[str, Any] | None


class PartRows:
    """The SQL of one kind's parts (``job_children`` rows whose ``parent_kind`` is the kind)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def of(self, parent_id: uuid.UUID) -> list[ColumnElement[bool]]:
        return [JobChild.parent_kind == self.kind, JobChild.parent_id == parent_id]

    async def insert(
        self,
        session: AsyncSession,
        parent_id: uuid.UUID,
        user_id: uuid.UUID,
        specs: Sequence[Mapping[str, Any]],
    ) -> list[uuid.UUID]:
        rows: list[dict[str, Any]] = [
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "parent_kind": self.kind,
                "parent_id": parent_id,
                "position": position,
                "spec": dict(spec),
            }
            for position, spec in enumerate(specs)
        ]
        await session.execute(insert(JobChild), rows)
        return [row["id"] for row in rows]

    async def count(self, session: AsyncSession, parent_id: uuid.UUID) -> int:
        total = await session.scalar(select(func.count()).select_from(JobChild).where(*self.of(parent_id)))
        return int(total or 0)

    async def any_active(self, session: AsyncSession, parent_id: uuid.UUID) -> bool:
        found = await session.scalar(
            select(exists().where(*self.of(parent_id), JobChild.status.in_(ACTIVE_STATUSES)))
        )
        return bool(found)

    async def states(self, session: AsyncSession, parent_id: uuid.UUID) -> list[PartState]:
        rows = await session.execute(
            select(JobChild.position, JobChild.status, JobChild.error)
            .where(*self.of(parent_id))
            .order_by(JobChild.position)
        )
        return [PartState(row[0], row[1], row[2]) for row in rows]

    async def results(self, session: AsyncSession, parent_id: uuid.UUID) -> list[bytes]:
        rows = await session.scalars(
            select(JobChild.result).where(*self.of(parent_id)).order_by(JobChild.position)
        )
        return [bytes(blob or b"") for blob in rows]

    async def cancel_queued(self, session: AsyncSession, parent_id: uuid.UUID) -> None:
        await session.execute(
            update(JobChild)
            .where(*self.of(parent_id), JobChild.status == "queued")
            .values(status="cancelled", finished_at=utcnow())
        )

    async def claim(
        self,
        session: AsyncSession,
        part_id: uuid.UUID,
        *,
        worker: str,
        stale_after: timedelta,
        max_attempts: int,
    ) -> tuple[int, uuid.UUID, dict[str, Any]] | None:
        """Start (or take over a stale) part: (attempt, parent id, spec), or None if not ours."""
        now = utcnow()
        row = (
            await session.execute(
                update(JobChild)
                .where(
                    JobChild.id == part_id,
                    JobChild.parent_kind == self.kind,
                    *claimable(JobChild, now, stale_after, max_attempts),
                )
                .values(**running_values(JobChild, worker, now))
                .returning(JobChild.attempts, JobChild.parent_id, JobChild.spec)
            )
        ).one_or_none()
        return None if row is None else (int(row[0]), row[1], dict(row[2]))

    async def state(self, session: AsyncSession, part_id: uuid.UUID) -> tuple[str, Any] | None:
        row = (
            await session.execute(
                select(JobChild.status, JobChild.heartbeat_at).where(JobChild.id == part_id)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    async def heartbeat(
        self, session: AsyncSession, part_id: uuid.UUID, attempt: int, progress: float | None
    ) -> bool:
        """Record liveness (and progress); False when this attempt no longer holds the part."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            values["progress"] = round(min(max(progress, 0.0), 1.0), 4)
        return await fenced_update(session, JobChild, part_id, attempt, **values) is not None

    async def finish(
        self, session: AsyncSession, part_id: uuid.UUID, attempt: int, status: str, **values: Any
    ) -> bool:
        """Terminal transition, fenced by the attempt: a superseded run changes nothing."""
        return await finished(session, JobChild, part_id, attempt, status, values)

    async def stale_running(
        self, session: AsyncSession, stale_after: timedelta
    ) -> list[tuple[uuid.UUID, int, uuid.UUID]]:
        """(part id, attempt, parent id) of running parts whose worker stopped answering."""
        rows = await session.execute(
            select(JobChild.id, JobChild.attempts, JobChild.parent_id)
            .where(
                JobChild.parent_kind == self.kind,
                JobChild.status == "running",
                JobChild.heartbeat_at < utcnow() - stale_after,
            )
            .with_for_update(skip_locked=True)
        )
        return [(row[0], int(row[1]), row[2]) for row in rows]

    async def requeue(self, session: AsyncSession, part_id: uuid.UUID, attempt: int) -> bool:
        return await fenced_update(session, JobChild, part_id, attempt, status="queued") is not None


class ParentLifecycle(JobLifecycle):
    """A job lifecycle whose rows may have parts: cancelling reaches the parts, the sweep leaves a
    parent alone while its parts run, and parts refresh their parent's heartbeat and progress."""

    def __init__(self, model: type[Any], *, kind: str, rows_of_kind: str | None = None) -> None:
        super().__init__(model, rows_of_kind=rows_of_kind)
        self.parts = PartRows(kind)

    def _swept(self) -> list[Any]:
        carried = exists().where(
            JobChild.parent_kind == self.parts.kind,
            JobChild.parent_id == self.model.id,
            JobChild.status.in_(ACTIVE_STATUSES),
        )
        return [*super()._swept(), ~carried]

    async def locked_running(self, session: AsyncSession, job_id: uuid.UUID) -> tuple[int, bool] | None:
        """(attempt, cancel requested) of a running parent, its row locked until the transaction
        ends; None when it is not running."""
        m = self.model
        row = (
            await session.execute(
                select(m.attempts, m.cancel_requested, m.status).where(m.id == job_id).with_for_update()
            )
        ).one_or_none()
        return None if row is None or row[2] != "running" else (int(row[0]), bool(row[1]))

    async def touch(self, session: AsyncSession, job_id: uuid.UUID) -> bool:
        """A part's heartbeat on its parent: fresh heartbeat, progress = the parts' mean. Returns
        whether the parts should stop (cancel requested, or the parent is no longer running)."""
        parts = self.parts.of(job_id)
        stats = (
            await session.execute(
                select(
                    func.avg(JobChild.progress),
                    func.count(),
                    func.count().filter(JobChild.status == "succeeded"),
                ).where(*parts)
            )
        ).one()
        m = self.model
        cancel = await session.scalar(
            update(m)
            .where(m.id == job_id, m.status == "running")
            .values(
                heartbeat_at=utcnow(),
                progress=round(float(stats[0] or 0.0), 4),
                progress_message=f"{stats[2]} of {stats[1]} parts done",
            )
            .returning(m.cancel_requested)
        )
        return cancel is None or bool(cancel)

    async def request_cancel(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        await super().request_cancel(session, job_id)
        await self.parts.cancel_queued(session, job_id)
        # Running parts stop at their next heartbeat and the last one settles the parent; when none
        # is left to do so, the parent is cancelled here.
        running = await self.locked_running(session, job_id)
        if (
            running is not None
            and await self.parts.count(session, job_id)
            and not await self.parts.any_active(session, job_id)
        ):
            await self.finish(session, job_id, running[0], "cancelled", progress_message="cancelled")


@dataclass(frozen=True)
class FanOutJobKind[InputT, PartT, ResultT]:
    """A job computed in parts: ``plan`` splits the inputs into JSON specs, ``run_child`` computes
    one part (CPU, pure), ``merge`` combines the parts' results in plan order (pure), ``store``
    turns the merged result into the parent row's column values."""

    name: str
    lifecycle: ParentLifecycle
    load: Callable[[Resources, uuid.UUID], Awaitable[InputT]]
    plan: Callable[[InputT], Sequence[Mapping[str, Any]]]
    run_child: Callable[[InputT, dict[str, Any], JobControl], PartT]
    merge: Callable[[InputT, list[PartT]], ResultT]
    store: Callable[[ResultT], Awaitable[dict[str, Any]] | dict[str, Any]]

    def __post_init__(self) -> None:
        if self.lifecycle.parts.kind != self.name:
            raise ValueError("a fan-out kind's ParentLifecycle must be made with kind=<its name>")


def part_task_name(task_name: str) -> str:
    """The part task of a fan-out kind's task ``<queue>.<action>``: same queue."""
    return f"{task_name}.part"


class _InputsCache:
    """The inputs of the last few parents this process computed parts of: a worker running several
    parts of one job loads its inputs (bars, documents) once. A parent's inputs never change (they
    come from its immutable request), so its kind and id are the key."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, uuid.UUID], Any] = OrderedDict()

    async def get(
        self, kind: FanOutJobKind[Any, Any, Any], resources: Resources, parent_id: uuid.UUID
    ) -> Any:
        key = (kind.name, parent_id)
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        inputs = await kind.load(resources, parent_id)
        self.entries[key] = inputs
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        return inputs


INPUTS = _InputsCache()


def _part_failed(parts: list[PartState], failed: PartState) -> dict[str, Any]:
    cause = failed.error or {}
    return {
        "error": {
            "code": "part_failed",
            "message": f"Part {failed.position + 1} of {len(parts)} failed: {cause.get('message', 'no reason')}",
            "part": failed.position,
            "cause": cause,
        }
    }


async def settle(
    resources: Resources,
    kind: FanOutJobKind[Any, Any, Any],
    parent_id: uuid.UUID,
    inputs: Callable[[], Awaitable[Any]],
) -> Outcome | None:
    """Finish the parent if its parts decide it (see the module's step 4); the outcome, or None
    when it is still running or was finished before."""
    life = kind.lifecycle
    async with resources.unit_of_work() as uow:
        session = uow.session
        running = await life.locked_running(session, parent_id)
        if running is None:
            await life.parts.cancel_queued(session, parent_id)
            return None
        parts = await life.parts.states(session, parent_id)
        failed = next((part for part in parts if part.status == "failed"), None)
        outcome: Outcome
        if failed is not None:
            await life.parts.cancel_queued(session, parent_id)
            outcome, values = "failed", _part_failed(parts, failed)
        elif any(part.status in ACTIVE_STATUSES for part in parts):
            return None
        elif all(part.status == "succeeded" for part in parts):
            try:
                blobs = await life.parts.results(session, parent_id)
                loaded = await inputs()
                merged = await asyncio.to_thread(
                    lambda: kind.merge(loaded, [decode_part(blob) for blob in blobs])
                )
                values = await stored_values(kind.store, merged)
                outcome, values = "succeeded", {**values, "progress": 1.0, "progress_message": "done"}
            except Exception as exc:
                outcome, values = "failed", failure_values(exc, kind.name, parent_id)
        else:
            outcome, values = "cancelled", {"progress_message": "cancelled"}
        await life.finish(session, parent_id, running[0], outcome, **values)
    log.info("job finished", extra={"job_id": str(parent_id), "kind": kind.name, "outcome": outcome})
    return outcome


async def _fan_out(
    resources: Resources,
    kind: FanOutJobKind[Any, Any, Any],
    parent_id: uuid.UUID,
    attempt: int,
    specs: Sequence[Mapping[str, Any]],
    part_task: str,
) -> bool:
    """Insert the parts and announce their tasks, if this attempt still holds the parent; returns
    whether it fanned out (False: superseded, or cancelled meanwhile and so finished here)."""
    life = kind.lifecycle
    m = life.model
    async with resources.unit_of_work() as uow:
        session = uow.session
        running = await life.locked_running(session, parent_id)
        if running is None or running[0] != attempt:
            return False
        if running[1]:
            await life.finish(session, parent_id, attempt, "cancelled", progress_message="cancelled")
            return False
        user_id = (await session.execute(select(m.user_id).where(m.id == parent_id))).scalar_one()
        for part_id in await life.parts.insert(session, parent_id, user_id, specs):
            uow.enqueue(part_task, str(part_id))
        await session.execute(
            update(m)
            .where(m.id == parent_id)
            .values(heartbeat_at=utcnow(), progress_message=f"0 of {len(specs)} parts done")
        )
    return True


async def run_parent(
    resources: Resources,
    kind: FanOutJobKind[Any, Any, Any],
    job_id: uuid.UUID,
    *,
    part_task: str,
    node: str | None = None,
) -> Outcome:
    """The parent task: plan and fan out, or settle a parent whose parts all ended."""
    settings = resources.settings.celery
    life = kind.lifecycle
    async with resources.unit_of_work() as uow:
        if await life.parts.any_active(uow.session, job_id):
            return "skipped"  # re-delivered while its parts run: they carry it
    attempt = await claim_row(resources, life, job_id, node)
    if isinstance(attempt, str):
        return attempt
    async with resources.unit_of_work() as uow:
        planned = await life.parts.count(uow.session, job_id) > 0

    control = JobControl()

    async def beat(progress: float | None, message: str | None) -> bool:
        async with resources.unit_of_work() as uow:
            return await life.heartbeat(uow.session, job_id, attempt, progress, message)

    async def load_and_plan() -> tuple[Any, Sequence[Mapping[str, Any]]]:
        # Through the cache: a part this process runs next reuses them.
        inputs = await INPUTS.get(kind, resources, job_id)
        return inputs, ([] if planned else await asyncio.to_thread(kind.plan, inputs))

    try:
        inputs, specs = await run_with_heartbeat(settings.job_heartbeat_s, control, beat, load_and_plan)
        if specs:
            fanned = await _fan_out(resources, kind, job_id, attempt, specs, part_task)
            log.info("job fanned out", extra={"job_id": str(job_id), "kind": kind.name, "parts": len(specs)})
            return "fanned_out" if fanned else "skipped"

        async def loaded() -> Any:
            return inputs

        return await settle(resources, kind, job_id, loaded) or "skipped"
    except Exception as exc:
        values = failure_values(exc, kind.name, job_id)
    async with resources.unit_of_work() as uow:
        finished = await life.finish(uow.session, job_id, attempt, "failed", **values)
    return "failed" if finished else "skipped"


async def run_part(
    resources: Resources, kind: FanOutJobKind[Any, Any, Any], part_id: uuid.UUID, node: str | None = None
) -> Outcome:
    """A part task: claim, compute, store fenced by the attempt, then settle the parent."""
    settings = resources.settings.celery
    life = kind.lifecycle
    claimed = await claim_row(resources, life.parts, part_id, node)
    if isinstance(claimed, str):
        return claimed
    attempt, parent_id, spec = claimed
    control = JobControl()

    async def inputs() -> Any:
        return await INPUTS.get(kind, resources, parent_id)

    async def beat(progress: float | None, message: str | None) -> bool:
        async with resources.unit_of_work() as uow:
            held = await life.parts.heartbeat(uow.session, part_id, attempt, progress)
            stop = await life.touch(uow.session, parent_id)
        return stop or not held

    async def compute() -> bytes:
        loaded = await inputs()
        part = await asyncio.to_thread(kind.run_child, loaded, spec, control)
        return await asyncio.to_thread(encode_part, part)

    outcome: Outcome
    values: dict[str, Any]
    try:
        blob = await run_with_heartbeat(settings.job_heartbeat_s, control, beat, compute)
        outcome, values = "succeeded", {"result": blob, "progress": 1.0}
    except JobCancelled:
        outcome, values = "cancelled", {}
    except Exception as exc:
        outcome, values = "failed", failure_values(exc, kind.name, part_id)
    async with resources.unit_of_work() as uow:
        finished = await life.parts.finish(uow.session, part_id, attempt, outcome, **values)
    if not finished:
        log.warning("part superseded; result discarded", extra={"part_id": str(part_id), "attempt": attempt})
        return "skipped"
    await settle(resources, kind, parent_id, inputs)
    return outcome
