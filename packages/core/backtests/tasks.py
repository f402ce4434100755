"""The ``backtest.run`` job on the CPU worker: read the bars as the user, run them through the domain's
backtest pipeline (``packages.domain.backtest.pipeline.pack_backtest``), store summary and arrays;
the pipeline's refusals become the API's problems here. And the warm-up that compiles the engine's
kernels before the worker takes its first job."""

from __future__ import annotations

import asyncio
import copy
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import signals

from packages.core.backtests.repository import job_for_run
from packages.core.backtests.schemas import JobRequest
from packages.core.backtests.service import LIFECYCLE, TASK_NAME
from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.jobs.runner import JobCancelled, JobControl, JobKind
from packages.core.jobs.tasks import register_job_task
from packages.core.market_data.access import market_store
from packages.core.market_data.universe import (
    read_benchmark_close,
    read_universe,
    resolve_universe,
    to_ns,
)
from packages.core.resources import Resources
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.engine import BacktestCancelled
from packages.domain.backtest.pipeline import (
    BENCHMARK_POINTER,
    RANGE_POINTER,
    SYMBOLS_POINTER,
    Backtester,
    BacktestInputError,
    BacktestInputs,
    Benchmark,
    PackedBacktest,
    SnapshotContext,
    pack_backtest,
)
from packages.domain.market_data.bars import Market
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.compiler import CompiledStrategy, compile_strategy
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.indicators import list_indicators
from packages.domain.strategy.limits import DEFAULT_LIMITS
from packages.domain.strategy.vocabulary import DSL_VERSION
from packages.domain.stress.methods import StressContext, monte_carlo_part, monte_carlo_plan
from packages.domain.stress.monte_carlo import MonteCarloSpec
from packages.infra.market_data.packaged_data import load_packaged_datasets
from packages.shared_settings import Settings, get_settings

log = logging.getLogger("minsy.backtests")


# Where the API request sets each input the pipeline may refuse.
_REQUEST_POINTERS = {
    RANGE_POINTER: "/start",
    SYMBOLS_POINTER: "/document/universe/symbols",
    BENCHMARK_POINTER: "/benchmark",
}


def compile_document(document: dict[str, Any]) -> CompiledStrategy:
    """The job's document compiled; its problems point into the request's ``document``."""
    try:
        return compile_strategy(document)
    except StrategyValidationError as exc:
        raise ValidationFailed(
            "The strategy document is not valid.",
            errors=[FieldError(i.code.value, "/document" + i.pointer, i.message, i.hint) for i in exc.issues],
        ) from exc


def refused_inputs(exc: BacktestInputError) -> ValidationFailed:
    """The pipeline's refusal as the API's problem, pointing at the request field concerned."""
    pointer = _REQUEST_POINTERS.get(exc.pointer, "")
    return ValidationFailed(exc.message, errors=[FieldError(exc.code, pointer, exc.hint)])


def job_inputs(settings: Settings, user_id: uuid.UUID, request: JobRequest) -> BacktestInputs:
    """Everything a job computes from: the compiled document, and the bars read as the user."""
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
    benchmark = None
    if request.benchmark is not None:
        close = read_benchmark_close(
            settings, user_id, request.market, request.benchmark, request.timeframe, bars.index
        )
        benchmark = Benchmark(request.benchmark, close)
    config = settings.backtests
    return BacktestInputs(
        strategy=compiled,
        bars=bars,
        assumptions=request.assumptions,
        first_row=first_row,
        benchmark=benchmark,
        max_cells=config.max_bars_per_job,
        chart_points=config.chart_points,
        snapshots=SnapshotContext(
            context_bars=config.snapshot_context_bars, max_values=config.snapshot_max_values
        ),
    )


async def load(resources: Resources, job_id: uuid.UUID) -> BacktestInputs:
    async with resources.unit_of_work() as uow:
        job = await job_for_run(uow.session, job_id)
    if job is None:
        raise NotFound(f"No backtest with id {job_id}.")
    request = JobRequest.model_validate(job.request)
    return await asyncio.to_thread(job_inputs, resources.settings, job.user_id, request)


