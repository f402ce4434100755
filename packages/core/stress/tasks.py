"""The five stress-test job kinds on the CPU worker's ``stress`` queue, each fanned out into parts
(Monte Carlo trial batches, sensitivity points, optimisation trials, walk-forward folds, crisis
windows) that run on every CPU worker process and are merged by the job kit.

Each kind is its domain method's ``plan``/``part``/``merge`` (``packages.domain.stress.methods``)
over the job's bars, read as the user exactly as a backtest reads them; refusals of the domain
become the job's error with a pointer into the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from packages.core.backtests.schemas import JobRequest
from packages.core.backtests.tasks import job_inputs, refused_inputs
from packages.core.errors import NotFound
from packages.core.jobs.fanout import FanOutJobKind
from packages.core.jobs.repository import job_for_worker
from packages.core.jobs.runner import JobCancelled, JobControl
from packages.core.jobs.tasks import register_job_task
from packages.core.resources import Resources
from packages.core.stress import specs
from packages.core.stress.schemas import StressKind
from packages.core.stress.service import LIFECYCLES, TASK_NAMES
from packages.domain.backtest.engine import BacktestCancelled
from packages.domain.backtest.pipeline import Backtester, BacktestInputError
from packages.domain.backtest.serialization import to_jsonable
from packages.domain.stress import methods
from packages.domain.stress.monte_carlo import TrialChunk
from packages.infra.db.models import StressJob
from packages.shared_settings.settings import StressSettings


@dataclass
class StressInputs:
    context: methods.StressContext
    parameters: dict[str, Any]
    limits: StressSettings


async def load(resources: Resources, job_id: uuid.UUID) -> StressInputs:
    async with resources.unit_of_work() as uow:
        job = await job_for_worker(uow.session, StressJob, job_id)
    if job is None:
        raise NotFound(f"No stress test with id {job_id}.")
    run = JobRequest.model_validate(job.request["run"])
    inputs = await asyncio.to_thread(job_inputs, resources.settings, job.user_id, run)
    with domain_refusals():
        backtester = Backtester(inputs.strategy, inputs.bars, inputs.assumptions)
    context = methods.StressContext(
        backtester,
        first_row=inputs.first_row,
        stop_row=inputs.bars.n_bars,
        benchmark=inputs.benchmark,
        # Parts run side by side on every worker process: one thread each.
        threads=1,
    )
    return StressInputs(context, dict(job.request["parameters"]), resources.settings.stress)


@contextlib.contextmanager
def domain_refusals() -> Iterator[None]:
    """The domain's refusals as the job's error, pointing into the request."""
    try:
        with specs.refused():
            yield
    except BacktestInputError as exc:
        raise refused_inputs(exc) from exc
    except BacktestCancelled as exc:
        raise JobCancelled from exc


def _stored(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "summary": to_jsonable({**result["summary"], "description": result["description"]}),
        "items": to_jsonable(result["items"]),
    }


def _kind(
    name: StressKind,
    plan: Callable[[StressInputs], Sequence[Mapping[str, Any]]],
    part: Callable[[StressInputs, dict[str, Any], JobControl], Any],
    merge: Callable[[StressInputs, list[Any]], Mapping[str, Any]],
) -> FanOutJobKind[StressInputs, Any, Mapping[str, Any]]:
    def guarded_plan(inputs: StressInputs) -> Sequence[Mapping[str, Any]]:
        with domain_refusals():
            return plan(inputs)

    def guarded_part(inputs: StressInputs, spec: dict[str, Any], control: JobControl) -> Any:
        control.check_cancelled()
        with domain_refusals():
            return part(inputs, spec, control)

    def guarded_merge(inputs: StressInputs, parts: list[Any]) -> Mapping[str, Any]:
        with domain_refusals():
            return merge(inputs, parts)

    kind = FanOutJobKind(
        name=name,
        lifecycle=LIFECYCLES[name],
        load=load,
        plan=guarded_plan,
        run_child=guarded_part,
        merge=guarded_merge,
        store=_stored,
    )
    register_job_task(kind, TASK_NAMES[name])
    return kind


# --- crisis windows -----------------------------------------------------------------------------
def _crisis_plan(inputs: StressInputs) -> list[dict[str, Any]]:
    market = inputs.context.backtester.strategy.market
    return methods.crisis_plan(specs.crisis_windows(market, inputs.parameters))


def _crisis_part(inputs: StressInputs, spec: dict[str, Any], control: JobControl) -> dict[str, Any]:
    return methods.crisis_part(inputs.context, spec, specs.thresholds(inputs.parameters))


CRISIS = _kind("crisis", _crisis_plan, _crisis_part, lambda inputs, parts: methods.crisis_merge(parts))


# --- Monte Carlo --------------------------------------------------------------------------------
def _monte_carlo_part(inputs: StressInputs, spec: dict[str, Any], control: JobControl) -> dict[str, Any]:
    chunk = methods.monte_carlo_part(inputs.context, specs.monte_carlo_spec(inputs.parameters), spec)
    return {
        "first_trial": chunk.first_trial,
        "block_length": int(spec["block_length"]),
        "final_returns": chunk.final_returns,
        "max_drawdowns": chunk.max_drawdowns,
        "sharpes": chunk.sharpes,
        "lowest_equity": chunk.lowest_equity,
        "paths": chunk.paths,
    }


def _monte_carlo_merge(inputs: StressInputs, parts: list[dict[str, Any]]) -> Mapping[str, Any]:
    chunks = [
        TrialChunk(
            int(p["first_trial"]),
            np.asarray(p["final_returns"]),
            np.asarray(p["max_drawdowns"]),
            np.asarray(p["sharpes"]),
            np.asarray(p["lowest_equity"]),
            np.asarray(p["paths"]),
        )
        for p in parts
    ]
    spec = specs.monte_carlo_spec(inputs.parameters)
    return methods.monte_carlo_merge(inputs.context, spec, int(parts[0]["block_length"]), chunks)


MONTE_CARLO = _kind(
    "monte_carlo",
    lambda inputs: methods.monte_carlo_plan(
        inputs.context, specs.monte_carlo_spec(inputs.parameters), inputs.limits.trials_per_part
    ),
    _monte_carlo_part,
    _monte_carlo_merge,
)


# --- sensitivity --------------------------------------------------------------------------------
def _sensitivity_part(inputs: StressInputs, spec: dict[str, Any], control: JobControl) -> dict[str, Any]:
    return {"points": spec["points"], "metrics": methods.sensitivity_part(inputs.context, spec)}


def _sensitivity_merge(inputs: StressInputs, parts: list[dict[str, Any]]) -> Mapping[str, Any]:
    return methods.sensitivity_merge(
        inputs.context,
        specs.sensitivity_spec(inputs.parameters),
        [{"points": p["points"]} for p in parts],
        [p["metrics"] for p in parts],
    )


SENSITIVITY = _kind(
    "sensitivity",
    lambda inputs: methods.sensitivity_plan(
        inputs.context, specs.sensitivity_spec(inputs.parameters), inputs.limits.points_per_part
    ),
    _sensitivity_part,
    _sensitivity_merge,
)


# --- optimisation -------------------------------------------------------------------------------
OPTIMISATION = _kind(
    "optimisation",
    lambda inputs: methods.optimisation_plan(
        inputs.context, specs.search_spec(inputs.parameters), inputs.limits.points_per_part
    ),
    lambda inputs, spec, control: methods.optimisation_part(
        inputs.context, specs.search_spec(inputs.parameters), spec
    ),
    lambda inputs, parts: methods.optimisation_merge(
        inputs.context, specs.search_spec(inputs.parameters), parts
    ),
)


# --- walk-forward -------------------------------------------------------------------------------
WALK_FORWARD = _kind(
    "walk_forward",
    lambda inputs: methods.walk_forward_plan(inputs.context, specs.walk_forward_spec(inputs.parameters)),
    lambda inputs, spec, control: methods.walk_forward_part(
        inputs.context, specs.walk_forward_spec(inputs.parameters), spec
    ),
    lambda inputs, parts: methods.walk_forward_merge(
        inputs.context, specs.walk_forward_spec(inputs.parameters), parts
    ),
)
