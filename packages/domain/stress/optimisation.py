"""Optimisation: search a bounded space of a strategy's tunable parameters for better values.

``grid`` tries every combination of each dimension's values (``step`` apart, or ``grid_points``
evenly spread from ``low`` to ``high``); ``random`` draws ``budget`` combinations uniformly with the
seed; ``tpe`` asks Optuna's TPE sampler (seeded) for ``budget`` combinations in batches, each batch
learning from the results before it. Integer parameters take integer values only.

One or several objectives (a metric and a direction). A trial is feasible when it meets the
constraints (max drawdown no deeper than, at least so many trades, return at least). The Pareto
front holds the feasible trials no other feasible trial beats on every objective; the best trial is
the feasible one best on the first objective (ties broken by the next). Combinations the language
refuses together (a fast period no longer below the slow one) are reported as invalid, not run.

Each winner comes back as an RFC 6902 patch of the strategy document, ready to apply as a new
revision (PATCH /strategies/{id}).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.pointers import join_pointer, split_pointer
from packages.domain.strategy.tunables import ParameterError, ParameterSpace
from packages.domain.stress.errors import StressInputError

Direction = Literal["maximize", "minimize"]
SearchMethod = Literal["grid", "random", "tpe"]
OBJECTIVE_METRICS = (
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
)


@dataclass(frozen=True)
class Dimension:
    pointer: str
    low: float
    high: float
    step: float | None = None


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction = "maximize"


@dataclass(frozen=True)
class Constraints:
    max_drawdown: float | None = None  # e.g. -0.3: no deeper than 30%
    min_trades: int | None = None
    min_return: float | None = None

    def met_by(self, metrics: Mapping[str, Any]) -> bool:
        drawdown, trades, total = (
            _number(metrics.get(n)) for n in ("max_drawdown", "trades", "total_return")
        )
        if self.max_drawdown is not None and (drawdown is None or drawdown < self.max_drawdown):
            return False
        if self.min_trades is not None and (trades is None or trades < self.min_trades):
            return False
        return self.min_return is None or (total is not None and total >= self.min_return)


@dataclass(frozen=True)
class OptimisationSpec:
    method: SearchMethod
    dimensions: tuple[Dimension, ...]
    objectives: tuple[Objective, ...]
    constraints: Constraints = Constraints()
    budget: int = 100
    seed: int = 0
    grid_points: int = 5
    batch_size: int = 16  # tpe: combinations asked for (and run as one sweep) per round


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _number(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def check_space(space: ParameterSpace, spec: OptimisationSpec) -> None:
    """Every dimension names a tunable parameter and stays inside its bounds."""
    if not spec.dimensions:
        raise StressInputError("no_dimensions", "/dimensions", "Give at least one parameter to search.")
    for index, dimension in enumerate(spec.dimensions):
        parameter = space.parameters.get(dimension.pointer)
        where = f"/dimensions/{index}"
        if parameter is None:
            raise StressInputError(
                "unknown_parameter",
                f"{where}/pointer",
                f"{dimension.pointer} is not a tunable parameter of this strategy; list them with "
                "get_tunable_parameters.",
            )
        if not dimension.low < dimension.high:
            raise StressInputError("empty_range", f"{where}/high", "high must be above low.")
        if parameter.value_type == "int" and math.ceil(dimension.low) > math.floor(dimension.high):
            raise StressInputError(
                "empty_range",
                f"{where}/high",
                f"{parameter.label} takes whole numbers and none lies from {dimension.low} to {dimension.high}.",
            )
        if dimension.step is not None and not dimension.step > 0:
            raise StressInputError("bad_step", f"{where}/step", "step must be above zero.")
        if not (parameter.accepts(dimension.low) and parameter.accepts(dimension.high)):
            raise StressInputError(
                "out_of_bounds",
                f"{where}/low",
                f"{parameter.label} accepts {parameter.minimum} to {parameter.maximum}; keep low and high inside.",
            )
    for index, objective in enumerate(spec.objectives):
        if objective.metric not in OBJECTIVE_METRICS:
            raise StressInputError(
                "unknown_metric",
                f"/objectives/{index}/metric",
                f"choose one of {', '.join(OBJECTIVE_METRICS)}",
            )


def _values(space: ParameterSpace, dimension: Dimension, points: int) -> list[float]:
    integer = space.parameters[dimension.pointer].value_type == "int"
    if dimension.step is not None:
        count = math.floor((dimension.high - dimension.low) / dimension.step + 1e-9) + 1
        raw = [dimension.low + i * dimension.step for i in range(count)]
    else:
        raw = list(np.linspace(dimension.low, dimension.high, points))
    if integer:
        # Whole numbers inside [low, high], as random and tpe draw them.
        lowest, highest = math.ceil(dimension.low), math.floor(dimension.high)
        return sorted({min(max(round(v), lowest), highest) for v in raw})
    return sorted({round(float(v), 12) for v in raw})


def grid_size(space: ParameterSpace, spec: OptimisationSpec) -> int:
    return math.prod(len(_values(space, d, spec.grid_points)) for d in spec.dimensions)


def candidates(space: ParameterSpace, spec: OptimisationSpec) -> list[dict[str, float]]:
    """Grid or random combinations, in a fixed order (the same for the same spec)."""
    if spec.method == "grid":
        size = grid_size(space, spec)
        if size > spec.budget:
            raise StressInputError(
                "grid_too_large",
                "/budget",
                f"The grid has {size} combinations and the budget is {spec.budget}; raise the budget, use "
                "fewer grid_points or larger steps, or use method 'random' or 'tpe'.",
            )
        axes = [_values(space, d, spec.grid_points) for d in spec.dimensions]
        return [
            dict(zip((d.pointer for d in spec.dimensions), combo, strict=True))
            for combo in itertools.product(*axes)
        ]
    if spec.method == "random":
        rng = np.random.default_rng(spec.seed)
        rows: list[dict[str, float]] = []
        for _ in range(spec.budget):
            row: dict[str, float] = {}
            for dimension in spec.dimensions:
                if space.parameters[dimension.pointer].value_type == "int":
                    row[dimension.pointer] = int(
                        rng.integers(math.ceil(dimension.low), math.floor(dimension.high) + 1)
                    )
                else:
                    row[dimension.pointer] = float(rng.uniform(dimension.low, dimension.high))
            rows.append(row)
        return rows
    raise ValueError("tpe proposes its combinations round by round (run_tpe)")


Evaluate = Callable[[Sequence[Mapping[str, float]]], list[dict[str, Any] | None]]


def run_tpe(
    space: ParameterSpace, spec: OptimisationSpec, evaluate: Evaluate
) -> list[tuple[dict[str, float], dict[str, Any] | None, str | None]]:
    """Optuna TPE (seeded), ``batch_size`` combinations per round; returns (values, metrics, invalid) per trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [o.direction for o in spec.objectives]
    sampler = optuna.samplers.TPESampler(seed=spec.seed, multivariate=True, constant_liar=True)
    study = optuna.create_study(directions=directions, sampler=sampler)
    rows: list[tuple[dict[str, float], dict[str, Any] | None, str | None]] = []
    while len(rows) < spec.budget:
        batch = [study.ask() for _ in range(min(spec.batch_size, spec.budget - len(rows)))]
        proposals = []
        for trial in batch:
            values: dict[str, float] = {}
            for dimension in spec.dimensions:
                if space.parameters[dimension.pointer].value_type == "int":
                    values[dimension.pointer] = trial.suggest_int(
                        dimension.pointer, math.ceil(dimension.low), math.floor(dimension.high)
                    )
                else:
                    values[dimension.pointer] = trial.suggest_float(
                        dimension.pointer, dimension.low, dimension.high
                    )
            proposals.append(values)
        checked = [invalid_reason(space, values) for values in proposals]
        runnable = [values for values, reason in zip(proposals, checked, strict=True) if reason is None]
        measured = iter(evaluate(runnable)) if runnable else iter(())
        for trial, values, reason in zip(batch, proposals, checked, strict=True):
            metrics = next(measured) if reason is None else None
            if metrics is None or not all(_finite(metrics.get(o.metric)) for o in spec.objectives):
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, [float(metrics[o.metric]) for o in spec.objectives])
            rows.append((values, metrics, reason))
    return rows