def compute(inputs: BacktestInputs, control: JobControl) -> PackedBacktest:
    try:
        return pack_backtest(inputs, progress=control.progress, should_cancel=control.cancelled.is_set)
    except BacktestCancelled as exc:
        raise JobCancelled from exc
    except BacktestInputError as exc:
        raise refused_inputs(exc) from exc


def store(packed: PackedBacktest) -> dict[str, Any]:
    return {"summary": packed.summary, "artifacts": packed.artifacts, "result_hash": packed.result_hash}


BACKTEST_JOB = JobKind(name="backtest", lifecycle=LIFECYCLE, load=load, compute=compute, store=store)
run_backtest = register_job_task(BACKTEST_JOB, TASK_NAME)


# --- warm-up --------------------------------------------------------------------------------------
# numba compiles a kernel the first time it meets a combination of argument types (dtype, dimensions,
# layout, read-only or not): about 25 s of one core for everything a job runs when numba's on-disk
# cache is empty, under 2 s to load it from that cache. The CPU worker pays this once, in its parent
# process at start, before it answers pings or takes a job; the pool processes are forked from it with
# every kernel in memory and never compile or load one.
#
# The warm-up runs real jobs through the job's own code (``job_inputs`` then ``compute``: store reads
# and resampling, plan building, simulation, metrics, snapshots), so the kernels meet the argument
# types a job passes. The bars are the real price files bundled in installed packages (the
# ones the IO worker's cold start stores), written to a scratch store that is deleted afterwards: no
# stored data is needed, and on a fresh stack there is none yet (the IO worker loads it after it starts).

_WARM_UP_USER = uuid.UUID(int=0)
_RANGE_START = datetime(2005, 1, 3, tzinfo=UTC)
# No packaged prices are crypto, whose 24/7 calendar the store resamples in fixed steps, a path of its
# own. EURUSD's real hourly prices are therefore stored as crypto as well, in the scratch store only.
_CRYPTO_STAND_IN = ("forex", "EURUSD")


@dataclass(frozen=True)
class _WarmUpJob:
    """One backtest of the warm-up: a document over the scratch store, requested as a user would."""

    document: dict[str, Any]
    start: datetime | None = None
    benchmark: str | None = None

    def symbols(self) -> list[tuple[str, str]]:
        """(market, symbol) of every dataset the job reads."""
        market = str(self.document["universe"]["market"])
        names = [*self.document["universe"]["symbols"], *([self.benchmark] if self.benchmark else [])]
        return [(market, str(name)) for name in names]

    def request(self) -> JobRequest:
        universe = self.document["universe"]
        return JobRequest(
            document=self.document,
            document_hash=document_hash(self.document),
            market=universe["market"],
            symbols=universe["symbols"],
            timeframe=self.document["timeframe"],
            start=self.start,
            end=None,
            assumptions=ExecutionAssumptions(),
            benchmark=self.benchmark,
            estimated_bars=0,
        )


def _catalogue_documents() -> list[dict[str, Any]]:
    """Documents that between them compute every catalogue indicator (with its default parameters).

    Factors are only computed when a condition reads them, so each is a leaf of the entry condition
    (an indicator computes all its outputs at once, so reading the first is enough).
    """
    indicators = list_indicators()
    per_document = DEFAULT_LIMITS.max_factors
    documents = []
    for first in range(0, len(indicators), per_document):
        chunk = indicators[first : first + per_document]
        leaves = [
            {"op": "gt", "left": {"factor": f"f{i}", "output": spec.outputs[0].name}, "right": 0}
            for i, spec in enumerate(chunk)
        ]
        documents.append(
            {
                "dsl_version": DSL_VERSION,
                "metadata": {"name": f"Kernel warm-up: indicators {first + 1}-{first + len(chunk)}"},
                "universe": {"market": "us_stocks", "symbols": ["AAPL"]},
                "timeframe": "1d",
                "factors": [{"id": f"f{i}", "indicator": spec.name} for i, spec in enumerate(chunk)],
                "trade": {
                    "long": {
                        "entry": {"condition": {"op": "any", "conditions": leaves}},
                        "exits": [{"name": "after_five_bars", "type": "time_exit", "bars": 5}],
                        "sizing": {"mode": "percent_equity", "percent": 10},
                    }
                },
            }
        )
    return documents


