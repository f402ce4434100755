"""Inputs and outputs of stress tests, shared by the REST routes and the MCP tools.

Each method's request is a strategy run (a saved strategy or an inline document, a range,
assumptions) plus the method's own bounded fields. Numbers that are returns, drawdowns or rates
are fractions (0.05 = 5%); thresholds on drawdowns are negative fractions (-0.25: no deeper than
25%).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, Field, model_validator

from packages.core.backtests.schemas import StrategyJobOut, StrategyRunRequest
from packages.core.jobs.schemas import JobStatus
from packages.core.schemas import StrictModel

StressKind = Literal["crisis", "monte_carlo", "sensitivity", "optimisation", "walk_forward"]
STRESS_KINDS: tuple[StressKind, ...] = get_args(StressKind)

Pointer = Annotated[
    str, Field(min_length=1, max_length=300, pattern=r"^/", description="A tunable parameter's JSON pointer.")
]
Seed = Annotated[
    int, Field(ge=0, le=2**63 - 1, description="Random seed: the same seed gives the same result.")
]
MetricName = Literal[
    "total_return",
    "annual_return",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "profit_factor",
    "win_rate",
    "expectancy",
    "trades",
]
ResponseMetric = Literal["total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor"]


class CustomWindow(StrictModel):
    name: str = Field(min_length=1, max_length=80)
    start: date
    end: date = Field(description="Exclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        if self.start.year < 1900 or self.end.year > 2200:
            raise ValueError("the window must lie between 1900 and 2200")
        return self


class CrisisThresholds(StrictModel):
    max_drawdown: float = Field(
        default=-0.25, ge=-1.0, le=0.0, description="A window fails when its max drawdown is deeper."
    )
    min_return: float = Field(
        default=-0.15, ge=-1.0, le=10.0, description="A window fails when its return is lower."
    )


class CrisisRequest(StrategyRunRequest):
    """Replay the strategy over named crisis windows (all that apply to its market by default) and
    custom ones. ``start``/``end`` are not used: each window sets its own range."""

    windows: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        default=None,
        max_length=40,
        description="Window ids from GET /stress-tests/crisis-windows; default: all for the market.",
    )
    custom_windows: list[CustomWindow] = Field(default_factory=list, max_length=20)
    thresholds: CrisisThresholds = Field(default_factory=CrisisThresholds)


class MonteCarloRequest(StrategyRunRequest):
    """Resample the backtest's bar returns or trades ``trials`` times (seeded)."""

    method: Literal["iid_bootstrap", "block_bootstrap", "trade_shuffle", "trade_resample"] = "block_bootstrap"
    trials: int = Field(default=1000, ge=10, le=1_000_000)
    seed: Seed = 0
    block_length: int | None = Field(
        default=None, ge=1, le=10_000, description="Block bootstrap only; default: chosen from the data."
    )
    ruin_threshold: float = Field(
        default=-0.5, gt=-1.0, lt=0.0, description="Ruin: equity this far below the start at any step."
    )
    confidence: float = Field(default=0.95, ge=0.5, le=0.999)

    @model_validator(mode="after")
    def _block_only(self) -> Self:
        if self.block_length is not None and self.method != "block_bootstrap":
            raise ValueError("block_length applies to method 'block_bootstrap' only")
        return self


class SensitivityRequest(StrategyRunRequest):
    """Move each tunable parameter (or those listed) by up to ± ``span`` in ``steps`` steps per side."""

    parameters: list[Pointer] | None = Field(
        default=None, max_length=50, description="Default: every tunable parameter."
    )
    span: float = Field(default=0.2, gt=0.0, le=1.0, description="0.2 = ±20% of the written value.")
    steps: int = Field(default=4, ge=1, le=20, description="Values on each side of the written one.")
    pairs: list[tuple[Pointer, Pointer]] = Field(
        default_factory=list, max_length=3, description="Parameter pairs scanned on a grid (heatmaps)."
    )
    metric: ResponseMetric = Field(default="sharpe", description="The metric stability is judged on.")


class Dimension(StrictModel):
    pointer: Pointer
    low: float
    high: float
    step: float | None = Field(default=None, gt=0)


class Objective(StrictModel):
    metric: MetricName
    direction: Literal["maximize", "minimize"] = "maximize"


class Constraints(StrictModel):
    max_drawdown: float | None = Field(
        default=None, ge=-1.0, le=0.0, description="e.g. -0.3: no deeper than 30%."
    )
    min_trades: int | None = Field(default=None, ge=0, le=1_000_000)
    min_return: float | None = Field(default=None, ge=-1.0, le=1000.0)


class SearchSpec(StrictModel):
    method: Literal["grid", "random", "tpe"] = "grid"
    dimensions: list[Dimension] = Field(min_length=1, max_length=8)
    objectives: list[Objective] = Field(
        default_factory=lambda: [Objective(metric="sharpe")], min_length=1, max_length=3
    )
    constraints: Constraints = Field(default_factory=Constraints)
    budget: int = Field(default=100, ge=1, le=100_000, description="Most combinations tried.")
    seed: Seed = 0
    grid_points: int = Field(default=5, ge=2, le=100, description="Grid values per dimension without a step.")


class OptimisationRequest(StrategyRunRequest, SearchSpec):
    """Search the listed tunable parameters for the best values; winners come back as patches."""


class WalkForwardRequest(StrategyRunRequest):
    """Optimise on rolling or anchored in-sample windows, judge each winner on the window after."""

    optimisation: SearchSpec
    folds: int = Field(default=5, ge=2, le=100)
    mode: Literal["rolling", "anchored"] = "rolling"
    in_sample_bars: int | None = Field(default=None, ge=20, le=10_000_000)
    out_of_sample_bars: int | None = Field(default=None, ge=20, le=10_000_000)
    purge_bars: int = Field(default=0, ge=0, le=100_000)


REQUEST_MODELS: dict[StressKind, type[StrategyRunRequest]] = {
    "crisis": CrisisRequest,
    "monte_carlo": MonteCarloRequest,
    "sensitivity": SensitivityRequest,
    "optimisation": OptimisationRequest,
    "walk_forward": WalkForwardRequest,
}


class StressOut(StrategyJobOut):
    """A stress test: where its job stands and, once it succeeded, its summary."""

    kind: StressKind
    parameters: dict[str, Any] = Field(description="The method's own inputs as submitted.")
    description: str | None = Field(description="The result in plain words, once succeeded.")
    summary: dict[str, Any] | None = Field(
        description="The method's report (without its items), once succeeded."
    )
    items: int | None = Field(description="How many items GET /{id}/items pages through.")


class StressListItem(BaseModel):
    id: uuid.UUID
    kind: StressKind
    status: JobStatus
    progress: float
    created_at: datetime
    finished_at: datetime | None
    strategy_id: uuid.UUID | None
    strategy_name: str | None
    description: str | None


class StressList(BaseModel):
    items: list[StressListItem]
    next_cursor: str | None


class StressItems(BaseModel):
    """Crisis windows, Monte Carlo trials, sensitivity points, optimisation trials or walk-forward folds."""

    id: uuid.UUID
    kind: StressKind
    total: int
    items: list[dict[str, Any]]
    next_cursor: str | None


class ParetoOut(BaseModel):
    id: uuid.UUID
    objectives: list[dict[str, str]]
    best_trial: int | None
    front: list[dict[str, Any]] = Field(
        description="Trials no feasible trial beats on every objective, with patches."
    )


class CrisisWindowOut(BaseModel):
    id: str
    name: str
    start: date
    end: date
    markets: list[str]
    description: str
