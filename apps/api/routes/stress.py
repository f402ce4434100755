from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep, idempotency_header
from apps.api.problems import problem_responses
from packages.core.backtests.schemas import StrategyRunRequest
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.schemas import CancelOut, JobStatus
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.stress.schemas import (
    CrisisRequest,
    CrisisWindowOut,
    MonteCarloRequest,
    OptimisationRequest,
    ParetoOut,
    SensitivityRequest,
    StressItems,
    StressKind,
    StressList,
    StressOut,
    WalkForwardRequest,
)
from packages.core.stress.service import StressService, crisis_windows
from packages.core.uow import UnitOfWork

router = APIRouter(prefix="/stress-tests", tags=["stress tests"])

READ = problem_responses(401, 404, 422)
RESULT = problem_responses(401, 404, 409, 422)
CREATED = {
    200: {"model": StressOut, "description": "The stress test this Idempotency-Key already created"},
    **problem_responses(401, 413, 422, 429),
}
IdempotencyKeyHeader = Annotated[
    str | None,
    idempotency_header(
        "Optional, recommended: any unique string per intended test. Resending the same key and body "
        "returns the same test instead of starting a second one."
    ),
]
_COMMON = (
    "Returns the job at once (201; 200 with the same job for a repeated Idempotency-Key and body; 422 "
    "for the key with another body; 429 with Retry-After when too many of your stress tests are queued "
    "or running). Poll GET /stress-tests/{id}; its parts run on every CPU worker."
)


async def _create(
    kind: StressKind,
    body: StrategyRunRequest,
    response: Response,
    principal: Principal,
    uow: UnitOfWork,
    resources: Resources,
    idempotency_key: str | None,
) -> StressOut:
    async with uow:
        job, created = await StressService(uow, principal, resources).create(
            kind, body, IdempotencyKey.header(idempotency_key)
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return job


@router.get(
    "/crisis-windows",
    operation_id="stress_crisis_windows",
    summary="The named crisis windows and the markets each applies to",
    responses=problem_responses(401),
)
async def list_crisis_windows(principal: PrincipalDep) -> list[CrisisWindowOut]:
    return crisis_windows()


@router.post(
    "/crisis",
    status_code=status.HTTP_201_CREATED,
    operation_id="stress_create_crisis",
    summary="Replay the strategy over named (and custom) crisis windows",
    description="Per window: return, max drawdown, trades, Sharpe, benchmark return, pass or fail; an aggregate score. "
    + _COMMON,
    responses=CREATED,
)
async def create_crisis(
    body: CrisisRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StressOut:
    return await _create("crisis", body, response, principal, uow, resources, idempotency_key)


@router.post(
    "/monte-carlo",
    status_code=status.HTTP_201_CREATED,
    operation_id="stress_create_monte_carlo",
    summary="Resample the backtest's returns or trades: distributions, ruin, VaR/CVaR, fan chart",
    description=_COMMON,
    responses=CREATED,
)
async def create_monte_carlo(
    body: MonteCarloRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StressOut:
    return await _create("monte_carlo", body, response, principal, uow, resources, idempotency_key)


@router.post(
    "/sensitivity",
    status_code=status.HTTP_201_CREATED,
    operation_id="stress_create_sensitivity",
    summary="Scan each tunable parameter around its value: response curves, stability, heatmaps",
    description=_COMMON,
    responses=CREATED,
)
async def create_sensitivity(
    body: SensitivityRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StressOut:
    return await _create("sensitivity", body, response, principal, uow, resources, idempotency_key)


@router.post(
    "/optimisation",
    status_code=status.HTTP_201_CREATED,
    operation_id="stress_create_optimisation",
    summary="Grid, random or TPE search of tunable parameters; Pareto front; winners as patches",
    description=_COMMON,
    responses=CREATED,
)
async def create_optimisation(
    body: OptimisationRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StressOut:
    return await _create("optimisation", body, response, principal, uow, resources, idempotency_key)


@router.post(
    "/walk-forward",
    status_code=status.HTTP_201_CREATED,
    operation_id="stress_create_walk_forward",
    summary="Optimise in-sample, judge out-of-sample, fold after fold: efficiency and stitched equity",
    description=_COMMON,
    responses=CREATED,
)
async def create_walk_forward(
    body: WalkForwardRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> StressOut:
    return await _create("walk_forward", body, response, principal, uow, resources, idempotency_key)


@router.get("", operation_id="stress_list", summary="Your stress tests, newest first", responses=READ)
async def list_stress_tests(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
) -> StressList:
    async with uow:
        return await StressService(uow, principal, resources).list(
            limit=limit, cursor=cursor, status=status_filter
        )


@router.get(
    "/{stress_test_id}",
    operation_id="stress_get",
    summary="Status, progress and (once done) the report and its plain-language description",
    responses=READ,
)
async def get_stress_test(
    stress_test_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> StressOut:
    async with uow:
        return await StressService(uow, principal, resources).get(stress_test_id)


@router.post(
    "/{stress_test_id}/cancel",
    operation_id="stress_cancel",
    summary="Cancel a queued or running stress test and every part of it",
    responses=READ,
)
async def cancel_stress_test(
    stress_test_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> CancelOut:
    async with uow:
        return await StressService(uow, principal, resources).cancel(stress_test_id)


@router.get(
    "/{stress_test_id}/items",
    operation_id="stress_items",
    summary="Windows, trials, points or folds of a finished test, in report order (cursor pages)",
    responses=RESULT,
)
async def stress_items(
    stress_test_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> StressItems:
    async with uow:
        return await StressService(uow, principal, resources).items(
            stress_test_id, limit=limit, cursor=cursor
        )


@router.get(
    "/{stress_test_id}/pareto",
    operation_id="stress_pareto",
    summary="An optimisation's Pareto front: trials no feasible trial beats on every objective, with patches",
    responses=RESULT,
)
async def stress_pareto(
    stress_test_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> ParetoOut:
    async with uow:
        return await StressService(uow, principal, resources).pareto(stress_test_id)
