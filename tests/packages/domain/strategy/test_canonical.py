"""Canonical JSON (RFC 8785), hashes and RFC 6902 diffs."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packages.domain.strategy.canonical import (
    PatchError,
    apply_patch,
    canonical_json,
    copy_json,
    diff_documents,
    document_hash,
)
from packages.domain.strategy.examples import get_example


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # Number serialisation samples from RFC 8785 appendix B / section 3.2.2.3.
        (333333333.33333329, "333333333.3333333"),
        (1e30, "1e+30"),
        (4.50, "4.5"),
        (2e-3, "0.002"),
        (0.000000000000000000000000001, "1e-27"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992, "9007199254740992"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (-1.5e-10, "-1.5e-10"),
    ],
)
def test_numbers_follow_ecmascript_formatting(value: float, text: str) -> None:
    assert canonical_json(value) == text.encode()


def test_rfc8785_structure_example() -> None:
    document = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(document).decode() == expected


def test_keys_sort_by_utf16_code_units() -> None:
    # RFC 8785 3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33 by UTF-16, after by code point.
    document = {"\ufb33": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(document).decode("utf-8") == '{"a":3,"\U0001f600":2,"\ufb33":1}'


def test_hash_ignores_formatting_and_key_order() -> None:
    document = get_example("sma_crossover_trend")
    reordered = copy.deepcopy(dict(reversed(list(document.items()))))
    reordered["trade"]["long"]["sizing"]["quantity"] = 100.0
    assert document_hash(document) == document_hash(reordered)
    assert document_hash(document) == hashlib.sha256(canonical_json(document)).hexdigest()
    document["factors"][0]["params"]["period"] = 11
    assert document_hash(document) != document_hash(reordered)


def test_non_json_values_are_refused() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(TypeError):
        canonical_json({"x": {1, 2}})


def test_diff_and_patch_round_trip_between_examples() -> None:
    old = get_example("sma_crossover_trend")
    new = copy.deepcopy(old)
    new["factors"][1]["params"]["period"] = 50
    new["trade"]["long"]["exits"].append({"name": "time", "type": "time_exit", "bars": 20})
    del new["metadata"]["description"]
    patch = diff_documents(old, new)
    assert {op["op"] for op in patch} == {"replace", "add", "remove"}
    assert apply_patch(old, patch) == new
    assert old == get_example("sma_crossover_trend")
    assert diff_documents(old, old) == []
    assert diff_documents({"a": 2}, {"a": 2.0}) == []
    assert diff_documents({"a": True}, {"a": 1}) != []


def test_bad_patches_raise_patch_error() -> None:
    with pytest.raises(PatchError):
        apply_patch({"a": 1}, [{"op": "remove", "path": "/missing"}])
    with pytest.raises(PatchError):
        apply_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    with pytest.raises(PatchError):
        apply_patch({"a": 1}, [{"op": "explode", "path": "/a"}])


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(old=_json, new=_json)
def test_any_diff_applies_back(old: Any, new: Any) -> None:
    patched = apply_patch(old, diff_documents(old, new))
    assert canonical_json(patched) == canonical_json(new)


def test_copy_json_is_deep_and_equal() -> None:
    document = get_example("macd_sequence_pullback")
    copied = copy_json(document)
    assert copied == document and copied is not document
    copied["factors"][0]["indicator"] = "ema"
    copied["trade"]["long"]["exits"].append({})
    assert document == get_example("macd_sequence_pullback")
