"""Parameter sensitivity: how much a result leans on the exact values the strategy was written with.

Each chosen tunable parameter (all of them by default) is moved by up to ``span`` of its value
(0.2 = ±20%) in ``steps`` steps on each side, the others kept as written; integer parameters are
rounded to the nearest whole number (halves to even, which keeps the two sides symmetric about a
whole base value), every value is kept inside the parameter's bounds (a value an exclusive bound
would refuse is dropped) and values that coincide are scanned once (a value of 0 moves by ``span``
in absolute terms). Each pair in ``pairs`` is also scanned on the grid of both parameters' values (a
heatmap). Every point is one run of the engine's batch (sweep) mode over the same bars.

A point whose values break a rule of the language together (say a fast period no longer below the
slow one) is not run; it is reported with the reason.

Per parameter: a response curve of each metric, and a stability score from 0 to 1 for the judged
metric: one minus the mean distance of the curve's values from the base value, relative to the base
value's size (at least ``STABILITY_FLOOR`` of the metric), clipped to 0..1. A flat response scores 1;
a curve that moves on average by as much as the base value itself scores 0. The most fragile
parameters are the lowest scores.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.tunables import ParameterError, ParameterSpace, TunableParameter
from packages.domain.stress.errors import StressInputError

RESPONSE_METRICS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor")
# The smallest base value the stability score divides by, per judged metric.
STABILITY_FLOOR: Mapping[str, float] = {
    "total_return": 0.01,
    "sharpe": 0.25,
    "max_drawdown": 0.01,
    "trades": 1.0,
    "win_rate": 0.05,
    "profit_factor": 0.1,
}

PointKind = Literal["base", "line", "grid"]


@dataclass(frozen=True)
class SensitivitySpec:
    parameters: tuple[str, ...] | None = None
    span: float = 0.2
    steps: int = 4
    pairs: tuple[tuple[str, str], ...] = ()
    metric: str = "sharpe"


@dataclass(frozen=True)
class ScanPoint:
    kind: PointKind
    values: dict[str, float]  # overrides of the written values; empty for the base point
    parameter: str | None = None  # the moved parameter of a line point
    pair: tuple[str, str] | None = None
    invalid: str | None = None  # why the point was not run
    document: dict[str, Any] | None = field(default=None, compare=False, repr=False)


def _moved_values(parameter: TunableParameter, span: float, steps: int) -> list[float]:
    base = parameter.value
    unit = abs(base) if base != 0 else 1.0
    values: list[float] = []
    for k in range(-steps, steps + 1):
        if k == 0:
            continue
        value = min(max(base + unit * span * k / steps, parameter.minimum), parameter.maximum)
        if parameter.value_type == "int":
            # Whole numbers stay whole (and JSON integers) wherever they are reported.
            value = round(value)
        if (parameter.exclusive_minimum and value <= parameter.minimum) or (
            parameter.exclusive_maximum and value >= parameter.maximum
        ):
            continue
        if value != base and value not in values:
            values.append(value)
    return sorted(values)


def plan_scan(space: ParameterSpace, spec: SensitivitySpec) -> list[ScanPoint]:
    """The base point, each parameter's line and each pair's grid, each checked against the language."""
    chosen = list(spec.parameters) if spec.parameters is not None else list(space.parameters)
    for index, pointer in enumerate(chosen):
        if pointer not in space.parameters:
            raise StressInputError(
                "unknown_parameter",
                f"/parameters/{index}",
                f"{pointer} is not a tunable parameter of this strategy; list them with "
                "get_tunable_parameters (GET /strategies/{id}/tunable-parameters).",
            )
    for index, pair in enumerate(spec.pairs):
        for side, pointer in enumerate(pair):
            if pointer not in space.parameters:
                raise StressInputError(
                    "unknown_parameter", f"/pairs/{index}/{side}", f"{pointer} is not a tunable parameter."
                )
        if pair[0] == pair[1]:
            raise StressInputError(
                "same_parameter", f"/pairs/{index}/1", "A heatmap needs two different parameters."
            )
    if spec.metric not in RESPONSE_METRICS:
        raise StressInputError("unknown_metric", "/metric", f"choose one of {', '.join(RESPONSE_METRICS)}")
    if not chosen:
        raise StressInputError(
            "no_parameters", "/parameters", "The strategy has no tunable parameters to scan."
        )

    points = [ScanPoint("base", {}, document=dict(space.document))]
    lines: dict[str, list[float]] = {}
    for pointer in chosen:
        lines[pointer] = _moved_values(space.parameters[pointer], spec.span, spec.steps)
        points.extend(ScanPoint("line", {pointer: v}, parameter=pointer) for v in lines[pointer])
    for first, second in spec.pairs:
        xs = sorted(
            {
                space.parameters[first].value,
                *lines.get(first, _moved_values(space.parameters[first], spec.span, spec.steps)),
            }
        )
        ys = sorted(
            {
                space.parameters[second].value,
                *lines.get(second, _moved_values(space.parameters[second], spec.span, spec.steps)),
            }
        )
        points.extend(
            ScanPoint("grid", {first: x, second: y}, pair=(first, second))
            for x, y in itertools.product(xs, ys)
        )
    return [_checked(space, point) for point in points]


def _checked(space: ParameterSpace, point: ScanPoint) -> ScanPoint:
    if point.kind == "base":
        return point
    try:
        document = space.apply(point.values)
    except ParameterError as exc:
        return ScanPoint(
            point.kind, point.values, point.parameter, point.pair, invalid="; ".join(exc.problems)
        )
    except StrategyValidationError as exc:
        reason = "; ".join(f"{issue.pointer}: {issue.message}" for issue in exc.issues)
        return ScanPoint(point.kind, point.values, point.parameter, point.pair, invalid=reason)
    return ScanPoint(point.kind, point.values, point.parameter, point.pair, document=document)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def stability_score(base: float | None, values: Sequence[float | None], metric: str) -> float | None:
    measured = [v for v in values if v is not None]
    if base is None or not measured:
        return None
    scale = max(abs(base), STABILITY_FLOOR.get(metric, 1e-9))
    drift = sum(abs(v - base) for v in measured) / len(measured)
    return round(min(max(1.0 - drift / scale, 0.0), 1.0), 4)


def analyse(
    space: ParameterSpace,
    spec: SensitivitySpec,
    points: Sequence[ScanPoint],
    metrics: Sequence[Mapping[str, Any] | None],
) -> dict[str, Any]:
    """The report: base metrics, a curve and a stability score per parameter, heatmaps, the ranking.

    ``metrics[i]`` belongs to ``points[i]`` (None for a point that was not run).
    """
    base = {name: _number(metrics[0].get(name)) for name in RESPONSE_METRICS} if metrics[0] else {}
    # Every chosen parameter is reported, also one whose span moves it to no other value.
    chosen = spec.parameters if spec.parameters is not None else tuple(space.parameters)
    curves: dict[str, list[dict[str, Any]]] = {pointer: [] for pointer in chosen}
    for point, measured in zip(points, metrics, strict=True):
        if point.kind != "line" or point.parameter is None:
            continue
        curves.setdefault(point.parameter, []).append(
            {
                "value": point.values[point.parameter],
                "metrics": None
                if measured is None
                else {n: _number(measured.get(n)) for n in RESPONSE_METRICS},
                "invalid": point.invalid,
            }
        )
    parameters = []
    for pointer, curve in curves.items():
        written = space.parameters[pointer].value
        curve.append({"value": written, "metrics": base, "invalid": None})
        curve.sort(key=lambda row: row["value"])
        judged = [
            row["metrics"][spec.metric] if row["metrics"] else None
            for row in curve
            if row["value"] != written
        ]
        parameters.append(
            {
                "pointer": pointer,
                "label": space.parameters[pointer].label,
                "written_value": written,
                "stability": stability_score(base.get(spec.metric), judged, spec.metric),
                "curve": curve,
            }
        )
    ranked = sorted(
        (p for p in parameters if p["stability"] is not None), key=lambda p: (p["stability"], p["pointer"])
    )
    heatmaps = []
    for first, second in spec.pairs:
        cells = [
            (p, m)
            for p, m in zip(points, metrics, strict=True)
            if p.kind == "grid" and p.pair == (first, second)
        ]
        xs = sorted({p.values[first] for p, _ in cells})
        ys = sorted({p.values[second] for p, _ in cells})
        grid: list[list[float | None]] = [[None] * len(xs) for _ in ys]
        for point, measured in cells:
            value = None if measured is None else _number(measured.get(spec.metric))
            grid[ys.index(point.values[second])][xs.index(point.values[first])] = value
        heatmaps.append(
            {"x": first, "y": second, "x_values": xs, "y_values": ys, "metric": spec.metric, "values": grid}
        )
    return {
        "metric": spec.metric,
        "span": spec.span,
        "steps": spec.steps,
        "base": base,
        "points": len(points),
        "invalid_points": sum(1 for p in points if p.invalid),
        "parameters": parameters,
        "most_fragile": [p["pointer"] for p in ranked[:5]],
        "heatmaps": heatmaps,
    }


def describe(report: dict[str, Any]) -> str:
    ranked = [p for p in report["parameters"] if p["stability"] is not None]
    if not ranked:
        return "No scanned point produced the judged metric; see the invalid points for why."
    fragile = min(ranked, key=lambda p: p["stability"])
    steady = sum(1 for p in ranked if p["stability"] >= 0.8)
    return (
        f"{steady} of {len(ranked)} parameters are stable (score >= 0.8) for {report['metric']} within "
        f"±{report['span']:.0%}; the most fragile is {fragile['label']} ({fragile['pointer']}, score "
        f"{fragile['stability']:.2f})."
    )
