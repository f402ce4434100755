"""Market-data tasks on the ``market_data`` queue (IO worker): cold start, sync jobs, realtime refresh.

The cold start is enqueued by the IO worker itself once it is ready (``worker_ready``), so the API
starts without waiting for data and a compose deployment without the launcher gets it too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from celery.signals import worker_ready

from packages.core.errors import NotFound
from packages.core.jobs.runner import JobCancelled, JobControl, JobFailed, JobKind
from packages.core.jobs.tasks import register_job_task, with_task_resources
from packages.core.market_data.access import choose_provider, market_store
from packages.core.market_data.catalog import PostgresCatalog
from packages.core.market_data.cold_start import mark_queued, run_cold_start
from packages.core.market_data.realtime import refresh_realtime
from packages.core.market_data.repository import sync_job_for_worker
from packages.core.market_data.service import SYNC_LIFECYCLE, SYNC_TASK
from packages.core.resources import Resources
from packages.domain.market_data.bars import Market, Timeframe
from packages.domain.market_data.gaps import missing_timestamps
from packages.domain.market_data.sessions import calendar_for
from packages.domain.market_data.sync import BarProvider, ChunkResult, SyncChunk, SyncPlan, SyncReport
from packages.domain.market_data.timeconv import to_ns
from packages.infra.market_data.store import DatasetNotFound, ParquetBarStore
from packages.infra.queue.celery_app import celery_app
from packages.shared_settings import get_settings

log = logging.getLogger("minsy.market_data.tasks")

ENSURE_TASK = "market_data.ensure"
REALTIME_TASK = "market_data.refresh_realtime"
MARKET_DATA_QUEUE = "market_data"


# ---------------------------------------------------------------------------------- cold start
@celery_app.task(name=ENSURE_TASK)
def ensure_market_data_task() -> dict[str, Any]:
    state: dict[str, Any] = asyncio.run(with_task_resources(run_cold_start))
    return state


@worker_ready.connect
def _cold_start_when_ready(sender: Any = None, **_: Any) -> None:
    settings = get_settings()
    if sender is None or not settings.market_data.cold_start_on_worker_ready:
        return
    if MARKET_DATA_QUEUE not in sender.app.amqp.queues.consume_from:
        return
    try:
        mark_queued(settings)
        sender.app.send_task(ENSURE_TASK)
    except Exception:  # the worker must start even when Redis hiccups; the CLI can run it later
        log.exception("could not enqueue the market-data cold start")


# ----------------------------------------------------------------------------------- realtime
@celery_app.task(name=REALTIME_TASK, ignore_result=True)
def refresh_realtime_task() -> dict[str, int]:
    counts: dict[str, int] = asyncio.run(with_task_resources(refresh_realtime))
    return counts


# ---------------------------------------------------------------------------------- sync jobs
@dataclass(frozen=True)
class SyncInputs:
    plan: SyncPlan
    provider: BarProvider
    store: ParquetBarStore
    catalog: PostgresCatalog
    skip_chunk_ids: frozenset[int]


def _filled_chunks(store: ParquetBarStore, plan: SyncPlan) -> frozenset[int]:
    """Chunks with nothing left to fetch (a re-run after a worker died resumes where it stopped)."""
    if not plan.chunks:
        return frozenset()
    first, last = plan.chunks[0].start_ns, max(chunk.end_ns for chunk in plan.chunks)
    try:
        stored = store.read_base(
            plan.market, plan.symbol, plan.timeframe, first, last, namespace=plan.namespace
        ).ts
    except DatasetNotFound:
        return frozenset()
    calendar = calendar_for(plan.market)
    return frozenset(
        chunk.chunk_id
        for chunk in plan.chunks
        if missing_timestamps(calendar, plan.timeframe, stored, chunk.start_ns, chunk.end_ns).shape[0] == 0
    )


async def _load(resources: Resources, job_id: uuid.UUID) -> SyncInputs:
    async with resources.unit_of_work() as uow:
        row = await sync_job_for_worker(uow.session, job_id)
    if row is None:
        raise NotFound(f"No sync job with id {job_id}.")
    market, timeframe = Market(row.market), Timeframe(row.timeframe)
    provider = await asyncio.to_thread(choose_provider, resources.settings, market, row.symbol, timeframe)
    plan = SyncPlan(
        market=market,
        symbol=row.symbol,
        timeframe=timeframe,
        provider=provider.name,
        chunks=tuple(
            SyncChunk(chunk["chunk_id"], to_ns(chunk["start"]), to_ns(chunk["end"])) for chunk in row.chunks
        ),
        namespace=row.namespace,
    )
    store = market_store(resources.settings)
    return SyncInputs(
        plan=plan,
        provider=provider,
        store=store,
        catalog=PostgresCatalog(resources.session_factory, loop=asyncio.get_running_loop()),
        skip_chunk_ids=await asyncio.to_thread(_filled_chunks, store, plan),
    )


def _register_dataset(inputs: SyncInputs) -> None:
    plan = inputs.plan
    info = inputs.store.dataset(plan.market, plan.symbol, plan.timeframe, namespace=plan.namespace)
    if info is not None:
        inputs.catalog.upsert_dataset(info.catalog_entry())


def _compute(inputs: SyncInputs, control: JobControl) -> SyncReport:
    from packages.infra.market_data.jobs import execute_sync

    def progress(done: int, total: int, result: ChunkResult) -> None:
        detail = f"{result.rows_written} rows" if result.status == "done" else result.status
        control.progress(done / total, f"chunk {done}/{total}: {detail}")
        control.check_cancelled()

    try:
        return execute_sync(
            inputs.plan,
            inputs.provider,
            inputs.store,
            catalog=inputs.catalog,
            progress=progress,
            skip_chunk_ids=inputs.skip_chunk_ids,
        )
    except JobCancelled:
        # Chunks finished before the cancellation are stored: keep the catalog in step with them.
        _register_dataset(inputs)
        raise


def _store(report: SyncReport) -> dict[str, Any]:
    """The per-chunk report; a sync whose every attempted chunk failed (or that was aborted) ends
    ``failed``, one with some failed chunks ends ``succeeded`` and reads as ``partial``."""
    results = {result.chunk_id: result.to_dict() for result in report.results}
    not_attempted = f"not attempted: {report.aborted}" if report.aborted else "not attempted"
    chunks = [
        {
            **chunk.to_dict(),
            **results.get(chunk.chunk_id, {"status": "failed", "error": not_attempted}),
        }
        for chunk in report.plan.chunks
    ]
    failed = [chunk for chunk in chunks if chunk["status"] == "failed"]
    attempted = [chunk for chunk in chunks if chunk["status"] != "skipped"]
    values = {
        "chunks": chunks,
        "rows_written": report.rows_written,
        "summary": {
            "status": report.status,
            "aborted": report.aborted,
            "rows_written": report.rows_written,
            "chunks": len(chunks),
            "chunks_failed": len(failed),
        },
    }
    if not failed:
        return {**values, "error": None}
    error = {
        "code": "chunks_failed",
        "message": f"{len(failed)} of {len(chunks)} chunks failed; first error: {failed[0]['error']}",
    }
    if report.aborted or len(failed) == len(attempted):
        raise JobFailed(error, values)
    return {**values, "error": error}


SYNC_JOB = JobKind[SyncInputs, SyncReport](
    name="market_data_sync",
    lifecycle=SYNC_LIFECYCLE,
    load=_load,
    compute=_compute,
    store=_store,
)
sync_job_task = register_job_task(SYNC_JOB, SYNC_TASK)
