"""Stress-test use-cases: submit a method's job (idempotent, capped), follow it, cancel it, read its
report, page through its items and, for an optimisation, its Pareto front."""

from __future__ import annotations

import asyncio
import uuid

from packages.core.backtests.runs import resolve_strategy_run
from packages.core.backtests.schemas import JobRequest, StrategyRunRequest
from packages.core.errors import Conflict
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.fanout import ParentLifecycle
from packages.core.jobs.schemas import CancelOut
from packages.core.jobs.submit import ActiveCap, Submission, submit_job
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.stress import specs
from packages.core.stress.repository import StressJobRepository
from packages.core.stress.schemas import (
    STRESS_KINDS,
    CrisisRequest,
    CrisisWindowOut,
    ParetoOut,
    StressItems,
    StressKind,
    StressList,
    StressListItem,
    StressOut,
)
from packages.core.uow import UnitOfWork
from packages.domain.stress.crisis import CRISIS_WINDOWS
from packages.infra.db.models import StressJob

TASK_NAMES: dict[StressKind, str] = {kind: f"stress.{kind}" for kind in STRESS_KINDS}
LIFECYCLES: dict[StressKind, ParentLifecycle] = {
    kind: ParentLifecycle(StressJob, kind=kind, rows_of_kind=kind) for kind in STRESS_KINDS
}


def crisis_windows() -> list[CrisisWindowOut]:
    return [CrisisWindowOut.model_validate(window.to_dict()) for window in CRISIS_WINDOWS]


class StressService:
    def __init__(self, uow: UnitOfWork, principal: Principal, resources: Resources) -> None:
        self.uow = uow
        self.principal = principal
        self.settings = resources.settings
        self.limits = resources.settings.stress
        self.repo = StressJobRepository(uow.session, principal.user_id)

    async def create(
        self, kind: StressKind, body: StrategyRunRequest, idempotency_key: IdempotencyKey | None
    ) -> tuple[StressOut, bool]:
        """Submit a stress test; returns it and whether it is new (False: a replay of the same key and body)."""
        if isinstance(body, CrisisRequest):
            specs.crisis_request_range_unused(body)

        async def build() -> StressJob:
            run, version = await resolve_strategy_run(self.uow, self.principal, self.settings, body)
            parameters = specs.method_parameters(body)
            bars = run.estimated_bars // max(len(run.symbols), 1)
            await asyncio.to_thread(specs.check_request, kind, run.document, parameters, bars, self.limits)
            return StressJob(
                user_id=self.principal.user_id,
                kind=kind,
                status="queued",
                progress=0.0,
                progress_message="queued",
                request={"run": run.model_dump(mode="json"), "parameters": parameters},
                strategy_id=body.strategy_id,
                strategy_version=version,
            )

        submission = Submission(
            task_name=TASK_NAMES[kind],
            plural="stress tests",
            id_field="stress_test_id",
            cap=ActiveCap(self.limits.max_active_jobs_per_user, self.limits.retry_after_s),
        )
        job, created = await submit_job(self.uow, self.repo, submission, body, idempotency_key, build)
        return await self._out(job), created

    async def get(self, job_id: uuid.UUID) -> StressOut:
        return await self._out(await self.repo.get(job_id))

    async def list(self, *, limit: int, cursor: str | None, status: str | None) -> StressList:
        page = await self.repo.page(limit=limit, cursor=cursor, status=status)
        return StressList(
            items=[
                StressListItem(
                    id=job.id,
                    kind=job.kind,
                    status=job.status,
                    progress=job.progress,
                    created_at=job.created_at,
                    finished_at=job.finished_at,
                    strategy_id=job.strategy_id,
                    strategy_name=JobRequest.model_validate(job.request["run"]).strategy_name,
                    description=(job.summary or {}).get("description") if job.status == "succeeded" else None,
                )
                for job in page.rows
            ],
            next_cursor=page.next_cursor,
        )

    async def cancel(self, job_id: uuid.UUID) -> CancelOut:
        job = await self.repo.get(job_id, for_update=True)
        return await LIFECYCLES[job.kind].cancel(self.uow.session, job, "stress test")  # type: ignore[index]

    async def items(self, job_id: uuid.UUID, *, limit: int, cursor: str | None) -> StressItems:
        job = await self._succeeded(job_id)
        page = await self.repo.items_page(job_id, limit=limit, cursor=cursor)
        return StressItems(
            id=job.id,
            kind=job.kind,
            total=await self.repo.items_count(job_id),
            items=page.rows,
            next_cursor=page.next_cursor,
        )

    async def pareto(self, job_id: uuid.UUID) -> ParetoOut:
        job = await self._succeeded(job_id)
        if job.kind != "optimisation":
            raise Conflict(
                f"This stress test is a {job.kind.replace('_', ' ')}; only optimisations have a Pareto front.",
                extra={"kind": job.kind},
            )
        summary = job.summary or {}
        winners = {w["trial"]: w for w in summary.get("winners", [])}
        return ParetoOut(
            id=job.id,
            objectives=summary.get("objectives", []),
            best_trial=summary.get("best_trial"),
            front=[winners[i] for i in summary.get("pareto_front", []) if i in winners],
        )

    async def _succeeded(self, job_id: uuid.UUID) -> StressJob:
        job = await self.repo.get(job_id)
        if job.status != "succeeded":
            raise Conflict(
                f"The stress test is {job.status}; its results exist once it has succeeded.",
                extra={"status": job.status},
            )
        return job

    async def _out(self, job: StressJob) -> StressOut:
        run = JobRequest.model_validate(job.request["run"])
        succeeded = job.status == "succeeded" and job.summary is not None
        summary = dict(job.summary or {}) if succeeded else None
        description = summary.pop("description", None) if summary is not None else None
        return StressOut(
            **StressOut.fields_of(job, run),
            kind=job.kind,
            parameters=dict(job.request.get("parameters", {})),
            description=description,
            summary=summary,
            items=await self.repo.items_count(job.id) if succeeded else None,
        )
