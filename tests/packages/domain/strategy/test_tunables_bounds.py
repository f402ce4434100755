"""Tunable bounds as served: integer knobs are JSON integers, and every distance's bounds are the
tightest ones the validator itself enforces (no bound it would refuse inside, none it accepts outside)."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.pointers import split_pointer
from packages.domain.strategy.tunables import TunableParameter, list_tunable_parameters
from packages.domain.strategy.validation import validate_strategy


def _with_value(document: dict[str, Any], pointer: str, value: float) -> dict[str, Any]:
    updated = copy.deepcopy(document)
    *parents, last = split_pointer(pointer)
    target: Any = updated
    for token in parents:
        target = target[int(token)] if isinstance(target, list) else target[token]
    target[last] = value
    return updated


def _refused_at(document: dict[str, Any], pointer: str, value: float) -> bool:
    return any(issue.pointer == pointer for issue in validate_strategy(_with_value(document, pointer, value)))


def _short_percent_bracket() -> dict[str, Any]:
    """An example turned to percent brackets (with an ATR entry offset), a form no example has."""
    document = copy.deepcopy(get_example("mtf_trend_filter_eurusd"))
    for side in ("long", "short"):
        document["trade"][side]["exits"][0]["stop"] = {"unit": "percent", "value": 1.5}
        document["trade"][side]["entry"]["order"] = {
            "type": "limit",
            "price": {"reference": "close", "offset": {"unit": "atr", "value": -0.5}},
        }
    assert validate_strategy(document) == []
    return document


DOCUMENTS = {slug: get_example(slug) for slug in example_slugs()} | {
    "percent_brackets": _short_percent_bracket()
}


def _distances(document: dict[str, Any]) -> list[TunableParameter]:
    """Exit distances and order offsets: the tunables whose pointer ends at a distance's value."""
    return [
        p
        for p in list_tunable_parameters(document)
        if p.kind in ("exit", "order") and p.pointer.endswith("/value")
    ]


@pytest.mark.parametrize("name", [name for name, document in DOCUMENTS.items() if _distances(document)])
def test_distance_bounds_are_exactly_what_the_validator_accepts(name: str) -> None:
    document = DOCUMENTS[name]
    for p in _distances(document):
        top = math.nextafter(p.maximum, -math.inf) if p.exclusive_maximum else p.maximum
        beyond_top = p.maximum if p.exclusive_maximum else math.nextafter(p.maximum, math.inf)
        bottom = math.nextafter(p.minimum, math.inf) if p.exclusive_minimum else p.minimum
        beyond_bottom = p.minimum if p.exclusive_minimum else math.nextafter(p.minimum, -math.inf)
        assert p.accepts(top) and p.accepts(bottom), p
        assert not p.accepts(beyond_top) and not p.accepts(beyond_bottom), p
        assert not _refused_at(document, p.pointer, top), (p.pointer, top)
        assert not _refused_at(document, p.pointer, bottom), (p.pointer, bottom)
        assert _refused_at(document, p.pointer, beyond_top), (p.pointer, beyond_top)
        assert _refused_at(document, p.pointer, beyond_bottom), (p.pointer, beyond_bottom)


def _bounds(document: dict[str, Any]) -> dict[str, tuple[float, bool, float, bool]]:
    return {
        p.label: (p.minimum, p.exclusive_minimum, p.maximum, p.exclusive_maximum)
        for p in _distances(document)
    }


def test_distances_are_bounded_by_what_they_mean() -> None:
    limit_entry = _bounds(get_example("bollinger_reversion_limit"))
    assert limit_entry["long.stop.distance.value"] == (0, True, 100, True)  # a long stop at -100% is at zero
    assert limit_entry["long.target.distance.value"] == (0, True, 1_000, False)
    assert limit_entry["long.order_offset.value"] == (-100, True, 1_000, False)  # price above zero
    long_short = _bounds(get_example("index_macd_long_short"))
    assert long_short["short.target.distance.value"] == (0, True, 100, True)  # a short target at zero
    assert long_short["short.stop.distance.value"] == (0, True, 1_000, False)
    brackets = _bounds(_short_percent_bracket())
    assert brackets["long.bracket.stop.value"] == (0, True, 100, True)
    assert brackets["short.bracket.stop.value"] == (0, True, 1_000, False)
    assert brackets["long.order_offset.value"] == (-100, False, 100, False)  # in ATRs
    assert _bounds(get_example("ema_crossover_long_short"))["long.atr_stop.distance.value"] == (
        0,
        True,
        100,
        False,
    )


@pytest.mark.parametrize("slug", example_slugs())
def test_integer_parameters_are_json_integers(slug: str) -> None:
    served = json.loads(json.dumps([p.to_dict() for p in list_tunable_parameters(get_example(slug))]))
    integers = [p for p in served if p["type"] == "int"]
    assert integers
    for parameter in integers:
        for field in ("value", "minimum", "maximum"):
            assert type(parameter[field]) is int, (parameter["pointer"], field, parameter[field])
