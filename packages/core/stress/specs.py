"""Each stress request's own fields turned into the domain's specs, and the checks a request gets
before a job exists (those that need only the document and the size of the range)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any, cast

from packages.core.backtests.schemas import StrategyRunRequest
from packages.core.errors import FieldError, ValidationFailed
from packages.core.stress.schemas import CrisisRequest, StressKind
from packages.domain.strategy.limits import DEFAULT_LIMITS
from packages.domain.strategy.tunables import ParameterSpace
from packages.domain.stress import crisis, monte_carlo, optimisation, sensitivity, walk_forward
from packages.domain.stress.errors import StressInputError
from packages.shared_settings.settings import StressSettings

_RUN_FIELDS = frozenset(StrategyRunRequest.model_fields)


def method_parameters(body: StrategyRunRequest) -> dict[str, Any]:
    """The request's own fields (everything but the strategy and its range), as JSON."""
    return {k: v for k, v in body.model_dump(mode="json").items() if k not in _RUN_FIELDS}


@contextmanager
def refused(prefix: str = "") -> Iterator[None]:
    """A domain refusal as the API's 422, its pointer in the request (under ``prefix``)."""
    try:
        yield
    except StressInputError as exc:
        raise ValidationFailed(
            exc.message, errors=[FieldError(exc.code, prefix + exc.pointer, exc.message)]
        ) from exc


def crisis_windows(market: str, parameters: Mapping[str, Any]) -> list[crisis.CrisisWindow]:
    ids = parameters.get("windows")
    for index, window_id in enumerate(ids or []):
        if window_id not in crisis.WINDOWS_BY_ID:
            raise ValidationFailed(
                f"No crisis window '{window_id}'.",
                errors=[
                    FieldError(
                        "unknown_window",
                        f"/windows/{index}",
                        "list them with GET /stress-tests/crisis-windows",
                    )
                ],
            )
    named = crisis.windows_for(market, ids)
    custom = [
        crisis.CrisisWindow(
            f"custom_{i + 1}",
            w["name"],
            date.fromisoformat(w["start"]),
            date.fromisoformat(w["end"]),
            (cast(crisis.MarketName, market),),
            "A custom window.",
        )
        for i, w in enumerate(parameters.get("custom_windows") or [])
    ]
    return named + custom


def thresholds(parameters: Mapping[str, Any]) -> crisis.Thresholds:
    given = parameters.get("thresholds") or {}
    return crisis.Thresholds(
        max_drawdown=float(given.get("max_drawdown", -0.25)), min_return=float(given.get("min_return", -0.15))
    )


def monte_carlo_spec(parameters: Mapping[str, Any]) -> monte_carlo.MonteCarloSpec:
    return monte_carlo.MonteCarloSpec(
        method=parameters["method"],
        trials=int(parameters["trials"]),
        seed=int(parameters["seed"]),
        block_length=parameters.get("block_length"),
        ruin_threshold=float(parameters["ruin_threshold"]),
        confidence=float(parameters["confidence"]),
    )


def sensitivity_spec(parameters: Mapping[str, Any]) -> sensitivity.SensitivitySpec:
    chosen = parameters.get("parameters")
    return sensitivity.SensitivitySpec(
        parameters=tuple(chosen) if chosen is not None else None,
        span=float(parameters["span"]),
        steps=int(parameters["steps"]),
        pairs=tuple((a, b) for a, b in parameters.get("pairs") or []),
        metric=parameters["metric"],
    )


def search_spec(parameters: Mapping[str, Any]) -> optimisation.OptimisationSpec:
    constraints = parameters.get("constraints") or {}
    return optimisation.OptimisationSpec(
        method=parameters["method"],
        dimensions=tuple(
            optimisation.Dimension(d["pointer"], float(d["low"]), float(d["high"]), d.get("step"))
            for d in parameters["dimensions"]
        ),
        objectives=tuple(
            optimisation.Objective(o["metric"], o["direction"]) for o in parameters["objectives"]
        ),
        constraints=optimisation.Constraints(
            max_drawdown=constraints.get("max_drawdown"),
            min_trades=constraints.get("min_trades"),
            min_return=constraints.get("min_return"),
        ),
        budget=int(parameters["budget"]),
        seed=int(parameters["seed"]),
        grid_points=int(parameters["grid_points"]),
    )


def walk_forward_spec(parameters: Mapping[str, Any]) -> walk_forward.WalkForwardSpec:
    return walk_forward.WalkForwardSpec(
        optimisation=search_spec(parameters["optimisation"]),
        folds=int(parameters["folds"]),
        mode=parameters["mode"],
        in_sample_bars=parameters.get("in_sample_bars"),
        out_of_sample_bars=parameters.get("out_of_sample_bars"),
        purge_bars=int(parameters["purge_bars"]),
    )


def _cap(value: int, limit: int, pointer: str, what: str, setting: str) -> None:
    if value > limit:
        raise ValidationFailed(
            f"{what} is {value}; a stress test may use at most {limit} ({setting}).",
            errors=[FieldError("limit_exceeded", pointer, f"at most {limit}")],
        )


def _check_search(
    space: ParameterSpace, spec: optimisation.OptimisationSpec, limits: StressSettings, prefix: str
) -> None:
    _cap(spec.budget, limits.max_points, f"{prefix}/budget", "The budget", "STRESS_MAX_POINTS")
    with refused(prefix):
        optimisation.check_space(space, spec)
        if spec.method == "grid":
            size = optimisation.grid_size(space, spec)
            if size > spec.budget:
                optimisation.candidates(space, spec)  # raises grid_too_large with its advice


def check_request(
    kind: StressKind,
    document: Mapping[str, Any],
    parameters: Mapping[str, Any],
    bars: int,
    limits: StressSettings,
) -> None:
    """The checks of one method's request that need no bars, only the document and the range's size."""
    if kind == "crisis":
        windows = crisis_windows(str(document["universe"]["market"]), parameters)
        _cap(len(windows), limits.max_windows, "/windows", "The number of windows", "STRESS_MAX_WINDOWS")
        return
    if kind == "monte_carlo":
        _cap(int(parameters["trials"]), limits.max_trials, "/trials", "trials", "STRESS_MAX_TRIALS")
        return
    space = ParameterSpace.of_valid_document(document, DEFAULT_LIMITS)
    if kind == "sensitivity":
        with refused():
            points = sensitivity.plan_scan(space, sensitivity_spec(parameters))
        _cap(len(points), limits.max_points, "/steps", "The scan's number of points", "STRESS_MAX_POINTS")
    elif kind == "optimisation":
        _check_search(space, search_spec(parameters), limits, "")
    else:
        spec = walk_forward_spec(parameters)
        _cap(spec.folds, limits.max_folds, "/folds", "The number of folds", "STRESS_MAX_FOLDS")
        _check_search(space, spec.optimisation, limits, "/optimisation")
        with refused():
            walk_forward.plan_folds(0, bars, spec)


def crisis_request_range_unused(body: CrisisRequest) -> None:
    if body.start is not None or body.end is not None:
        raise ValidationFailed(
            "Crisis windows set their own ranges; drop start and end.",
            errors=[
                FieldError("not_applicable", "/start" if body.start is not None else "/end", "remove it")
            ],
        )