def _warm_up_jobs(available: set[tuple[str, str]]) -> list[_WarmUpJob]:
    """The warm-up's jobs that the datasets ``available`` ((market, symbol)) can serve.

    Every example strategy (between them: market, limit and stop orders, long and short, every exit
    and sizing mode, rotation, several symbols, a higher-timeframe factor, the custom indicators);
    every catalogue indicator; a range that reads history before it, with a benchmark; and timeframes
    coarser than stored, which the store resamples (session calendars and the 24/7 one). A job whose
    data is missing (the package shipping it is not installed) is left out.
    """
    trend = get_example("sma_crossover_trend")
    hourly = get_example("zscore_reversion_eurusd")
    crypto_universe = {"market": "crypto", "symbols": [_CRYPTO_STAND_IN[1]]}
    jobs = [_WarmUpJob(get_example(slug)) for slug in example_slugs()]
    jobs += [_WarmUpJob(document) for document in _catalogue_documents()]
    jobs += [
        _WarmUpJob(trend, start=_RANGE_START, benchmark="SPX"),
        _WarmUpJob({**trend, "timeframe": "1w"}),
        _WarmUpJob({**hourly, "timeframe": "4h"}),
        _WarmUpJob({**hourly, "universe": crypto_universe, "timeframe": "4h"}),
    ]
    return [job for job in jobs if set(job.symbols()) <= available]


def _scratch_settings(settings: Settings, data_dir: Path) -> Settings:
    """``settings`` with the market-data store in ``data_dir`` instead of the real one."""
    scratch = copy.copy(settings)
    scratch.market_data = settings.market_data.model_copy(update={"data_dir": data_dir})
    return scratch


def warm_up(settings: Settings) -> float:
    """Compile (or load from numba's cache) every kernel a backtest job runs; returns the seconds taken.

    Called in the CPU worker's parent process: the pool's children are forked from it and start with
    the kernels in memory. Needs no stored market data.
    """
    started = time.perf_counter()
    settings.runtime.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="backtest-warm-up-", dir=settings.runtime.data_dir) as folder:
        scratch = _scratch_settings(settings, Path(folder))
        # (The scratch store object stays in market_store's per-folder cache: a few resampled series.)
        scratch_store = market_store(scratch)
        available: set[tuple[str, str]] = set()
        for dataset in load_packaged_datasets():
            markets = [dataset.market]
            if (dataset.market.value, dataset.symbol) == _CRYPTO_STAND_IN:
                markets.append(Market.CRYPTO)
            for market in markets:
                scratch_store.write(market, dataset.symbol, dataset.timeframe, dataset.bars)
                available.add((market.value, dataset.symbol))
        jobs = _warm_up_jobs(available)
        for job in jobs:
            compute(job_inputs(scratch, _WARM_UP_USER, job.request()), JobControl())
        if jobs:
            _warm_up_stress(job_inputs(scratch, _WARM_UP_USER, jobs[0].request()))
    return time.perf_counter() - started


def _warm_up_stress(inputs: BacktestInputs) -> None:
    """The stress tests' own kernels too (the CPU worker runs their parts): Monte Carlo trials and
    the batch (sweep) mode every scan, optimisation and walk-forward fold uses."""
    context = StressContext(
        Backtester(inputs.strategy, inputs.bars, inputs.assumptions), inputs.first_row, inputs.bars.n_bars
    )
    # No block length: the automatic choice imports arch (seconds) here, before the pool forks.
    spec = MonteCarloSpec(method="block_bootstrap", trials=20, seed=0)
    for part in monte_carlo_plan(context, spec, chunk_size=20):
        monte_carlo_part(context, spec, part)
    context.sweep_metrics([{}, {}], context.first_row, context.stop_row)


@signals.worker_init.connect
def _warm_up_worker(sender: Any = None, **_: Any) -> None:
    """Warm up in the CPU worker's parent (before the pool forks); other workers skip it."""
    queues = getattr(getattr(getattr(sender, "app", None), "amqp", None), "queues", None)
    if "backtest" not in set(getattr(queues, "consume_from", None) or {}):
        return
    try:
        seconds = warm_up(get_settings())
    except Exception:
        log.exception("backtest warm-up failed; the first job compiles the kernels instead")
        return
    log.info("backtest kernels warmed up", extra={"seconds": round(seconds, 3)})