def invalid_reason(space: ParameterSpace, values: Mapping[str, float]) -> str | None:
    """Why the language refuses these values together, or None when they are fine."""
    try:
        space.apply(values)
    except ParameterError as exc:
        return "; ".join(exc.problems)
    except StrategyValidationError as exc:
        return "; ".join(f"{issue.pointer}: {issue.message}" for issue in exc.issues)
    return None


def _score(metrics: Mapping[str, Any], objectives: Sequence[Objective]) -> tuple[float, ...]:
    """Objective values turned so that larger is better."""
    return tuple(float(metrics[o.metric]) * (1.0 if o.direction == "maximize" else -1.0) for o in objectives)


def pareto_front(trials: Sequence[Mapping[str, Any]], objectives: Sequence[Objective]) -> list[int]:
    """Indexes of the feasible trials that no other feasible trial dominates (>= on all, > on one)."""
    scored = [
        (i, _score(t["metrics"], objectives))
        for i, t in enumerate(trials)
        if t.get("feasible") and all(_finite(t["metrics"].get(o.metric)) for o in objectives)
    ]
    front = []
    for i, mine in scored:
        dominated = any(
            all(a >= b for a, b in zip(other, mine, strict=True))
            and any(a > b for a, b in zip(other, mine, strict=True))
            for j, other in scored
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def best_trial(trials: Sequence[Mapping[str, Any]], objectives: Sequence[Objective]) -> int | None:
    feasible = [
        (i, _score(t["metrics"], objectives))
        for i, t in enumerate(trials)
        if t.get("feasible") and all(_finite(t["metrics"].get(o.metric)) for o in objectives)
    ]
    return max(feasible, key=lambda row: (row[1], -row[0]))[0] if feasible else None


def parameter_patch(
    document: Mapping[str, Any], values: Mapping[str, float], space: ParameterSpace
) -> list[dict[str, Any]]:
    """RFC 6902 operations that set ``values`` in ``document``.

    An indicator default the document leaves out is added. When its ``params`` object is missing
    too, one operation adds the object holding every value that goes in it: an ``add`` of the
    object per value would replace the object, keeping only the last value.
    """
    operations: list[dict[str, Any]] = []
    created: dict[str, dict[str, Any]] = {}  # path of a container the patch adds -> its value
    for pointer, value in values.items():
        typed: float | int = int(value) if space.parameters[pointer].value_type == "int" else float(value)
        tokens = split_pointer(pointer)
        parent: Any = document
        missing_at = None
        for depth, token in enumerate(tokens[:-1]):
            if isinstance(parent, list):
                parent = parent[int(token)]
            elif token in parent:
                parent = parent[token]
            else:
                missing_at = depth
                break
        if missing_at is None:
            operations.append({"op": "add", "path": pointer, "value": typed})
            continue
        container = join_pointer("", *tokens[: missing_at + 1])
        if container not in created:
            created[container] = {}
            operations.append({"op": "add", "path": container, "value": created[container]})
        inner = created[container]
        for token in tokens[missing_at + 1 : -1]:
            inner = inner.setdefault(token, {})
        inner[tokens[-1]] = typed
    return operations


def trial_rows(
    space: ParameterSpace,
    spec: OptimisationSpec,
    proposals: Sequence[tuple[Mapping[str, float], Mapping[str, Any] | None, str | None]],
) -> list[dict[str, Any]]:
    """Trials as reported: number, values, metrics, feasible, invalid reason."""
    rows = []
    for number, (values, metrics, invalid) in enumerate(proposals):
        rows.append(
            {
                "number": number,
                "values": dict(values),
                "metrics": dict(metrics) if metrics is not None else None,
                "feasible": metrics is not None and spec.constraints.met_by(metrics),
                "invalid": invalid,
            }
        )
    return rows


def summarise(space: ParameterSpace, spec: OptimisationSpec, trials: list[dict[str, Any]]) -> dict[str, Any]:
    front = pareto_front(trials, spec.objectives)
    best = best_trial(trials, spec.objectives)
    winners = [best] if best is not None else []
    winners += [i for i in front if i != best]
    return {
        "method": spec.method,
        "objectives": [{"metric": o.metric, "direction": o.direction} for o in spec.objectives],
        "trials": len(trials),
        "feasible": sum(1 for t in trials if t["feasible"]),
        "invalid": sum(1 for t in trials if t["invalid"]),
        "best_trial": best,
        "pareto_front": front,
        "winners": [
            {
                "trial": i,
                "values": trials[i]["values"],
                "metrics": trials[i]["metrics"],
                "patch": parameter_patch(space.document, trials[i]["values"], space),
            }
            for i in winners
        ],
    }


def describe(summary: dict[str, Any]) -> str:
    if summary["best_trial"] is None:
        return f"None of the {summary['trials']} trials met the constraints; loosen them or widen the search space."
    winner = summary["winners"][0]
    first = summary["objectives"][0]["metric"]
    value = winner["metrics"][first]
    return (
        f"Best of {summary['trials']} trials ({summary['feasible']} feasible): {first} {value:.3g} with "
        + ", ".join(f"{k.rsplit('/', 1)[-1]}={v:g}" for k, v in winner["values"].items())
        + f"; {len(summary['pareto_front'])} trial(s) on the Pareto front. Apply a winner's patch to keep it."
    )
