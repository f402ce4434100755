"""Stress-test tools: crisis windows, Monte Carlo, parameter sensitivity, optimisation and walk-forward
validation, each a job on the CPU workers; follow it, read its plain-language description, its items
and (optimisations) its Pareto front."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from apps.mcp.auth import principal_of
from apps.mcp.domains.common import add_capabilities_tool, validated
from apps.mcp.registry import domain_errors, new_domain_server
from packages.core.backtests.schemas import BenchmarkSymbol, StrategyRunRequest
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.schemas import CancelOut, JobStatus
from packages.core.resources import Resources
from packages.core.strategies.schemas import MAX_VERSION
from packages.core.stress.schemas import (
    REQUEST_MODELS,
    Constraints,
    CrisisThresholds,
    CrisisWindowOut,
    CustomWindow,
    Dimension,
    Objective,
    ParetoOut,
    ResponseMetric,
    SearchSpec,
    StressItems,
    StressKind,
    StressList,
    StressOut,
)
from packages.core.stress.service import StressService, crisis_windows
from packages.domain.backtest.assumptions import ExecutionAssumptions

SUMMARY = (
    "Stress-test a strategy before trusting it: crisis windows (how it did in named market crises), "
    "Monte Carlo (how its result could have turned out), parameter sensitivity (how much it leans on "
    "exact values), optimisation (better values, as patches) and walk-forward validation (whether an "
    "optimised edge survives on data the optimiser never saw). Each runs as a job: create, then poll "
    "get_stress_test until it succeeds, and read its description aloud."
)
READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
STARTS_JOB = ToolAnnotations(
    readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
)

StressTestId = Annotated[
    uuid.UUID, Field(description="A stress test id from a create_* tool or list_stress_tests.")
]
StrategyId = Annotated[uuid.UUID | None, Field(description="A saved strategy (or give `document`).")]
Version = Annotated[
    int | None, Field(ge=1, le=MAX_VERSION, description="Its version; default the current one.")
]
Document = Annotated[
    dict[str, Any] | None, Field(description="An unsaved strategy document instead of strategy_id.")
]
Start = Annotated[
    str | None, Field(max_length=40, description="ISO date or time, UTC; default: first stored bar.")
]
End = Annotated[
    str | None, Field(max_length=40, description="ISO date or time, UTC, exclusive; default: all data.")
]
Assumptions = Annotated[
    ExecutionAssumptions | None, Field(description="Fees, slippage, cash...; conservative defaults.")
]
Key = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Pass the same key when retrying so a retry starts no second job.",
    ),
]


async def _create(
    resources: Resources, ctx: Context, kind: StressKind, key: str | None, **fields: Any
) -> StressOut:
    principal = principal_of(ctx)
    body: StrategyRunRequest = validated(REQUEST_MODELS[kind], kind.replace("_", " "), **fields)
    async with resources.unit_of_work() as uow:
        job, _ = await StressService(uow, principal, resources).create(
            kind, body, IdempotencyKey.argument(key)
        )
    return job


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "stress", SUMMARY)
    add_capabilities_tool(server, "stress", SUMMARY)

    @server.tool(
        description=(
            "The named crisis windows (id, dates, markets, what happened), for create_crisis_test's "
            "`windows`. Stored data must cover a window for it to run."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def list_crisis_windows(ctx: Context) -> list[CrisisWindowOut]:
        principal_of(ctx)
        return crisis_windows()

    @server.tool(
        description=(
            "Replay a strategy over named crisis windows (all that apply to its market unless `windows` "
            "names some) and custom ones; per window return, max drawdown, trades, Sharpe, benchmark "
            "return and pass/fail against `thresholds`; an aggregate score. A window without stored data "
            "is reported as no_data with the coverage it needs."
        ),
        annotations=STARTS_JOB,
    )
    @domain_errors
    async def create_crisis_test(
        ctx: Context,
        strategy_id: StrategyId = None,
        version: Version = None,
        document: Document = None,
        windows: Annotated[
            list[str] | None, Field(max_length=40, description="Window ids; default all.")
        ] = None,
        custom_windows: Annotated[list[CustomWindow] | None, Field(max_length=20)] = None,
        thresholds: CrisisThresholds | None = None,
        assumptions: Assumptions = None,
        benchmark: Annotated[
            BenchmarkSymbol | None,
            Field(description="e.g. 'SPX'; default: buy and hold of the strategy's symbols."),
        ] = None,
        idempotency_key: Key = None,
    ) -> StressOut:
        return await _create(
            resources, ctx, "crisis", idempotency_key, strategy_id=strategy_id, version=version,
            document=document, windows=windows, custom_windows=custom_windows, thresholds=thresholds,
            assumptions=assumptions, benchmark=benchmark,
        )  # fmt: skip

    @server.tool(
        description=(
            "Monte Carlo of a strategy's backtest over [start, end): block_bootstrap (default; keeps "
            "volatility clusters), iid_bootstrap, trade_shuffle (same final return, other orders) or "
            "trade_resample; `trials` seeded trials. Reports percentiles and confidence intervals of "
            "final return, max drawdown and Sharpe, probability of ruin, VaR/CVaR and fan-chart paths."
        ),
        annotations=STARTS_JOB,
    )
    @domain_errors
    async def create_monte_carlo(
        ctx: Context,
        strategy_id: StrategyId = None,
        version: Version = None,
        document: Document = None,
        start: Start = None,
        end: End = None,
        method: Literal[
            "iid_bootstrap", "block_bootstrap", "trade_shuffle", "trade_resample"
        ] = "block_bootstrap",
        trials: Annotated[int, Field(ge=10, le=1_000_000)] = 1000,
        seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0,
        block_length: Annotated[
            int | None,
            Field(ge=1, le=10_000, description="block_bootstrap only; default chosen from the data."),
        ] = None,
        ruin_threshold: Annotated[
            float, Field(gt=-1.0, lt=0.0, description="e.g. -0.5: equity half gone.")
        ] = -0.5,
        confidence: Annotated[float, Field(ge=0.5, le=0.999)] = 0.95,
        assumptions: Assumptions = None,
        idempotency_key: Key = None,
    ) -> StressOut:
        return await _create(
            resources, ctx, "monte_carlo", idempotency_key, strategy_id=strategy_id, version=version,
            document=document, start=start, end=end, method=method, trials=trials, seed=seed,
            block_length=block_length, ruin_threshold=ruin_threshold, confidence=confidence,
            assumptions=assumptions,
        )  # fmt: skip

    @server.tool(
        description=(
            "Parameter sensitivity: move each tunable parameter (or `parameters`, pointers from the "
            "strategy domain's get_tunable_parameters) by up to ±span in `steps` steps per side, others "
            "fixed; `pairs` also get 2-D heatmaps. Reports response curves, a 0-1 stability score per "
            "parameter for `metric` and the most fragile parameters."
        ),
        annotations=STARTS_JOB,
    )
    @domain_errors
    async def create_sensitivity_scan(
        ctx: Context,
        strategy_id: StrategyId = None,
        version: Version = None,
        document: Document = None,
        start: Start = None,
        end: End = None,
        parameters: Annotated[list[str] | None, Field(max_length=50)] = None,
        span: Annotated[float, Field(gt=0.0, le=1.0, description="0.2 = ±20%.")] = 0.2,
        steps: Annotated[int, Field(ge=1, le=20)] = 4,
        pairs: Annotated[list[tuple[str, str]] | None, Field(max_length=3)] = None,
        metric: ResponseMetric = "sharpe",
        assumptions: Assumptions = None,
        idempotency_key: Key = None,
    ) -> StressOut:
        return await _create(
            resources, ctx, "sensitivity", idempotency_key, strategy_id=strategy_id, version=version,
            document=document, start=start, end=end, parameters=parameters, span=span, steps=steps,
            pairs=pairs, metric=metric, assumptions=assumptions,
        )  # fmt: skip

    @server.tool(
        description=(
            "Optimise tunable parameters over `dimensions` (pointer, low, high, optional step) by grid, "
            "random or tpe (Optuna) within `budget` trials; one or more `objectives` (metric + direction), "
            "`constraints` (max_drawdown, min_trades, min_return). Winners come back as RFC 6902 patches: "
            "apply one with the strategy domain's patch_strategy to keep it as a new version."
        ),
        annotations=STARTS_JOB,
    )
    @domain_errors
    async def create_optimisation(
        ctx: Context,
        dimensions: Annotated[list[Dimension], Field(min_length=1, max_length=8)],
        strategy_id: StrategyId = None,
        version: Version = None,
        document: Document = None,
        start: Start = None,
        end: End = None,
        method: Literal["grid", "random", "tpe"] = "grid",
        objectives: Annotated[
            list[Objective] | None, Field(max_length=3, description="Default: maximize sharpe.")
        ] = None,
        constraints: Constraints | None = None,
        budget: Annotated[int, Field(ge=1, le=100_000)] = 100,
        seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0,
        grid_points: Annotated[int, Field(ge=2, le=100)] = 5,
        assumptions: Assumptions = None,
        idempotency_key: Key = None,
    ) -> StressOut:
        return await _create(
            resources, ctx, "optimisation", idempotency_key, strategy_id=strategy_id, version=version,
            document=document, start=start, end=end, method=method, dimensions=dimensions,
            objectives=objectives, constraints=constraints, budget=budget, seed=seed,
            grid_points=grid_points, assumptions=assumptions,
        )  # fmt: skip

    @server.tool(
        description=(
            "Walk-forward validation: split [start, end) into `folds` rolling or anchored in-sample / "
            "out-of-sample windows (optional purge gap), optimise on each in-sample window with "
            "`optimisation` (as create_optimisation), evaluate the winner out of sample. Reports "
            "walk-forward efficiency (OOS/IS), stitched out-of-sample equity, parameter stability and "
            "whether out-of-sample performance collapsed."
        ),
        annotations=STARTS_JOB,
    )
    @domain_errors
    async def create_walk_forward(
        ctx: Context,
        optimisation: SearchSpec,
        strategy_id: StrategyId = None,
        version: Version = None,
        document: Document = None,
        start: Start = None,
        end: End = None,
        folds: Annotated[int, Field(ge=2, le=100)] = 5,
        mode: Literal["rolling", "anchored"] = "rolling",
        in_sample_bars: Annotated[int | None, Field(ge=20, le=10_000_000)] = None,
        out_of_sample_bars: Annotated[int | None, Field(ge=20, le=10_000_000)] = None,
        purge_bars: Annotated[int, Field(ge=0, le=100_000)] = 0,
        assumptions: Assumptions = None,
        idempotency_key: Key = None,
    ) -> StressOut:
        return await _create(
            resources, ctx, "walk_forward", idempotency_key, strategy_id=strategy_id, version=version,
            document=document, start=start, end=end, optimisation=optimisation, folds=folds, mode=mode,
            in_sample_bars=in_sample_bars, out_of_sample_bars=out_of_sample_bars, purge_bars=purge_bars,
            assumptions=assumptions,
        )  # fmt: skip

    @server.tool(
        description=(
            "A stress test's status and progress (its parts run on every CPU worker); once succeeded, "
            "`description` says the result in plain words and `summary` holds the report."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_stress_test(ctx: Context, stress_test_id: StressTestId) -> StressOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await StressService(uow, principal, resources).get(stress_test_id)

    @server.tool(
        description=(
            "A page of a succeeded stress test's items in report order: crisis windows, Monte Carlo "
            "trials, sensitivity points, optimisation trials or walk-forward folds. Pass next_cursor on."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_stress_items(
        ctx: Context,
        stress_test_id: StressTestId,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(max_length=200)] = None,
    ) -> StressItems:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await StressService(uow, principal, resources).items(
                stress_test_id, limit=limit, cursor=cursor
            )

    @server.tool(
        description=(
            "An optimisation's Pareto front: the trials no feasible trial beats on every objective, each "
            "with its values, metrics and the patch that applies it."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_pareto_front(ctx: Context, stress_test_id: StressTestId) -> ParetoOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await StressService(uow, principal, resources).pareto(stress_test_id)

    @server.tool(
        description="Cancel a queued or running stress test and all its parts. A finished one is left unchanged.",
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False
        ),
    )
    @domain_errors
    async def cancel_stress_test(ctx: Context, stress_test_id: StressTestId) -> CancelOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await StressService(uow, principal, resources).cancel(stress_test_id)

    @server.tool(
        description="Your stress tests, newest first (optionally one status).", annotations=READ_ONLY
    )
    @domain_errors
    async def list_stress_tests(
        ctx: Context,
        status: JobStatus | None = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(max_length=200)] = None,
    ) -> StressList:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await StressService(uow, principal, resources).list(
                limit=limit, cursor=cursor, status=status
            )

    return server
