"""The published JSON Schema: valid 2020-12, versioned, in step with the vocabulary and limits."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from packages.domain.strategy.errors import ErrorCode
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.limits import Limits
from packages.domain.strategy.schema import get_strategy_schema
from packages.domain.strategy.vocabulary import (
    CONDITION_OPS,
    DSL_VERSION,
    EXIT_TYPES,
    MARKETS,
    SIZING_MODES,
    TIMEFRAME_NS,
    TIMEFRAMES,
)


def _walk(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        found.append(node)
        for child in node.values():
            found.extend(_walk(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_walk(child))
    return found


def test_schema_is_valid_draft_2020_12_and_json() -> None:
    schema = get_strategy_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(DSL_VERSION)
    assert json.loads(json.dumps(schema)) == schema


def test_schema_speaks_the_vocabulary() -> None:
    schema = get_strategy_schema()
    assert (
        schema["properties"]["timeframe"]["enum"]
        == list(TIMEFRAMES)
        == ["1m", "5m", "15m", "30m", "1h", "2h", "4h", "1d", "1w"]
    )
    assert schema["properties"]["universe"]["properties"]["market"]["enum"] == list(MARKETS)
    assert schema["$defs"]["condition"]["properties"]["op"]["enum"] == list(CONDITION_OPS)
    assert schema["$defs"]["exit"]["properties"]["type"]["enum"] == list(EXIT_TYPES)
    assert schema["$defs"]["sizing"]["properties"]["mode"]["enum"] == list(SIZING_MODES)
    codes = {code for node in _walk(schema) for code in node.get("x-error-codes", {}).values()}  # type: ignore[attr-defined]
    assert codes <= {code.value for code in ErrorCode}


def test_examples_pass_the_plain_schema_too() -> None:
    validator = Draft202012Validator(get_strategy_schema())
    for slug in example_slugs():
        assert list(validator.iter_errors(get_example(slug))) == []


def test_schema_is_a_fresh_copy_and_follows_limits() -> None:
    first = get_strategy_schema()
    first["title"] = "changed"
    assert get_strategy_schema()["title"] != "changed"
    tight = get_strategy_schema(Limits(max_symbols=3, max_factors=2))
    assert tight["properties"]["universe"]["properties"]["symbols"]["maxItems"] == 3
    assert tight["properties"]["factors"]["maxItems"] == 2


def test_offsets_cannot_be_negative_in_the_published_schema() -> None:
    schema = get_strategy_schema()
    for name in ("field_ref", "factor_ref"):
        assert schema["$defs"][name]["properties"]["offset"]["minimum"] == 0


def test_timeframes_match_the_market_data_store() -> None:
    from packages.domain.market_data.bars import Timeframe

    assert [(tf.value, tf.nanos) for tf in Timeframe] == list(TIMEFRAME_NS.items())
