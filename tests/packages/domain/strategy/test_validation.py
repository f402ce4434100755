"""Validation: every example is valid; planted errors give exactly the expected code and pointer."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import numpy as np
import pytest

from packages.domain.strategy.errors import ERROR_CODE_MEANINGS, ErrorCode
from packages.domain.strategy.examples import example_slugs, get_example
from packages.domain.strategy.limits import Limits
from packages.domain.strategy.pointers import split_pointer
from packages.domain.strategy.validation import symbol_format_checker, validate_strategy
from tests.packages.domain.strategy.schema_agreement import validators_agree

BASE: dict[str, Any] = {
    "dsl_version": "1.0.0",
    "metadata": {"name": "planted errors base"},
    "universe": {"market": "us_stocks", "symbols": ["AAPL", "MSFT", "IBM"]},
    "timeframe": "1h",
    "factors": [
        {"id": "fast", "indicator": "sma", "params": {"period": 10}},
        {"id": "slow", "indicator": "ema", "params": {"period": 30}, "source": "hlc3"},
        {"id": "bb", "indicator": "bbands", "params": {"period": 20, "ma_type": "sma"}},
        {"id": "daily", "indicator": "rsi", "params": {"period": 14}, "timeframe": "1d"},
    ],
    "trade": {
        "long": {
            "entry": {
                "condition": {
                    "op": "all",
                    "conditions": [
                        {"op": "cross_above", "left": {"factor": "fast"}, "right": {"factor": "slow"}},
                        {
                            "op": "gt",
                            "left": {"field": "close", "offset": 1},
                            "right": {"factor": "bb", "output": "middle"},
                        },
                        {
                            "op": "within_bars",
                            "bars": 5,
                            "condition": {"op": "lt", "left": {"factor": "daily"}, "right": 70},
                        },
                    ],
                },
                "order": {
                    "type": "limit",
                    "price": {"reference": "close", "offset": {"unit": "percent", "value": -0.5}},
                    "time_in_force": {"type": "bars", "bars": 3},
                },
            },
            "exits": [
                {
                    "name": "cross_down",
                    "type": "signal",
                    "condition": {
                        "op": "cross_below",
                        "left": {"factor": "fast"},
                        "right": {"factor": "slow"},
                    },
                },
                {
                    "name": "stop",
                    "type": "stop_loss",
                    "distance": {"unit": "atr", "value": 2, "atr_period": 14},
                },
                {"name": "target", "type": "take_profit", "distance": {"unit": "percent", "value": 6}},
            ],
            "sizing": {"mode": "risk_per_trade", "percent": 1},
        },
        "short": {
            "entry": {
                "condition": {
                    "op": "sequence",
                    "within_bars": 6,
                    "steps": [
                        {"op": "gt", "left": {"factor": "daily"}, "right": 70},
                        {
                            "op": "cross_below",
                            "left": {"field": "close"},
                            "right": {"factor": "bb", "output": "upper"},
                        },
                    ],
                }
            },
            "exits": [
                {"name": "trail", "type": "trailing_stop", "distance": {"unit": "percent", "value": 3}},
                {"name": "time", "type": "time_exit", "bars": 24},
            ],
            "sizing": {"mode": "fixed_cash", "cash": 5000},
        },
    },
    "portfolio": {"max_open_positions": 2},
}

LONG = "/trade/long"
ENTRY = "/trade/long/entry/condition"
SHORT_ENTRY = "/trade/short/entry/condition"


def _op(op: str, path: str, value: Any = None) -> dict[str, Any]:
    return {"op": op, "path": path} if op == "remove" else {"op": op, "path": path, "value": value}


def _nested_not(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"op": "gt", "left": {"field": "close"}, "right": 1}
    for _ in range(depth):
        node = {"op": "not", "condition": node}
    return node


def _group(size: int) -> dict[str, Any]:
    return {
        "op": "all",
        "conditions": [{"op": "gt", "left": {"field": "close"}, "right": i} for i in range(size)],
    }


ROTATION = {"rank_by": {"factor": "fast"}, "top_n": 2, "rebalance_every_bars": 5}

# (case id, patch operations, expected [(code, pointer)] in order)
PLANTED: list[tuple[str, list[dict[str, Any]], list[tuple[ErrorCode, str]]]] = [
    ("missing_version", [_op("remove", "/dsl_version")], [(ErrorCode.MISSING_FIELD, "/dsl_version")]),
    (
        "future_version",
        [_op("replace", "/dsl_version", "2.0.0")],
        [(ErrorCode.UNSUPPORTED_DSL_VERSION, "/dsl_version")],
    ),
    (
        "newer_minor_version",
        [_op("replace", "/dsl_version", "1.4.0")],
        [(ErrorCode.UNSUPPORTED_DSL_VERSION, "/dsl_version")],
    ),
    (
        "malformed_version",
        [_op("replace", "/dsl_version", "v1")],
        [(ErrorCode.UNSUPPORTED_DSL_VERSION, "/dsl_version")],
    ),
    ("unknown_root_field", [_op("add", "/strategy", {})], [(ErrorCode.UNKNOWN_FIELD, "/strategy")]),
    ("empty_name", [_op("replace", "/metadata/name", "")], [(ErrorCode.INVALID_VALUE, "/metadata/name")]),
    (
        "bad_market",
        [_op("replace", "/universe/market", "stocks")],
        [(ErrorCode.UNSUPPORTED_MARKET, "/universe/market")],
    ),
    (
        "bad_timeframe",
        [_op("replace", "/timeframe", "3h")],
        [(ErrorCode.UNSUPPORTED_TIMEFRAME, "/timeframe")],
    ),
    (
        "bad_factor_timeframe",
        [_op("replace", "/factors/3/timeframe", "1M")],
        [(ErrorCode.UNSUPPORTED_TIMEFRAME, "/factors/3/timeframe")],
    ),
    (
        "lower_factor_timeframe",
        [_op("replace", "/factors/3/timeframe", "15m")],
        [(ErrorCode.HIGHER_TIMEFRAME_TOO_LOW, "/factors/3/timeframe")],
    ),
    (
        "lowercase_symbol",
        [_op("replace", "/universe/symbols/0", "aapl")],
        [(ErrorCode.UNSUPPORTED_SYMBOL, "/universe/symbols/0")],
    ),
    (
        "symbol_format_for_market",
        [_op("replace", "/universe/symbols/1", "VERYLONGTICKER")],
        [(ErrorCode.UNSUPPORTED_SYMBOL, "/universe/symbols/1")],
    ),
    (
        "duplicate_symbol",
        [_op("replace", "/universe/symbols/2", "AAPL")],
        [(ErrorCode.DUPLICATE_SYMBOL, "/universe/symbols/2")],
    ),
    (
        "too_many_symbols",
        [_op("replace", "/universe/symbols", [f"S{i}" for i in range(101)])],
        [(ErrorCode.LIMIT_EXCEEDED, "/universe/symbols")],
    ),
    (
        "duplicate_factor_id",
        [_op("add", "/factors/-", {"id": "fast", "indicator": "wma"})],
        [(ErrorCode.DUPLICATE_ID, "/factors/4/id")],
    ),
    (
        "uppercase_factor_id",
        [_op("replace", "/factors/2/id", "BB")],
        [(ErrorCode.INVALID_VALUE, "/factors/2/id")],
    ),
    (
        "unknown_indicator",
        [_op("replace", "/factors/0/indicator", "smaa")],
        [(ErrorCode.UNKNOWN_INDICATOR, "/factors/0/indicator")],
    ),
    (
        "unknown_parameter",
        [_op("add", "/factors/0/params/length", 10)],
        [(ErrorCode.UNKNOWN_PARAMETER, "/factors/0/params/length")],
    ),
    (
        "period_too_small",
        [_op("replace", "/factors/3/params/period", 1)],
        [(ErrorCode.PARAM_OUT_OF_RANGE, "/factors/3/params/period")],
    ),
    (
        "period_too_large",
        [_op("replace", "/factors/0/params/period", 100_000)],
        [(ErrorCode.PARAM_OUT_OF_RANGE, "/factors/0/params/period")],
    ),
    (
        "period_as_text",
        [_op("replace", "/factors/0/params/period", "ten")],
        [(ErrorCode.INVALID_TYPE, "/factors/0/params/period")],
    ),
    (
        "fractional_period",
        [_op("replace", "/factors/0/params/period", 10.5)],
        [(ErrorCode.INVALID_TYPE, "/factors/0/params/period")],
    ),
    (
        "bad_ma_type",
        [_op("replace", "/factors/2/params/ma_type", "simple")],
        [(ErrorCode.INVALID_VALUE, "/factors/2/params/ma_type")],
    ),
    (
        "macd_fast_not_below_slow",
        [
            _op(
                "add",
                "/factors/-",
                {"id": "m", "indicator": "macd", "params": {"fast_period": 30, "slow_period": 10}},
            )
        ],
        [(ErrorCode.PARAM_CONFLICT, "/factors/4/params/fast_period")],
    ),
    (
        "source_on_fixed_input_indicator",
        [_op("add", "/factors/-", {"id": "range", "indicator": "atr", "source": "open"})],
        [(ErrorCode.SOURCE_NOT_APPLICABLE, "/factors/4/source")],
    ),
    (
        "too_many_factors",
        [_op("replace", "/factors", [{"id": f"f{i}", "indicator": "sma"} for i in range(65)])],
        [(ErrorCode.LIMIT_EXCEEDED, "/factors")],
    ),
    (
        "unknown_factor_reference",
        [_op("replace", f"{ENTRY}/conditions/0/left/factor", "fastt")],
        [(ErrorCode.UNKNOWN_FACTOR_REFERENCE, f"{ENTRY}/conditions/0/left/factor")],
    ),
    (
        "bad_output_name",
        [_op("replace", f"{ENTRY}/conditions/1/right/output", "mid")],
        [(ErrorCode.BAD_OUTPUT_NAME, f"{ENTRY}/conditions/1/right/output")],
    ),
    (
        "missing_output_of_multi_output_factor",
        [_op("remove", f"{ENTRY}/conditions/1/right/output")],
        [(ErrorCode.BAD_OUTPUT_NAME, f"{ENTRY}/conditions/1/right/output")],
    ),
    (
        "output_on_single_output_factor",
        [_op("add", f"{ENTRY}/conditions/0/left/output", "upper")],
        [(ErrorCode.BAD_OUTPUT_NAME, f"{ENTRY}/conditions/0/left/output")],
    ),
    (
        "negative_offset_is_lookahead",
        [_op("replace", f"{ENTRY}/conditions/1/left/offset", -1)],
        [(ErrorCode.LOOKAHEAD_OFFSET, f"{ENTRY}/conditions/1/left/offset")],
    ),
    (
        "offset_too_long",
        [_op("replace", f"{ENTRY}/conditions/1/left/offset", 5_000)],
        [(ErrorCode.TEMPORAL_WINDOW_TOO_LONG, f"{ENTRY}/conditions/1/left/offset")],
    ),
    (
        "within_bars_too_long",
        [_op("replace", f"{ENTRY}/conditions/2/bars", 5_000)],
        [(ErrorCode.TEMPORAL_WINDOW_TOO_LONG, f"{ENTRY}/conditions/2/bars")],
    ),
    (
        "total_lookback_too_long",
        [_op("replace", "/factors/3/timeframe", "1w"), _op("replace", "/factors/3/params/period", 2_000)],
        [(ErrorCode.TEMPORAL_WINDOW_TOO_LONG, ENTRY), (ErrorCode.TEMPORAL_WINDOW_TOO_LONG, SHORT_ENTRY)],
    ),
    ("no_trade_side", [_op("replace", "/trade", {})], [(ErrorCode.NO_TRADE_SIDE, "/trade")]),
    ("missing_entry_condition", [_op("remove", f"{ENTRY}")], [(ErrorCode.MISSING_FIELD, ENTRY)]),
    (
        "unknown_operator",
        [_op("replace", f"{ENTRY}/conditions/0/op", "above")],
        [(ErrorCode.INVALID_VALUE, f"{ENTRY}/conditions/0/op")],
    ),
    (
        "missing_right_operand",
        [_op("remove", f"{ENTRY}/conditions/0/right")],
        [(ErrorCode.MISSING_FIELD, f"{ENTRY}/conditions/0/right")],
    ),
    (
        "operand_as_text",
        [_op("replace", f"{ENTRY}/conditions/0/left", "close")],
        [(ErrorCode.INVALID_TYPE, f"{ENTRY}/conditions/0/left")],
    ),
    (
        "boolean_window",
        [_op("replace", f"{ENTRY}/conditions/2/bars", True)],
        [(ErrorCode.INVALID_TYPE, f"{ENTRY}/conditions/2/bars")],
    ),
    (
        "literal_too_large",
        [_op("replace", f"{ENTRY}/conditions/2/condition/right", 1e15)],
        [(ErrorCode.LIMIT_EXCEEDED, f"{ENTRY}/conditions/2/condition/right")],
    ),
    (
        "cross_between_numbers",
        [_op("replace", f"{ENTRY}/conditions/0", {"op": "cross_above", "left": 1, "right": 2})],
        [(ErrorCode.INVALID_VALUE, f"{ENTRY}/conditions/0")],
    ),
    (
        "conditions_nested_too_deep",
        [_op("replace", f"{ENTRY}/conditions/2", _nested_not(11))],
        [(ErrorCode.LIMIT_EXCEEDED, f"{ENTRY}/conditions/2" + "/condition" * 9)],
    ),
    (
        "too_many_condition_nodes",
        [_op("replace", f"{ENTRY}/conditions", [_group(120), _group(120), _group(20)])],
        [(ErrorCode.LIMIT_EXCEEDED, f"{ENTRY}/conditions/2/conditions/12")],
    ),
    (
        "bars_since_without_bounds",
        [
            _op(
                "replace",
                f"{ENTRY}/conditions/2",
                {"op": "bars_since", "condition": {"op": "gt", "left": {"field": "close"}, "right": 1}},
            )
        ],
        [(ErrorCode.MISSING_FIELD, f"{ENTRY}/conditions/2")],
    ),
    (
        "bars_since_min_above_max",
        [
            _op(
                "replace",
                f"{ENTRY}/conditions/2",
                {
                    "op": "bars_since",
                    "min": 9,
                    "max": 3,
                    "condition": {"op": "gt", "left": {"field": "close"}, "right": 1},
                },
            )
        ],
        [(ErrorCode.PARAM_CONFLICT, f"{ENTRY}/conditions/2/min")],
    ),
    (
        "sequence_window_shorter_than_steps",
        [
            _op("add", f"{SHORT_ENTRY}/steps/-", {"op": "lt", "left": {"field": "close"}, "right": 100}),
            _op("replace", f"{SHORT_ENTRY}/within_bars", 2),
        ],
        [(ErrorCode.PARAM_CONFLICT, f"{SHORT_ENTRY}/within_bars")],
    ),
    (
        "market_order_with_price",
        [_op("replace", f"{LONG}/entry/order/type", "market")],
        [
            (ErrorCode.UNKNOWN_FIELD, f"{LONG}/entry/order/price"),
            (ErrorCode.UNKNOWN_FIELD, f"{LONG}/entry/order/time_in_force"),
        ],
    ),
    (
        "limit_order_without_price",
        [_op("remove", f"{LONG}/entry/order/price")],
        [(ErrorCode.MISSING_FIELD, f"{LONG}/entry/order/price")],
    ),
    (
        "gtc_with_bars",
        [_op("replace", f"{LONG}/entry/order/time_in_force/type", "gtc")],
        [(ErrorCode.UNKNOWN_FIELD, f"{LONG}/entry/order/time_in_force/bars")],
    ),
    (
        "unknown_exit_type",
        [_op("replace", f"{LONG}/exits/1/type", "stop")],
        [(ErrorCode.INVALID_VALUE, f"{LONG}/exits/1/type")],
    ),
    (
        "zero_take_profit",
        [_op("replace", f"{LONG}/exits/2/distance/value", 0)],
        [(ErrorCode.CONTRADICTORY_EXITS, f"{LONG}/exits/2/distance/value")],
    ),
    (
        "negative_take_profit",
        [_op("replace", f"{LONG}/exits/2/distance/value", -5)],
        [(ErrorCode.CONTRADICTORY_EXITS, f"{LONG}/exits/2/distance/value")],
    ),
    (
        "two_stop_losses",
        [
            _op(
                "add",
                f"{LONG}/exits/-",
                {"name": "stop2", "type": "stop_loss", "distance": {"unit": "percent", "value": 3}},
            )
        ],
        [(ErrorCode.CONTRADICTORY_EXITS, f"{LONG}/exits/3/type")],
    ),
    (
        "bracket_with_stop_and_target",
        [
            _op(
                "add",
                f"{LONG}/exits/-",
                {"name": "rr", "type": "bracket", "stop": {"unit": "percent", "value": 2}, "reward_ratio": 2},
            )
        ],
        [
            (ErrorCode.CONTRADICTORY_EXITS, f"{LONG}/exits/1/type"),
            (ErrorCode.CONTRADICTORY_EXITS, f"{LONG}/exits/2/type"),
        ],
    ),
    (
        "long_stop_of_100_percent",
        [_op("replace", f"{LONG}/exits/1/distance", {"unit": "percent", "value": 100})],
        [(ErrorCode.CONTRADICTORY_EXITS, f"{LONG}/exits/1/distance/value")],
    ),
    (
        "short_target_of_100_percent",
        [
            _op(
                "add",
                "/trade/short/exits/-",
                {"name": "tp", "type": "take_profit", "distance": {"unit": "percent", "value": 120}},
            )
        ],
        [(ErrorCode.CONTRADICTORY_EXITS, "/trade/short/exits/2/distance/value")],
    ),
    (
        "zero_reward_ratio",
        [
            _op(
                "replace",
                "/trade/short/exits/1",
                {"name": "rr", "type": "bracket", "stop": {"unit": "points", "value": 1}, "reward_ratio": 0},
            )
        ],
        [(ErrorCode.CONTRADICTORY_EXITS, "/trade/short/exits/1/reward_ratio")],
    ),
    (
        "fixed_stop_behind_trailing_stop",
        [
            _op(
                "add",
                "/trade/short/exits/-",
                {"name": "stop", "type": "stop_loss", "distance": {"unit": "percent", "value": 5}},
            )
        ],
        [(ErrorCode.CONTRADICTORY_EXITS, "/trade/short/exits/2/distance/value")],
    ),
    (
        "duplicate_exit_name",
        [_op("replace", f"{LONG}/exits/2/name", "stop")],
        [(ErrorCode.DUPLICATE_ID, f"{LONG}/exits/2/name")],
    ),
    (
        "atr_period_on_percent_distance",
        [_op("add", f"{LONG}/exits/2/distance/atr_period", 14)],
        [(ErrorCode.UNKNOWN_FIELD, f"{LONG}/exits/2/distance/atr_period")],
    ),
    (
        "risk_sizing_without_stop",
        [_op("remove", f"{LONG}/exits/1")],
        [(ErrorCode.RISK_SIZING_WITHOUT_STOP, f"{LONG}/sizing/mode")],
    ),
    (
        "side_without_exit",
        [_op("replace", "/trade/short/exits", [])],
        [(ErrorCode.NO_EXIT, "/trade/short/exits")],
    ),
    (
        "percent_equity_above_100",
        [_op("replace", "/trade/short/sizing", {"mode": "percent_equity", "percent": 150})],
        [(ErrorCode.PARAM_OUT_OF_RANGE, "/trade/short/sizing/percent")],
    ),
    (
        "sizing_field_of_other_mode",
        [_op("replace", "/trade/short/sizing/mode", "fixed_quantity")],
        [
            (ErrorCode.MISSING_FIELD, "/trade/short/sizing/quantity"),
            (ErrorCode.UNKNOWN_FIELD, "/trade/short/sizing/cash"),
        ],
    ),
    (
        "rotation_top_n_covers_universe",
        [
            _op("add", "/portfolio/rotation", {**ROTATION, "top_n": 3}),
            _op("replace", "/portfolio/max_open_positions", 3),
        ],
        [(ErrorCode.PARAM_CONFLICT, "/portfolio/rotation/top_n")],
    ),
    (
        "rotation_unknown_factor",
        [_op("add", "/portfolio/rotation", {**ROTATION, "rank_by": {"factor": "momentum"}})],
        [(ErrorCode.UNKNOWN_FACTOR_REFERENCE, "/portfolio/rotation/rank_by/factor")],
    ),
    (
        "max_open_below_top_n",
        [_op("add", "/portfolio/rotation", ROTATION), _op("replace", "/portfolio/max_open_positions", 1)],
        [(ErrorCode.PARAM_CONFLICT, "/portfolio/max_open_positions")],
    ),
]


def _planted(operations: list[dict[str, Any]]) -> Any:
    return jsonpatch.apply_patch(copy.deepcopy(BASE), operations)


def test_base_document_is_valid() -> None:
    assert validate_strategy(BASE) == []


def test_planted_error_table_is_large_and_covers_every_code() -> None:
    assert len(PLANTED) >= 30
    covered = {code for _, _, expected in PLANTED for code, _ in expected}
    assert set(ErrorCode) <= covered
    assert set(ERROR_CODE_MEANINGS) == set(ErrorCode)


@pytest.mark.parametrize(
    ("operations", "expected"), [(ops, exp) for _, ops, exp in PLANTED], ids=[c for c, _, _ in PLANTED]
)
def test_planted_error(operations: list[dict[str, Any]], expected: list[tuple[ErrorCode, str]]) -> None:
    issues = validate_strategy(_planted(operations))
    assert [(issue.code, issue.pointer) for issue in issues] == expected, [
        issue.to_dict() for issue in issues
    ]
    for issue in issues:
        assert issue.message.strip()
        json.dumps(issue.to_dict())


@pytest.mark.parametrize("operations", [ops for _, ops, _ in PLANTED], ids=[c for c, _, _ in PLANTED])
def test_both_schema_validators_agree_on_every_planted_error(operations: list[dict[str, Any]]) -> None:
    assert validators_agree(_planted(operations))


def test_every_error_is_reported_not_only_the_first() -> None:
    document = _planted(
        [
            _op("replace", "/factors/0/indicator", "smaa"),
            _op("replace", f"{ENTRY}/conditions/1/right/output", "mid"),
            _op("replace", "/trade/short/exits", []),
            _op("replace", "/universe/symbols/2", "AAPL"),
        ]
    )
    codes = sorted(issue.code.value for issue in validate_strategy(document))
    assert codes == sorted(["UNKNOWN_INDICATOR", "BAD_OUTPUT_NAME", "NO_EXIT", "DUPLICATE_SYMBOL"])
    schema_errors = _planted(
        [_op("replace", "/timeframe", "3h"), _op("add", "/extra", 1), _op("remove", "/metadata/name")]
    )
    assert {(i.code, i.pointer) for i in validate_strategy(schema_errors)} == {
        (ErrorCode.UNSUPPORTED_TIMEFRAME, "/timeframe"),
        (ErrorCode.UNKNOWN_FIELD, "/extra"),
        (ErrorCode.MISSING_FIELD, "/metadata/name"),
    }


@pytest.mark.parametrize(
    ("document", "code", "pointer"),
    [
        ([], ErrorCode.INVALID_TYPE, ""),
        (None, ErrorCode.INVALID_TYPE, ""),
        ({**BASE, "timeframe": float("nan")}, ErrorCode.INVALID_VALUE, "/timeframe"),
        ({**BASE, "metadata": {"name": "x", 3: "y"}}, ErrorCode.INVALID_TYPE, "/metadata"),
        ({**BASE, "metadata": {"name": {1, 2}}}, ErrorCode.INVALID_TYPE, "/metadata/name"),
        ({**BASE, "metadata": {"name": "x" * 5_000}}, ErrorCode.LIMIT_EXCEEDED, "/metadata/name"),
    ],
)
def test_non_json_input(document: Any, code: ErrorCode, pointer: str) -> None:
    issues = validate_strategy(document)
    assert [(issue.code, issue.pointer) for issue in issues] == [(code, pointer)]


def test_documents_too_deep_or_too_large_are_refused_before_the_schema() -> None:
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    issues = validate_strategy({**BASE, "x-deep": deep})
    assert [issue.code for issue in issues] == [ErrorCode.LIMIT_EXCEEDED]
    assert len(split_pointer(issues[0].pointer)) == 40
    wide = {**BASE, "x-wide": list(range(30_000))}
    assert [(i.code, i.pointer) for i in validate_strategy(wide)] == [(ErrorCode.LIMIT_EXCEEDED, "")]


def test_symbol_checker_is_injected() -> None:
    available = {("us_stocks", "AAPL"), ("us_stocks", "MSFT")}
    issues = validate_strategy(BASE, symbol_checker=lambda market, symbol: (market, symbol) in available)
    assert [(i.code, i.pointer) for i in issues] == [(ErrorCode.UNSUPPORTED_SYMBOL, "/universe/symbols/2")]


@pytest.mark.parametrize(
    ("market", "symbol", "accepted"),
    [
        ("us_stocks", "BRK.B", True),
        ("us_stocks", "SPX", True),
        ("forex", "EURUSD", True),
        ("forex", "EUR/USD", True),
        ("forex", "EURUSDX", False),
        ("crypto", "BTC/USDT", True),
        ("crypto", "BTCUSDT", True),
        ("futures", "ES=F", True),
        ("us_stocks", "1ABC", False),
    ],
)
def test_default_symbol_format_checker(market: str, symbol: str, accepted: bool) -> None:
    assert symbol_format_checker(market, symbol) is accepted


def test_custom_limits_are_enforced() -> None:
    tight = Limits(max_symbols=2, max_condition_depth=2)
    issues = validate_strategy(BASE, limits=tight)
    assert (ErrorCode.LIMIT_EXCEEDED, "/universe/symbols") in [(i.code, i.pointer) for i in issues]
    issues = validate_strategy(_planted([_op("replace", "/universe/symbols", ["AAPL"])]), limits=tight)
    assert [(i.code, i.pointer) for i in issues] == [
        (ErrorCode.LIMIT_EXCEEDED, f"{ENTRY}/conditions/2/condition")
    ]


@pytest.mark.parametrize("slug", example_slugs())
def test_every_example_is_valid(slug: str) -> None:
    assert validate_strategy(get_example(slug)) == []


def test_client_annotations_are_allowed_at_the_root() -> None:
    assert validate_strategy({**BASE, "x-ui": {"colour": "blue"}}) == []


def test_values_the_compiled_validator_cannot_take_are_still_judged() -> None:
    # Numpy scalars come from Python callers; they must not raise.
    as_numpy, as_float = copy.deepcopy(BASE), copy.deepcopy(BASE)
    as_numpy["factors"][0]["params"]["period"] = np.float64(12.0)
    as_float["factors"][0]["params"]["period"] = 12.0
    assert validate_strategy(as_numpy) == validate_strategy(as_float) == []


@pytest.mark.parametrize(
    ("raw", "pointer"),
    [
        # JSON escapes of lone surrogates survive json.loads as unencodable code points.
        ('{"x-\\udc80": 1}', ""),
        ('{"metadata": {"name": "a\\ud800b"}}', "/metadata/name"),
        ('{"universe": {"market": "us_stocks", "symbols": ["AAPL", "\\udfff"]}}', "/universe/symbols/1"),
        ('{"metadata": {"name": "ok", "x-\\ud83d": {"deeper": "\\ud800"}}}', "/metadata"),
    ],
)
def test_lone_surrogates_are_invalid_text(raw: str, pointer: str) -> None:
    document = {**copy.deepcopy(BASE), **json.loads(raw)}
    issues = validate_strategy(document)
    assert [(i.code, i.pointer) for i in issues] == [(ErrorCode.INVALID_VALUE, pointer)]
    # The report itself must be writable as UTF-8 (it is served as JSON).
    json.dumps([i.to_dict() for i in issues], ensure_ascii=False).encode("utf-8")


def test_a_surrogate_pair_is_one_character_and_valid() -> None:
    document = copy.deepcopy(BASE)
    document["metadata"]["name"] = json.loads('"rocket \\ud83d\\ude80"')
    assert validate_strategy(document) == []
