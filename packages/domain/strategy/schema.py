"""The strategy language as a JSON Schema (draft 2020-12), built in code.

``get_strategy_schema()`` returns the published document. Besides standard keywords, schema nodes
carry two annotations that validators ignore and our error mapping reads:

- ``x-error-codes``: ``{keyword: error code}`` when a failing keyword has a more specific meaning
  than its default code (e.g. ``minimum`` on an offset means look-ahead);
- ``x-expected``: what the value should look like, used in type-error messages.

Discriminated forms (condition nodes by ``op``, exits by ``type``, sizing by ``mode``) are written
as ``if``/``then`` branches rather than ``oneOf`` so that an error points at the exact field.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from packages.domain.strategy.errors import ErrorCode
from packages.domain.strategy.limits import DEFAULT_LIMITS, Limits
from packages.domain.strategy.vocabulary import (
    COMPARISON_OPS,
    CONDITION_OPS,
    CROSS_OPS,
    DISTANCE_UNITS,
    DSL_VERSION,
    EXIT_TYPES,
    GROUP_OPS,
    MARKETS,
    ORDER_TYPES,
    PRICE_FIELDS,
    SERIES_FIELDS,
    SIZING_MODES,
    TIME_IN_FORCE_TYPES,
    TIMEFRAMES,
)

JsonSchema = dict[str, Any]
SchemaNode = JsonSchema | bool  # ``True`` accepts anything: "allowed here, validated elsewhere"

SCHEMA_ID = "urn:minsy:strategy-dsl"
IDENTIFIER_PATTERN = "^[a-z][a-z0-9_]{0,47}$"
SEMVER_PATTERN = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"
# Broad format gate for every market; per-market availability is checked by the symbol checker.
SYMBOL_PATTERN = r"^[A-Z0-9][A-Z0-9._/\-^=]{0,31}$"
MAX_REWARD_RATIO = 100.0
MAX_ATR_PERIOD = 1_000
MAX_TARGET_VOLATILITY_PERCENT = 1_000.0
# Distances in percent of the price and in ATRs have bounds of their own: 1,000% is eleven times
# the price and 100 ATRs is far beyond any stop or offset that can mean something. Points are
# prices, so only the literal cap bounds them.
MAX_PERCENT_DISTANCE = 1_000.0
MAX_ATR_MULTIPLE = 100.0
# A percent offset of -100 or less puts an order's price at or below zero.
MIN_PERCENT_OFFSET = -100.0


def _ref(name: str) -> JsonSchema:
    return {"$ref": f"#/$defs/{name}"}


def _codes(**codes: ErrorCode) -> dict[str, str]:
    return {keyword: code.value for keyword, code in codes.items()}


def _object(
    properties: dict[str, JsonSchema],
    required: list[str] | None = None,
    description: str | None = None,
    **extra: Any,
) -> JsonSchema:
    schema: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    schema.update(extra)
    return schema


def _branch(discriminator: str, values: tuple[str, ...] | list[str], then: JsonSchema) -> JsonSchema:
    """``if discriminator in values then ...``; non-objects never match, so they get one type error."""
    return {
        "if": {
            "type": "object",
            "properties": {discriminator: {"enum": list(values)}},
            "required": [discriminator],
        },
        "then": then,
    }


def _closed(
    discriminator: str, properties: dict[str, SchemaNode], required: list[str], hint: str
) -> JsonSchema:
    """Branch body listing exactly the fields this variant takes."""
    return {
        "properties": {discriminator: True, **properties},
        "required": required,
        "additionalProperties": False,
        "x-hint": hint,
    }


def _bounded_int(low: int, high: int, description: str, **codes: ErrorCode) -> JsonSchema:
    schema: JsonSchema = {"type": "integer", "minimum": low, "maximum": high, "description": description}
    if codes:
        schema["x-error-codes"] = _codes(**codes)
    return schema


def _build(limits: Limits) -> JsonSchema:
    magnitude = limits.max_literal_magnitude
    window_too_long = ErrorCode.TEMPORAL_WINDOW_TOO_LONG
    offset = {
        "type": "integer",
        "minimum": 0,
        "maximum": limits.max_offset_bars,
        "default": 0,
        "description": "Bars to look back (0 = the current bar). Only past bars can be read.",
        "x-error-codes": _codes(minimum=ErrorCode.LOOKAHEAD_OFFSET, maximum=window_too_long),
    }
    timeframe = {
        "type": "string",
        "enum": list(TIMEFRAMES),
        "x-error-codes": _codes(enum=ErrorCode.UNSUPPORTED_TIMEFRAME),
    }
    literal = {
        "type": "number",
        "minimum": -magnitude,
        "maximum": magnitude,
        "description": "A constant.",
        "x-error-codes": _codes(minimum=ErrorCode.LIMIT_EXCEEDED, maximum=ErrorCode.LIMIT_EXCEEDED),
    }
    operand_forms = 'a number, {"field": "close"} or {"factor": "<factor id>", "output": "<name>"}'
    defs: dict[str, JsonSchema] = {
        "factor": _object(
            {
                "id": {
                    "type": "string",
                    "pattern": IDENTIFIER_PATTERN,
                    "description": "Unique name used by operands: lowercase letters, digits and _, starting with a letter.",
                },
                "indicator": {
                    "type": "string",
                    "pattern": IDENTIFIER_PATTERN,
                    "description": "Name of a catalogue indicator (e.g. sma, rsi, bbands).",
                },
                "params": {
                    "type": "object",
                    "maxProperties": 16,
                    "additionalProperties": {
                        "type": ["number", "string"],
                        "x-expected": "a number (or a moving-average type name)",
                    },
                    "description": "Indicator parameters by name; omitted ones take the catalogue default.",
                },
                "source": {
                    "type": "string",
                    "enum": list(SERIES_FIELDS),
                    "description": "Series the indicator reads, for indicators with a single price input (default close).",
                },
                "timeframe": {
                    **timeframe,
                    "description": (
                        "Compute on this higher timeframe; each value becomes visible at the first bar "
                        "opening at or after the close of the higher-timeframe bar."
                    ),
                },
                "description": {"type": "string", "maxLength": 512},
            },
            ["id", "indicator"],
            "An indicator instance.",
        ),
        "operand": {
            "description": f"A value compared by a condition: {operand_forms}.",
            "if": {"type": "number"},
            "then": _ref("literal"),
            "else": {
                "if": {"type": "object", "required": ["factor"]},
                "then": _ref("factor_ref"),
                "else": _ref("field_ref"),
            },
        },
        "literal": literal,
        "field_ref": _object(
            {
                "field": {"type": "string", "enum": list(SERIES_FIELDS)},
                "offset": offset,
            },
            ["field"],
            "A bar field of the strategy timeframe.",
            **{"x-expected": operand_forms},
        ),
        "factor_ref": _object(
            {
                "factor": {"type": "string", "pattern": IDENTIFIER_PATTERN},
                "output": {
                    "type": "string",
                    "pattern": IDENTIFIER_PATTERN,
                    "description": "Output name; required when the indicator has several outputs.",
                },
                "offset": {
                    **offset,
                    "description": "Bars of the factor's own timeframe to look back (0 = latest visible value).",
                },
            },
            ["factor"],
            "A factor output.",
            **{"x-expected": operand_forms},
        ),
        "condition": {
            "type": "object",
            "description": "A condition node, discriminated by op.",
            "x-expected": 'a condition object such as {"op": "gt", "left": ..., "right": ...}',
            "properties": {"op": {"type": "string", "enum": list(CONDITION_OPS)}},
            "required": ["op"],
            "allOf": [
                _branch(
                    "op",
                    GROUP_OPS,
                    _closed(
                        "op",
                        {
                            "conditions": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": limits.max_condition_nodes,
                                "items": _ref("condition"),
                            }
                        },
                        ["conditions"],
                        "all/any take a list 'conditions'.",
                    ),
                ),
                _branch(
                    "op",
                    ["not"],
                    _closed(
                        "op", {"condition": _ref("condition")}, ["condition"], "not takes one 'condition'."
                    ),
                ),
                _branch(
                    "op",
                    [*COMPARISON_OPS, *CROSS_OPS],
                    _closed(
                        "op",
                        {"left": _ref("operand"), "right": _ref("operand")},
                        ["left", "right"],
                        "comparisons and crosses take 'left' and 'right' operands.",
                    ),
                ),
                _branch(
                    "op",
                    ["within_bars"],
                    _closed(
                        "op",
                        {
                            "condition": _ref("condition"),
                            "bars": _bounded_int(
                                1,
                                limits.max_temporal_window,
                                "True when the condition was true on any of the last 'bars' bars (current included).",
                                maximum=window_too_long,
                            ),
                        },
                        ["condition", "bars"],
                        "within_bars takes 'condition' and 'bars'.",
                    ),
                ),
                _branch(
                    "op",
                    ["bars_since"],
                    _closed(
                        "op",
                        {
                            "condition": _ref("condition"),
                            "min": _bounded_int(
                                0,
                                limits.max_temporal_window,
                                "At least this many bars since the condition was last true (0 = true now).",
                                maximum=window_too_long,
                            ),
                            "max": _bounded_int(
                                0,
                                limits.max_temporal_window,
                                "At most this many bars since the condition was last true.",
                                maximum=window_too_long,
                            ),
                        },
                        ["condition"],
                        "bars_since takes 'condition' and at least one of 'min' and 'max'.",
                    )
                    | {
                        "anyOf": [{"required": ["min"]}, {"required": ["max"]}],
                        "x-error-codes": _codes(anyOf=ErrorCode.MISSING_FIELD),
                    },
                ),
                _branch(
                    "op",
                    ["sequence"],
                    _closed(
                        "op",
                        {
                            "steps": {
                                "type": "array",
                                "minItems": 2,
                                "maxItems": 8,
                                "items": _ref("condition"),
                                "description": "Conditions that must become true in this order, each on a later bar.",
                            },
                            "within_bars": _bounded_int(
                                2,
                                limits.max_temporal_window,
                                "The whole sequence, first step to last, fits in this many bars.",
                                maximum=window_too_long,
                            ),
                        },
                        ["steps", "within_bars"],
                        "sequence takes 'steps' (a list of conditions) and 'within_bars'.",
                    ),
                ),
            ],
        },
        "distance": {
            "type": "object",
            "description": "A price distance: percent of the price, absolute points, or a multiple of ATR(atr_period).",
            "properties": {
                "unit": {"type": "string", "enum": list(DISTANCE_UNITS)},
                "value": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": magnitude,
                    "description": (
                        f"Size of the distance in its unit (percent: 2 means 2%, up to {MAX_PERCENT_DISTANCE:g}; "
                        f"atr: a multiple of ATR, up to {MAX_ATR_MULTIPLE:g})."
                    ),
                    "x-error-codes": _codes(
                        exclusiveMinimum=ErrorCode.CONTRADICTORY_EXITS, maximum=ErrorCode.LIMIT_EXCEEDED
                    ),
                },
                "atr_period": _bounded_int(1, MAX_ATR_PERIOD, "ATR window for unit 'atr' (default 14)."),
            },
            "required": ["unit", "value"],
            "allOf": [
                _not_atr_branch(),
                _unit_bound("percent", {"maximum": MAX_PERCENT_DISTANCE}),
                _unit_bound("atr", {"maximum": MAX_ATR_MULTIPLE}),
            ],
            "additionalProperties": False,
        },
        "price_offset": {
            "type": "object",
            "description": "Signed offset from the reference price: negative below, positive above.",
            "properties": {
                "unit": {"type": "string", "enum": list(DISTANCE_UNITS)},
                "value": {
                    "type": "number",
                    "minimum": -magnitude,
                    "maximum": magnitude,
                    "x-error-codes": _codes(
                        minimum=ErrorCode.LIMIT_EXCEEDED, maximum=ErrorCode.LIMIT_EXCEEDED
                    ),
                },
                "atr_period": _bounded_int(1, MAX_ATR_PERIOD, "ATR window for unit 'atr' (default 14)."),
            },
            "required": ["unit", "value"],
            "allOf": [
                _not_atr_branch(),
                _unit_bound(
                    "percent",
                    {"exclusiveMinimum": MIN_PERCENT_OFFSET, "maximum": MAX_PERCENT_DISTANCE},
                    "An offset of -100% or less would put the order price at or below zero.",
                ),
                _unit_bound("atr", {"minimum": -MAX_ATR_MULTIPLE, "maximum": MAX_ATR_MULTIPLE}),
            ],
            "additionalProperties": False,
        },
        "order": {
            "type": "object",
            "description": "How the entry signal becomes an order; market orders fill at the next bar's open.",
            "properties": {
                "type": {"type": "string", "enum": list(ORDER_TYPES)},
                "price": _object(
                    {
                        "reference": {"type": "string", "enum": list(PRICE_FIELDS)},
                        "offset": _ref("price_offset"),
                    },
                    ["reference", "offset"],
                    "Limit/stop price: the reference field at the signal bar plus the offset.",
                ),
                "time_in_force": {
                    "type": "object",
                    "description": "How long the order works: {'type': 'bars', 'bars': N} or {'type': 'gtc'}.",
                    "properties": {"type": {"type": "string", "enum": list(TIME_IN_FORCE_TYPES)}},
                    "required": ["type"],
                    "allOf": [
                        _branch(
                            "type",
                            ["bars"],
                            _closed(
                                "type",
                                {
                                    "bars": _bounded_int(
                                        1, limits.max_order_valid_bars, "Bars the order stays working."
                                    )
                                },
                                ["bars"],
                                "time_in_force 'bars' takes 'bars'.",
                            ),
                        ),
                        _branch(
                            "type",
                            ["gtc"],
                            _closed("type", {}, [], "time_in_force 'gtc' takes no other field."),
                        ),
                    ],
                },
            },
            "required": ["type"],
            "allOf": [
                _branch(
                    "type",
                    ["market"],
                    _closed("type", {}, [], "market orders take no price or time_in_force."),
                ),
                _branch(
                    "type",
                    ["limit", "stop"],
                    _closed(
                        "type",
                        {"price": True, "time_in_force": True},
                        ["price"],
                        "limit and stop orders need a 'price'.",
                    ),
                ),
            ],
            "additionalProperties": False,
        },
        "entry": _object(
            {"condition": _ref("condition"), "order": _ref("order")},
            ["condition"],
            "When to enter (evaluated at each bar's close) and with which order (default market).",
        ),
        "exit": {
            "type": "object",
            "description": "A named exit rule; the name is reported as the trade's exit reason.",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "type": {"type": "string", "enum": list(EXIT_TYPES)},
            },
            "required": ["name", "type"],
            "allOf": _exit_branches(limits),
        },
        "sizing": {
            "type": "object",
            "description": "How much to buy or sell on each entry.",
            "properties": {"mode": {"type": "string", "enum": list(SIZING_MODES)}},
            "required": ["mode"],
            "allOf": _sizing_branches(limits),
        },
        "side": _object(
            {
                "entry": _ref("entry"),
                "exits": {
                    "type": "array",
                    "maxItems": limits.max_exits_per_side,
                    "items": _ref("exit"),
                    "description": "Exit rules; whichever triggers first closes the position.",
                },
                "sizing": _ref("sizing"),
            },
            ["entry", "sizing"],
            "One trading direction.",
        ),
        "rotation": _object(
            {
                "rank_by": _ref("factor_ref"),
                "top_n": _bounded_int(1, limits.max_symbols, "How many of the best-ranked symbols to hold."),
                "rebalance_every_bars": _bounded_int(
                    1, limits.max_time_exit_bars, "Bars between rebalances."
                ),
            },
            ["rank_by", "top_n", "rebalance_every_bars"],
            "Rank the universe by a factor (higher is better), hold the top N, rebalance every K bars.",
        ),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID}:{DSL_VERSION}",
        "title": "Minsy strategy",
        "description": (
            "A trading strategy as data: universe, timeframe, indicator factors, entry/exit conditions, "
            "orders, sizing and portfolio rules. Values at a bar use only information available at that "
            "bar's close; look-ahead cannot be expressed."
        ),
        "type": "object",
        "properties": {
            "dsl_version": {
                "type": "string",
                "pattern": SEMVER_PATTERN,
                "description": f"Version of this language the document is written in (current {DSL_VERSION}).",
                "x-error-codes": _codes(pattern=ErrorCode.UNSUPPORTED_DSL_VERSION),
            },
            "metadata": _object(
                {
                    "name": {"type": "string", "minLength": 1, "maxLength": 128},
                    "description": {"type": "string", "maxLength": 4_000},
                },
                ["name"],
            ),
            "universe": _object(
                {
                    "market": {
                        "type": "string",
                        "enum": list(MARKETS),
                        "x-error-codes": _codes(enum=ErrorCode.UNSUPPORTED_MARKET),
                    },
                    "symbols": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": limits.max_symbols,
                        "items": {
                            "type": "string",
                            "pattern": SYMBOL_PATTERN,
                            "x-error-codes": _codes(pattern=ErrorCode.UNSUPPORTED_SYMBOL),
                        },
                    },
                },
                ["market", "symbols"],
                "What is traded; all symbols share one bar index.",
            ),
            "timeframe": {**timeframe, "description": "Bar length the strategy runs on."},
            "factors": {
                "type": "array",
                "maxItems": limits.max_factors,
                "items": _ref("factor"),
                "default": [],
            },
            "trade": {
                "type": "object",
                "description": "Trading sides; at least one of long and short.",
                "properties": {"long": _ref("side"), "short": _ref("side")},
                "additionalProperties": False,
                "minProperties": 1,
                "x-error-codes": _codes(minProperties=ErrorCode.NO_TRADE_SIDE),
            },
            "portfolio": _object(
                {
                    "max_open_positions": _bounded_int(
                        1, limits.max_symbols * 2, "Most positions open at once (default: one per symbol)."
                    ),
                    "rotation": _ref("rotation"),
                },
                description="Rules across the universe; cash is shared by all symbols.",
            ),
        },
        "required": ["dsl_version", "metadata", "universe", "timeframe", "trade"],
        "patternProperties": {"^x-": {"description": "Client annotations, ignored by the engine."}},
        "additionalProperties": False,
        "$defs": defs,
    }


def _not_atr_branch() -> JsonSchema:
    return {
        "if": {
            "type": "object",
            "properties": {"unit": {"enum": ["percent", "points"]}},
            "required": ["unit"],
        },
        "then": _closed(
            "unit",
            {"value": True},
            ["value"],
            "percent and points distances take only 'unit' and 'value'; atr_period applies to unit 'atr'.",
        ),
    }


def _unit_bound(unit: str, bounds: dict[str, float], hint: str | None = None) -> JsonSchema:
    """The bounds of ``value`` when the distance is in ``unit`` (on top of the literal cap)."""
    value: JsonSchema = {**bounds, "description": f"Bounds of a distance in {unit}."}
    if hint:
        value["x-hint"] = hint
    return _branch("unit", [unit], {"properties": {"value": value}})


def _exit_branches(limits: Limits) -> list[JsonSchema]:
    fixed: dict[str, SchemaNode] = {"name": True}
    return [
        _branch(
            "type",
            ["signal"],
            _closed(
                "type",
                {**fixed, "condition": _ref("condition")},
                ["condition"],
                "signal exits take a 'condition'.",
            ),
        ),
        _branch(
            "type",
            ["stop_loss", "take_profit", "trailing_stop"],
            _closed(
                "type", {**fixed, "distance": _ref("distance")}, ["distance"], "this exit takes a 'distance'."
            ),
        ),
        _branch(
            "type",
            ["time_exit"],
            _closed(
                "type",
                {
                    **fixed,
                    "bars": _bounded_int(
                        1, limits.max_time_exit_bars, "Leave after this many bars in the position."
                    ),
                },
                ["bars"],
                "time_exit takes 'bars'.",
            ),
        ),
        _branch(
            "type",
            ["bracket"],
            _closed(
                "type",
                {
                    **fixed,
                    "stop": _ref("distance"),
                    "reward_ratio": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": MAX_REWARD_RATIO,
                        "description": "Target distance as a multiple of the stop distance.",
                        "x-error-codes": _codes(exclusiveMinimum=ErrorCode.CONTRADICTORY_EXITS),
                    },
                },
                ["stop", "reward_ratio"],
                "bracket takes 'stop' (a distance) and 'reward_ratio'.",
            ),
        ),
    ]


def _positive(maximum: float, description: str) -> JsonSchema:
    return {"type": "number", "exclusiveMinimum": 0, "maximum": maximum, "description": description}


def _sizing_branches(limits: Limits) -> list[JsonSchema]:
    magnitude = limits.max_literal_magnitude
    return [
        _branch(
            "mode",
            ["fixed_quantity"],
            _closed(
                "mode",
                {"quantity": _positive(magnitude, "Units per entry.")},
                ["quantity"],
                "fixed_quantity takes 'quantity'.",
            ),
        ),
        _branch(
            "mode",
            ["fixed_cash"],
            _closed(
                "mode",
                {"cash": _positive(magnitude, "Cash spent per entry.")},
                ["cash"],
                "fixed_cash takes 'cash'.",
            ),
        ),
        _branch(
            "mode",
            ["percent_equity"],
            _closed(
                "mode",
                {"percent": _positive(100.0, "Percent of equity per entry (10 = 10%).")},
                ["percent"],
                "percent_equity takes 'percent'.",
            ),
        ),
        _branch(
            "mode",
            ["risk_per_trade"],
            _closed(
                "mode",
                {"percent": _positive(100.0, "Percent of equity lost if the stop is hit (1 = 1%).")},
                ["percent"],
                "risk_per_trade takes 'percent' and needs a stop_loss, bracket or trailing_stop exit.",
            ),
        ),
        _branch(
            "mode",
            ["volatility_target"],
            _closed(
                "mode",
                {
                    "annual_percent": _positive(
                        MAX_TARGET_VOLATILITY_PERCENT,
                        "Target annualised volatility of the position (15 = 15%).",
                    ),
                    "lookback_bars": _bounded_int(
                        2, limits.max_temporal_window, "Bars of returns for the estimate (default 20)."
                    ),
                },
                ["annual_percent"],
                "volatility_target takes 'annual_percent' and optionally 'lookback_bars'.",
            ),
        ),
    ]


@lru_cache(maxsize=8)
def _cached_schema(limits: Limits) -> JsonSchema:
    return _build(limits)


def get_strategy_schema(limits: Limits = DEFAULT_LIMITS) -> JsonSchema:
    """The published JSON Schema of the strategy language (a fresh copy callers may modify)."""
    return copy.deepcopy(_cached_schema(limits))


def schema_for_validation(limits: Limits) -> JsonSchema:
    """The shared schema instance used by the validator (must not be modified)."""
    return _cached_schema(limits)
