"""What a pool process of a freshly started CPU worker does first: real backtest jobs, timed, while
watching whether any numba kernel has to be compiled (or loaded) for them.

Imported by a fresh interpreter that plays the worker (``tests/support/forking.py``): its parent runs
the warm-up, a forked child calls ``first_jobs``.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from numba.core.dispatcher import Dispatcher

from packages.core.backtests.schemas import JobRequest
from packages.core.backtests.tasks import compute, job_inputs
from packages.core.jobs.runner import JobControl
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.indicators import list_indicators
from packages.shared_settings import reload_settings
from tests.packages.core.backtests.helpers import minute_document

# A range inside the stored data (so history before it is read for warm-up) and a benchmark, per market.
_RANGES = {
    "us_stocks": (datetime(2010, 1, 1, tzinfo=UTC), datetime(2012, 1, 1, tzinfo=UTC), "SPX"),
    "forex": (datetime(2017, 9, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC), "EURUSD"),
}
_COARSER = {"1d": "1w", "1h": "4h"}
_MAX_FACTORS = 60


def _request(
    document: dict[str, Any],
    start: datetime | None = None,
    end: datetime | None = None,
    benchmark: str | None = None,
) -> JobRequest:
    return JobRequest(
        document=document,
        document_hash=document_hash(document),
        market=document["universe"]["market"],
        symbols=document["universe"]["symbols"],
        timeframe=document["timeframe"],
        start=start,
        end=end,
        assumptions=ExecutionAssumptions(),
        benchmark=benchmark,
        estimated_bars=0,
    )


def _every_indicator(symbols: list[str]) -> list[dict[str, Any]]:
    """Documents reading every catalogue indicator (default parameters) on daily stocks."""
    indicators = list_indicators()
    documents = []
    for first in range(0, len(indicators), _MAX_FACTORS):
        chunk = indicators[first : first + _MAX_FACTORS]
        leaves = [
            {"op": "lt", "left": {"factor": spec.name, "output": spec.outputs[-1].name}, "right": 1}
            for spec in chunk
        ]
        documents.append(
            {
                "dsl_version": "1.0.0",
                "metadata": {"name": f"every indicator, part {first // _MAX_FACTORS + 1}"},
                "universe": {"market": "us_stocks", "symbols": symbols},
                "timeframe": "1d",
                "factors": [{"id": spec.name, "indicator": spec.name} for spec in chunk],
                "trade": {
                    "short": {
                        "entry": {"condition": {"op": "any", "conditions": leaves}},
                        "exits": [
                            {"name": "stop", "type": "stop_loss", "distance": {"unit": "percent", "value": 3}}
                        ],
                        "sizing": {"mode": "fixed_cash", "cash": 5000},
                    }
                },
            }
        )
    return documents


def job_requests(minute_symbol: str) -> list[JobRequest]:
    """Jobs as users send them: every example over all its data, over a range with a benchmark and at
    a coarser timeframe than stored (resampled by the store); every indicator on three symbols; and a
    private import of one-minute crypto bars at its own and at coarser timeframes."""
    requests = []
    for slug in example_slugs():
        document = get_example(slug)
        start, end, benchmark = _RANGES[document["universe"]["market"]]
        requests += [
            _request(document),
            _request(document, start, end, benchmark),
            _request({**document, "timeframe": _COARSER[document["timeframe"]]}),
        ]
    requests += [_request(document) for document in _every_indicator(["AAPL", "MSFT", "IBM"])]
    minutes = minute_document(minute_symbol)
    requests += [_request({**minutes, "timeframe": timeframe}) for timeframe in ("1m", "5m", "1h")]
    return requests


def kernel_specialisations() -> dict[str, set[str]]:
    """Every numba kernel of the code base loaded in this process, with the signatures it holds."""
    found: dict[str, set[str]] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("packages."):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher):
                key = f"{value.py_func.__module__}.{value.py_func.__qualname__}"
                found[key] = {str(signature) for signature in value.overloads}
    return found


def first_jobs(
    data_dir: str, user_id: str, minute_symbol: str, warm_up_seconds: float | None
) -> dict[str, Any]:
    """Run a first backtest (timed), then every job of ``job_requests``, as ``user_id`` on the store in
    ``data_dir``; report the kernel signatures that had to be added for them."""
    os.environ["MINSY_DATA_DIR"] = data_dir
    settings = reload_settings()
    user = uuid.UUID(user_id)
    before = kernel_specialisations()

    def run(request: JobRequest) -> None:
        compute(job_inputs(settings, user, request), JobControl())

    started = time.perf_counter()
    first = get_example("ema_crossover_long_short")
    run(_request(first, datetime(2011, 1, 1, tzinfo=UTC), datetime(2012, 1, 1, tzinfo=UTC)))
    first_job_seconds = time.perf_counter() - started
    requests = job_requests(minute_symbol)
    for request in requests:
        run(request)
    stress_parts = run_stress_parts(settings, user, requests[0])
    after = kernel_specialisations()
    added = {
        name: sorted(signatures - before.get(name, set()))
        for name, signatures in sorted(after.items())
        if signatures - before.get(name, set())
    }
    return {
        "warm_up_seconds": warm_up_seconds,
        "first_job_seconds": first_job_seconds,
        "jobs": len(requests) + 1,
        "stress_parts": stress_parts,
        "added_specialisations": added,
    }


def run_stress_parts(settings: Any, user: uuid.UUID, request: JobRequest) -> int:
    """Every stress method's parts over one job's bars, as the CPU worker's pool runs them."""
    from packages.domain.backtest.pipeline import Backtester
    from packages.domain.stress import crisis, methods, optimisation, sensitivity, walk_forward
    from packages.domain.stress.monte_carlo import METHODS, MonteCarloSpec

    inputs = job_inputs(settings, user, request)
    context = methods.StressContext(
        Backtester(inputs.strategy, inputs.bars, inputs.assumptions),
        inputs.first_row,
        inputs.bars.n_bars,
        threads=1,
    )
    parts = 0
    for method in METHODS:
        spec = MonteCarloSpec(method=method, trials=50, seed=1)  # type: ignore[arg-type]
        for part in methods.monte_carlo_plan(context, spec, chunk_size=25):
            methods.monte_carlo_part(context, spec, part)
            parts += 1
    scan = sensitivity.SensitivitySpec(steps=1)
    for part in methods.sensitivity_plan(context, scan, chunk_size=5):
        methods.sensitivity_part(context, part)
        parts += 1
    pointer = next(iter(context.space.parameters))
    value = context.space.parameters[pointer].value
    search = optimisation.OptimisationSpec(
        method="grid",
        dimensions=(optimisation.Dimension(pointer, value, value + 2, 1),),
        objectives=(optimisation.Objective("sharpe"),),
    )
    for part in methods.optimisation_plan(context, search, chunk_size=2):
        methods.optimisation_part(context, search, part)
        parts += 1
    for part in methods.walk_forward_plan(
        context, walk_forward.WalkForwardSpec(optimisation=search, folds=2)
    ):
        methods.walk_forward_part(context, walk_forward.WalkForwardSpec(optimisation=search, folds=2), part)
        parts += 1
    for part in methods.crisis_plan(crisis.windows_for(inputs.strategy.market)):
        methods.crisis_part(context, part, crisis.Thresholds())
        parts += 1
    return parts
