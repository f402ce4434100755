"""What a catalogue entry declares: parameters, inputs, outputs, warm-up and the computation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ParamValue = int | float | str
Params = Mapping[str, ParamValue]
ComputeFn = Callable[[Mapping[str, FloatArray], Params], dict[str, FloatArray]]
WarmupFn = Callable[[Params], int]

Category = Literal[
    "overlap", "momentum", "volatility", "volume", "cycle", "statistic", "price", "pattern", "regime"
]
CATEGORIES: tuple[str, ...] = (
    "overlap",
    "momentum",
    "volatility",
    "volume",
    "cycle",
    "statistic",
    "price",
    "pattern",
    "regime",
)
ParamType = Literal["int", "float", "enum"]

# Input name standing for the configurable price source (the factor's ``source`` field).
SOURCE_INPUT = "source"


@dataclass(frozen=True)
class ParamSpec:
    """A typed, bounded indicator parameter; bounds are inclusive."""

    name: str
    type: ParamType
    default: ParamValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "description": self.description,
        }
        if self.type == "enum":
            payload["choices"] = list(self.choices)
        else:
            payload["minimum"] = self.minimum
            payload["maximum"] = self.maximum
        return payload


@dataclass(frozen=True)
class ParamConstraint:
    """A rule between parameters, e.g. fast period below slow period.

    Validation reports a broken rule as PARAM_CONFLICT at the first of ``params`` the factor sets
    (values left out take their defaults), with ``hint`` saying how to fix it.
    """

    params: tuple[str, ...]
    description: str
    holds: Callable[[Params], bool]
    hint: str


@dataclass(frozen=True)
class OutputSpec:
    name: str
    description: str
    # Range the values can take when the indicator is bounded (e.g. RSI 0..100); used to bound
    # tunable thresholds compared against it.
    value_range: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.value_range is not None:
            payload["range"] = list(self.value_range)
        return payload


@dataclass(frozen=True)
class IndicatorSpec:
    """One catalogue entry.

    ``inputs`` lists the bar fields the computation reads; ``"source"`` stands for the factor's
    configurable price source (default close). ``compute`` maps 1-D float64 arrays (one symbol,
    no interior gaps) and fully resolved parameters to one array per output; the first
    ``warmup(params)`` values are NaN, every later one is defined whenever the inputs are.
    ``path_dependent`` marks cumulative indicators whose level depends on where the data starts
    (compare their changes, not their levels); ``unstable`` marks recursive smoothers whose early
    values still carry the seed.
    """

    name: str
    category: Category
    description: str
    inputs: tuple[str, ...]
    params: tuple[ParamSpec, ...]
    outputs: tuple[OutputSpec, ...]
    compute: ComputeFn = field(repr=False, compare=False)
    warmup: WarmupFn = field(repr=False, compare=False)
    backend: Literal["talib", "custom"] = "talib"
    path_dependent: bool = False
    unstable: bool = False
    constraints: tuple[ParamConstraint, ...] = ()

    @property
    def accepts_source(self) -> bool:
        return SOURCE_INPUT in self.inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(output.name for output in self.outputs)

    def param(self, name: str) -> ParamSpec | None:
        return next((spec for spec in self.params if spec.name == name), None)

    def resolve_params(self, given: Params) -> dict[str, ParamValue]:
        """Defaults filled in, integers as ``int``, in declaration order (assumes valid values)."""
        resolved: dict[str, ParamValue] = {}
        for spec in self.params:
            value = given.get(spec.name, spec.default)
            if spec.type == "int":
                value = int(value)
            elif spec.type == "float":
                value = float(value)
            resolved[spec.name] = value
        return resolved

    def to_dict(self) -> dict[str, Any]:
        """JSON description served by the catalogue endpoints and tools."""
        return {
            "name": self.name,
            "category": self.category,
            "description": self.description,
            "inputs": list(self.inputs),
            "accepts_source": self.accepts_source,
            "params": [spec.to_dict() for spec in self.params],
            "outputs": [output.to_dict() for output in self.outputs],
            "warmup_bars_at_defaults": self.warmup(self.resolve_params({})),
            "backend": self.backend,
            "path_dependent": self.path_dependent,
            "unstable": self.unstable,
            "constraints": [constraint.description for constraint in self.constraints],
        }


def period_param(
    name: str, default: int, description: str, minimum: int = 2, maximum: int = 5_000
) -> ParamSpec:
    return ParamSpec(name, "int", default, description, minimum=minimum, maximum=maximum)


def less_than(lower: str, upper: str, why: str) -> ParamConstraint:
    """``lower`` strictly below ``upper``; ``why`` says what the order means to the indicator."""
    return ParamConstraint(
        params=(lower, upper),
        description=f"{lower} < {upper}",
        holds=lambda params: float(params[lower]) < float(params[upper]),
        hint=f"Make {lower} smaller than {upper}: {why}",
    )


def at_most(lower: str, upper: str, why: str) -> ParamConstraint:
    """``lower`` not above ``upper``; ``why`` says what the order means to the indicator."""
    return ParamConstraint(
        params=(lower, upper),
        description=f"{lower} <= {upper}",
        holds=lambda params: float(params[lower]) <= float(params[upper]),
        hint=f"Make {lower} no larger than {upper}: {why}",
    )
