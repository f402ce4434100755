"""The indicator catalogue: every indicator a strategy factor may name.

Entry points for the REST/MCP layers: ``list_indicators()``, ``get_indicator(name)`` and
``catalogue_document()`` (the JSON served to clients).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from packages.domain.strategy.indicators.custom import custom_indicators
from packages.domain.strategy.indicators.spec import (
    CATEGORIES,
    SOURCE_INPUT,
    FloatArray,
    IndicatorSpec,
    OutputSpec,
    ParamConstraint,
    Params,
    ParamSpec,
    ParamValue,
)
from packages.domain.strategy.indicators.talib_backed import talib_indicators

__all__ = [
    "CATEGORIES",
    "SOURCE_INPUT",
    "FloatArray",
    "IndicatorSpec",
    "OutputSpec",
    "ParamConstraint",
    "ParamSpec",
    "ParamValue",
    "Params",
    "catalogue_document",
    "get_indicator",
    "indicator_names",
    "list_indicators",
]


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, IndicatorSpec]:
    entries = [*talib_indicators(), *custom_indicators()]
    catalogue: dict[str, IndicatorSpec] = {}
    for entry in entries:
        if entry.name in catalogue:
            raise RuntimeError(f"indicator {entry.name!r} is defined twice")
        catalogue[entry.name] = entry
    return catalogue


def list_indicators(category: str | None = None) -> list[IndicatorSpec]:
    """Catalogue entries sorted by category then name, optionally of one category."""
    entries = sorted(_catalogue().values(), key=lambda e: (CATEGORIES.index(e.category), e.name))
    return [entry for entry in entries if category is None or entry.category == category]


def get_indicator(name: str) -> IndicatorSpec | None:
    return _catalogue().get(name)


def indicator_names() -> tuple[str, ...]:
    return tuple(sorted(_catalogue()))


def catalogue_document() -> dict[str, Any]:
    """The whole catalogue as JSON-ready data."""
    return {
        "categories": list(CATEGORIES),
        "indicators": [entry.to_dict() for entry in list_indicators()],
    }
