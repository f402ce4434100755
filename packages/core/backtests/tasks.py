"""The ``backtest.run`` job on the CPU worker: load bars, simulate, store summary and arrays."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from celery import signals

from packages.core.backtests.compute import (
    ComputedResult,
    RunCancelled,
    RunInputs,
    compile_document,
    run_backtest_job,
)
from packages.core.backtests.market_bars import (
    read_benchmark_close,
    read_universe,
    resolve_universe,
    to_ns,
)
from packages.core.backtests.repository import job_for_run
from packages.core.backtests.schemas import JobRequest
from packages.core.backtests.service import LIFECYCLE, TASK_NAME
from packages.core.errors import NotFound
from packages.core.jobs.runner import JobCancelled, JobControl, JobKind
from packages.core.jobs.tasks import register_job_task
from packages.core.market_data.access import market_store
from packages.core.resources import Resources
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.strategy.examples import get_example
from packages.infra.market_data.store import PUBLIC_NAMESPACE
from packages.shared_settings import Settings, get_settings

log = logging.getLogger("minsy.backtests")


def _inputs(settings: Settings, user_id: uuid.UUID, request: JobRequest) -> RunInputs:
    compiled = compile_document(request.document)
    source = resolve_universe(
        settings,
        user_id,
        request.market,
        request.symbols,
        request.timeframe,
        symbol_pointer=lambda i: f"/document/universe/symbols/{i}",
        timeframe_pointer="/document/timeframe",
    )
    bars, first_row = read_universe(source, to_ns(request.start), to_ns(request.end), compiled.warmup_bars)
    benchmark_close = None
    if request.benchmark is not None:
        benchmark_close = read_benchmark_close(
            settings, user_id, request.market, request.benchmark, request.timeframe, bars.index
        )
    config = settings.backtests
    return RunInputs(
        compiled=compiled,
        assumptions=request.assumptions,
        bars=bars,
        first_row=first_row,
        benchmark_symbol=request.benchmark,
        benchmark_close=benchmark_close,
        max_cells=config.max_bars_per_job,
        context_bars=config.snapshot_context_bars,
        snapshot_budget=config.snapshot_max_values,
        chart_points=config.chart_points,
    )


async def load(resources: Resources, job_id: uuid.UUID) -> RunInputs:
    async with resources.unit_of_work() as uow:
        job = await job_for_run(uow.session, job_id)
    if job is None:
        raise NotFound(f"No backtest with id {job_id}.")
    request = JobRequest.model_validate(job.request)
    return await asyncio.to_thread(_inputs, resources.settings, job.user_id, request)


def compute(inputs: RunInputs, control: JobControl) -> ComputedResult:
    try:
        return run_backtest_job(inputs, control.progress, control.cancelled.is_set)
    except RunCancelled as exc:
        raise JobCancelled from exc


def store(result: ComputedResult) -> dict[str, Any]:
    return {"summary": result.summary, "artifacts": result.artifacts, "result_hash": result.result_hash}


BACKTEST_JOB = JobKind(name="backtest", lifecycle=LIFECYCLE, load=load, compute=compute, store=store)
run_backtest = register_job_task(BACKTEST_JOB, TASK_NAME)


def warm_up(settings: Settings) -> float | None:
    """Run one small backtest on stored data so the compiled kernels are loaded before any job.

    Called in the CPU worker's parent process: the pool's children are forked from it and start
    with the kernels in memory. Returns the seconds it took, or None when no data is stored yet.
    """
    store_ = market_store(settings)
    datasets = [info for info in store_.list_datasets(namespace=PUBLIC_NAMESPACE) if info.rows >= 100]
    if not datasets:
        return None
    dataset = datasets[0]
    document = get_example("sma_crossover_trend")
    document["universe"] = {"market": dataset.market.value, "symbols": [dataset.symbol]}
    document["timeframe"] = dataset.timeframe.value
    started = time.perf_counter()
    compiled = compile_document(document)
    source = resolve_universe(
        settings,
        uuid.UUID(int=0),
        dataset.market.value,
        [dataset.symbol],
        dataset.timeframe.value,
        symbol_pointer=lambda _: "/symbol",
        timeframe_pointer="/timeframe",
    )
    bars, first_row = read_universe(source, None, None, compiled.warmup_bars)
    config = settings.backtests
    run_backtest_job(
        RunInputs(
            compiled=compiled,
            assumptions=ExecutionAssumptions(),
            bars=bars,
            first_row=first_row,
            benchmark_symbol=None,
            benchmark_close=None,
            max_cells=config.max_bars_per_job,
            context_bars=config.snapshot_context_bars,
            snapshot_budget=config.snapshot_max_values,
            chart_points=config.chart_points,
        ),
        lambda fraction, stage: None,
        lambda: False,
    )
    return time.perf_counter() - started


@signals.worker_init.connect
def _warm_up_worker(sender: Any = None, **_: Any) -> None:
    """Warm up in the CPU worker's parent (before the pool forks); other workers skip it."""
    queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    if "backtest" not in set(getattr(queues, "consume_from", None) or {}):
        return
    try:
        seconds = warm_up(get_settings())
    except Exception:
        log.exception("backtest warm-up failed; the first job loads the kernels instead")
        return
    log.info("backtest kernels warmed up", extra={"seconds": seconds})
