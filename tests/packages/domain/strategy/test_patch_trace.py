"""Which operation of a patch answers for a location of the patched document."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from packages.domain.strategy.canonical import PatchError, apply_patch
from packages.domain.strategy.examples import get_example
from packages.domain.strategy.patch_trace import Blame, apply_traced_patch


def _document() -> dict[str, Any]:
    return copy.deepcopy(get_example("sma_crossover_trend"))


NEW_FACTOR = {"id": "m", "indicator": "macd", "params": {"fast_period": 30, "slow_period": 10}}

CASES = [
    # (operations, pointer into the patched document, expected blame)
    ([{"op": "replace", "path": "/timeframe", "value": "7m"}], "/timeframe", Blame(0, "")),
    (
        [{"op": "add", "path": "/factors/-", "value": NEW_FACTOR}],
        "/factors/2/params/fast_period",
        Blame(0, "/params/fast_period"),
    ),
    (  # inserted at the front: the later indices shift, the blame follows the value
        [
            {"op": "test", "path": "/timeframe", "value": "1d"},
            {"op": "add", "path": "/factors/0", "value": {"id": "x", "indicator": "rsii"}},
        ],
        "/factors/0/indicator",
        Blame(1, "/indicator"),
    ),
    (  # a field missing inside an added value is located where it belongs in that value
        [{"op": "add", "path": "/factors/-", "value": {"id": "x"}}],
        "/factors/2/indicator",
        Blame(0, "/indicator"),
    ),
    (  # the original factor moved one place down: untouched values are no operation's doing
        [{"op": "add", "path": "/factors/0", "value": {"id": "x", "indicator": "rsi"}}],
        "/factors/1/params/period",
        None,
    ),
    ([{"op": "remove", "path": "/metadata/name"}], "/metadata/name", Blame(0, None)),
    ([{"op": "remove", "path": "/trade/long/exits/0"}], "/trade/long/exits", Blame(0, None)),
    ([{"op": "remove", "path": "/metadata"}], "/metadata", Blame(0, None)),
    (  # a member changed
        [{"op": "replace", "path": "/factors/0/params/period", "value": 30}],
        "/factors/0/params",
        Blame(0, None),
    ),
    (  # a sibling changed: the conflicting partner of a parameter pair
        [{"op": "add", "path": "/factors/0/params/slow_period", "value": 5}],
        "/factors/0/params/period",
        Blame(0, None),
    ),
    (  # the document root is everyone's parent: a new top-level field answers for no other field
        [{"op": "add", "path": "/x-notes", "value": "n"}],
        "/timeframe",
        None,
    ),
    (  # an indirect effect (a reference to a removed factor) is no operation's location
        [{"op": "remove", "path": "/factors/1"}],
        "/trade/long/entry/condition/right/factor",
        None,
    ),
    (
        [{"op": "move", "from": "/metadata/name", "path": "/universe/market"}],
        "/universe/market",
        Blame(0, None),
    ),
    (
        [{"op": "copy", "from": "/factors/0", "path": "/factors/-"}],
        "/factors/2/id",
        Blame(0, None),
    ),
    (  # a later operation changed the members of an earlier operation's value
        [
            {"op": "add", "path": "/factors/-", "value": {"id": "x", "indicator": "rsi"}},
            {"op": "remove", "path": "/factors/2/indicator"},
        ],
        "/factors/2/indicator",
        Blame(1, None),
    ),
    (  # a later value inside an earlier one answers for itself
        [
            {"op": "add", "path": "/factors/-", "value": {"id": "x", "indicator": "rsi", "params": {}}},
            {"op": "add", "path": "/factors/2/params/period", "value": 0},
        ],
        "/factors/2/params/period",
        Blame(1, ""),
    ),
    (
        [{"op": "replace", "path": "", "value": {"dsl_version": "1.0.0", "metadata": {}}}],
        "/metadata/name",
        Blame(0, "/metadata/name"),
    ),
]


@pytest.mark.parametrize(("operations", "pointer", "expected"), CASES)
def test_blame(operations: list[dict[str, Any]], pointer: str, expected: Blame | None) -> None:
    patched = apply_traced_patch(_document(), operations)
    assert patched.document == jsonpatch.apply_patch(_document(), operations)
    assert patched.trace.blame(pointer) == expected


def test_a_failing_operation_is_named_and_nothing_changes() -> None:
    document = _document()
    operations = [
        {"op": "replace", "path": "/timeframe", "value": "1h"},
        {"op": "remove", "path": "/no/such/field"},
    ]
    with pytest.raises(PatchError) as caught:
        apply_traced_patch(document, operations)
    assert caught.value.operation_index == 1
    assert document == _document()


def test_later_operations_do_not_change_the_patch_itself() -> None:
    operations = [
        {"op": "add", "path": "/x-notes", "value": {"a": 1}},
        {"op": "replace", "path": "/x-notes/a", "value": 2},
    ]
    patched = apply_patch(_document(), operations)
    assert patched["x-notes"] == {"a": 2}
    assert operations[0]["value"] == {"a": 1}
