"""Two-stage validation: JSON shape (schema), then meaning (semantics).

``validate_strategy(document)`` never raises on bad input; it returns every problem it finds as a
``ValidationIssue`` (empty list = valid). Stages:

0. a cheap scan that the value is finite JSON of Unicode text (no lone surrogates) within the
   size and depth caps (so the later stages cannot recurse without bound or meet NaN, and a valid
   document always has a canonical UTF-8 form and a hash);
1. the JSON Schema, each error mapped to a stable code and the pointer of the offending value;
2. semantic rules (catalogue, references, exits, sizing, portfolio, look-back), run only on a
   document with the right shape because they presuppose it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from packages.domain.strategy.errors import ErrorCode, ValidationIssue
from packages.domain.strategy.indicators import IndicatorSpec, ParamValue, get_indicator, indicator_names
from packages.domain.strategy.limits import DEFAULT_LIMITS, Limits
from packages.domain.strategy.pointers import join_pointer, pointer_from_path
from packages.domain.strategy.schema import schema_for_validation
from packages.domain.strategy.vocabulary import (
    CROSS_OPS,
    DEFAULT_ATR_PERIOD,
    DSL_VERSION,
    SIDES,
    timeframe_rank,
)
from packages.domain.strategy.warmup import condition_warmup, scaled_warmup


class SymbolChecker(Protocol):
    """Tells whether ``symbol`` can be traded in ``market``; market data supplies the real one."""

    def __call__(self, market: str, symbol: str) -> bool: ...


_SYMBOL_FORMATS: dict[str, re.Pattern[str]] = {
    "us_stocks": re.compile(r"^\^?[A-Z][A-Z0-9.\-]{0,9}$"),
    "crypto": re.compile(r"^[A-Z0-9]{2,12}([/\-]?[A-Z0-9]{2,12})?$"),
    "forex": re.compile(r"^[A-Z]{3}/?[A-Z]{3}$"),
    "futures": re.compile(r"^[A-Z0-9][A-Z0-9._=\-]{0,15}$"),
}


def symbol_format_checker(market: str, symbol: str) -> bool:
    """Default checker: only the symbol's format per market (e.g. forex pairs are six letters)."""
    pattern = _SYMBOL_FORMATS.get(market)
    return bool(pattern and pattern.match(symbol))


def validate_strategy(
    document: Any,
    *,
    symbol_checker: SymbolChecker | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[ValidationIssue]:
    """Every problem in ``document`` (any Python value, typically parsed JSON); ``[]`` if valid."""
    issues = _scan_json(document, limits)
    if issues:
        return issues
    issues = _schema_issues(document, limits)
    if issues:
        return issues
    return _Semantics(document, limits, symbol_checker or symbol_format_checker).run()


def validate_semantics(
    document: Mapping[str, Any],
    *,
    symbol_checker: SymbolChecker | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[ValidationIssue]:
    """Stage 2 alone, for a document whose shape is already known to pass stages 0 and 1.

    ``tunables.ParameterSpace`` uses it after changing numbers of a valid document within their
    bounds, which cannot change the document's shape.
    """
    return _Semantics(document, limits, symbol_checker or symbol_format_checker).run()


# --- stage 0: is it bounded, finite JSON? -----------------------------------------------------

# A UTF-16 surrogate in a Python string: JSON's "\ud800" escape decodes to one when it is not half
# of a pair. It is not Unicode text, so the document has no UTF-8 form (no canonical JSON, no hash).
_SURROGATE = re.compile("[\ud800-\udfff]")


def _scan_json(document: Any, limits: Limits) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    seen = 0
    while stack:
        value, pointer, depth = stack.pop()
        seen += 1
        if seen > limits.max_document_values:
            issues.append(
                ValidationIssue(
                    ErrorCode.LIMIT_EXCEEDED,
                    "",
                    f"The document has more than {limits.max_document_values} JSON values.",
                    "Simplify the strategy: fewer factors, exits or condition nodes.",
                )
            )
            break
        if isinstance(value, dict | list) and depth > limits.max_document_depth:
            issues.append(
                ValidationIssue(
                    ErrorCode.LIMIT_EXCEEDED,
                    pointer,
                    f"The document nests deeper than {limits.max_document_depth} levels here.",
                    "Flatten nested all/any groups.",
                )
            )
            continue
        if isinstance(value, dict):
            for key, child in reversed(list(value.items())):
                if not isinstance(key, str):
                    issues.append(
                        ValidationIssue(
                            ErrorCode.INVALID_TYPE, pointer, f"Object key {key!r} is not a string."
                        )
                    )
                    continue
                if _SURROGATE.search(key):
                    # The pointer names the object: one spelling out the key could not be written.
                    issues.append(_surrogate_issue(pointer, f"The key {key!a}"))
                    continue
                stack.append((child, join_pointer(pointer, key), depth + 1))
        elif isinstance(value, list):
            for index in reversed(range(len(value))):
                stack.append((value[index], join_pointer(pointer, index), depth + 1))
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                issues.append(
                    ValidationIssue(
                        ErrorCode.INVALID_VALUE, pointer, "NaN and infinity are not valid JSON numbers."
                    )
                )
        elif isinstance(value, str):
            if len(value) > limits.max_string_length:
                issues.append(
                    ValidationIssue(
                        ErrorCode.LIMIT_EXCEEDED,
                        pointer,
                        f"The string is longer than {limits.max_string_length} characters.",
                    )
                )
            elif _SURROGATE.search(value):
                issues.append(_surrogate_issue(pointer, "The text"))
        elif not (value is None or isinstance(value, bool | int)):
            issues.append(
                ValidationIssue(
                    ErrorCode.INVALID_TYPE,
                    pointer,
                    f"A {type(value).__name__} is not a JSON value; use objects, arrays, strings, numbers, booleans or null.",
                )
            )
    return issues


def _surrogate_issue(pointer: str, subject: str) -> ValidationIssue:
    return ValidationIssue(
        ErrorCode.INVALID_VALUE,
        pointer,
        f"{subject} holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape), which is not Unicode text.",
        "Remove the escape, or write the character itself (or both halves of its surrogate pair).",
    )


# --- stage 1: schema ----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _validator(limits: Limits) -> Draft202012Validator:
    """The reference validator: every error with the schema node that raised it (for codes and hints)."""
    return Draft202012Validator(schema_for_validation(limits))


@lru_cache(maxsize=8)
def _fast_validator(limits: Limits) -> jsonschema_rs.Validator:
    """The same schema in a compiled validator: answers "valid?" in microseconds, about a hundred
    times faster, so the reference validator only runs to explain a document that is not."""
    return jsonschema_rs.validator_for(schema_for_validation(limits), validate_formats=False, offline=True)


_DEFAULT_CODES: dict[str, ErrorCode] = {
    "required": ErrorCode.MISSING_FIELD,
    "additionalProperties": ErrorCode.UNKNOWN_FIELD,
    "type": ErrorCode.INVALID_TYPE,
    "enum": ErrorCode.INVALID_VALUE,
    "const": ErrorCode.INVALID_VALUE,
    "pattern": ErrorCode.INVALID_VALUE,
    "minimum": ErrorCode.PARAM_OUT_OF_RANGE,
    "maximum": ErrorCode.PARAM_OUT_OF_RANGE,
    "exclusiveMinimum": ErrorCode.PARAM_OUT_OF_RANGE,
    "exclusiveMaximum": ErrorCode.PARAM_OUT_OF_RANGE,
    "minItems": ErrorCode.INVALID_VALUE,
    "minLength": ErrorCode.INVALID_VALUE,
    "minProperties": ErrorCode.INVALID_VALUE,
    "maxItems": ErrorCode.LIMIT_EXCEEDED,
    "maxLength": ErrorCode.LIMIT_EXCEEDED,
    "maxProperties": ErrorCode.LIMIT_EXCEEDED,
}

_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _schema_issues(document: Any, limits: Limits) -> list[ValidationIssue]:
    try:
        if _fast_validator(limits).is_valid(document):
            return []
    except (ValueError, UnicodeError):
        pass  # values the compiled validator cannot take (numpy scalars): ask the reference
    issues: list[ValidationIssue] = []
    seen: set[tuple[ErrorCode, str]] = set()
    for error in _validator(limits).iter_errors(document):
        for issue in _map_schema_error(error):
            # A field can be refused by a variant branch and by the generic object rule; the
            # schema lists branches first, so the first (more specific) message is kept.
            key = (issue.code, issue.pointer)
            if key not in seen:
                seen.add(key)
                issues.append(issue)
    return issues


def _map_schema_error(error: SchemaError) -> Iterator[ValidationIssue]:
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    keyword = str(error.validator)
    pointer = pointer_from_path(error.absolute_path)
    code = ErrorCode(
        schema.get("x-error-codes", {}).get(keyword, _DEFAULT_CODES.get(keyword, ErrorCode.INVALID_VALUE))
    )
    hint = schema.get("x-hint")
    instance = error.instance
    value = error.validator_value

    if keyword == "required" and isinstance(instance, dict):
        for name in value:
            if name not in instance:
                described = schema.get("properties", {}).get(name, {})
                detail = described.get("description") if isinstance(described, dict) else None
                yield ValidationIssue(
                    code,
                    join_pointer(pointer, name),
                    f"Required field '{name}' is missing.",
                    detail or hint,
                )
        return
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = [name for name in schema.get("properties", {})]
        patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
        for name in instance:
            if name in allowed or any(p.search(name) for p in patterns):
                continue
            yield ValidationIssue(
                code,
                join_pointer(pointer, name),
                f"Field '{name}' is not allowed here; allowed fields: {', '.join(allowed) or 'none'}.",
                hint or _close_match(name, allowed),
            )
        return
    if keyword == "type":
        expected = schema.get("x-expected") or _type_words(value)
        message = f"Expected {expected}, got {_json_type(instance)}."
    elif keyword in ("enum", "const"):
        choices = [str(choice) for choice in (value if keyword == "enum" else [value])]
        message = f"{instance!r} is not allowed; use one of: {', '.join(choices)}."
        hint = hint or (_close_match(str(instance), choices) if isinstance(instance, str) else None)
    elif keyword == "pattern":
        message = _pattern_message(code, instance, schema)
    elif keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        message = _range_message(code, keyword, instance, value)
    elif keyword == "minProperties" and code is ErrorCode.NO_TRADE_SIDE:
        message = "trade must define a long side, a short side or both."
    elif keyword in ("minItems", "minLength", "minProperties"):
        unit = "character" if keyword == "minLength" else "item"
        message = f"Needs at least {value} {unit}(s)."
    elif keyword in ("maxItems", "maxLength", "maxProperties"):
        unit = "characters" if keyword == "maxLength" else "items"
        message = f"Has more than the allowed {value} {unit}."
    elif hint:
        message, hint = hint, None
    else:
        message = error.message
    yield ValidationIssue(code, pointer, message, hint)


def _type_words(value: Any) -> str:
    words = {
        "object": "an object",
        "array": "an array",
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "a boolean",
        "null": "null",
    }
    names = value if isinstance(value, list) else [value]
    return " or ".join(words.get(str(name), str(name)) for name in names)


def _pattern_message(code: ErrorCode, instance: Any, schema: Mapping[str, Any]) -> str:
    if code is ErrorCode.UNSUPPORTED_DSL_VERSION:
        return f'dsl_version {instance!r} is not a semantic version; write "{DSL_VERSION}".'
    if code is ErrorCode.UNSUPPORTED_SYMBOL:
        return f"Symbol {instance!r} is malformed; use upper-case tickers such as AAPL, EURUSD or BTC/USDT."
    return (
        f"{instance!r} has the wrong format: use lowercase letters, digits and underscores, "
        "starting with a letter (at most 48 characters)."
    )


def _range_message(code: ErrorCode, keyword: str, instance: Any, bound: Any) -> str:
    if code is ErrorCode.LOOKAHEAD_OFFSET:
        return f"offset {instance} would read a future bar; offsets count bars back and must be >= 0."
    if code is ErrorCode.TEMPORAL_WINDOW_TOO_LONG:
        return f"Looking back {instance} bars is too far; the cap is {bound} bars."
    if code is ErrorCode.CONTRADICTORY_EXITS:
        return (
            f"{instance} must be greater than 0: a distance or ratio of zero or less cannot work as an exit."
        )
    relation = {
        "minimum": f"at least {bound}",
        "maximum": f"at most {bound}",
        "exclusiveMinimum": f"greater than {bound}",
        "exclusiveMaximum": f"less than {bound}",
    }[keyword]
    return f"{instance} is out of range; the value must be {relation}."


def _close_match(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f"Did you mean {' or '.join(repr(m) for m in matches)}?" if matches else None


# --- stage 2: semantics -------------------------------------------------------------------------


@dataclass
class _Factor:
    pointer: str
    spec: IndicatorSpec | None  # None when the indicator is unknown (already reported)
    params: dict[str, ParamValue] | None  # resolved; None when a parameter is invalid
    timeframe: str
    source: str | None = None  # the price source, for indicators that take one


# Comparisons that can never be true when both sides are one and the same series.
_NEVER_TRUE_ON_ONE_SERIES = frozenset({"gt", "lt", "neq", *CROSS_OPS})


class _Semantics:
    def __init__(self, document: Mapping[str, Any], limits: Limits, symbol_checker: SymbolChecker) -> None:
        self.document = document
        self.limits = limits
        self.symbol_checker = symbol_checker
        self.issues: list[ValidationIssue] = []
        self.timeframe = str(document["timeframe"])
        self.factors: dict[str, _Factor] = {}
        self.nodes = 0

    def add(self, code: ErrorCode, pointer: str, message: str, hint: str | None = None) -> None:
        self.issues.append(ValidationIssue(code, pointer, message, hint))

    def run(self) -> list[ValidationIssue]:
        self._check_version()
        self._check_universe()
        self._check_factors()
        trade = self.document["trade"]
        for side in SIDES:
            if side in trade:
                self._check_side(side, trade[side])
        self._check_portfolio()
        return self.issues

    def _check_version(self) -> None:
        version = tuple(int(part) for part in str(self.document["dsl_version"]).split("."))
        current = tuple(int(part) for part in DSL_VERSION.split("."))
        if version[0] != current[0] or version > current:
            self.add(
                ErrorCode.UNSUPPORTED_DSL_VERSION,
                "/dsl_version",
                f"dsl_version {self.document['dsl_version']} is not supported; this engine reads up to {DSL_VERSION}.",
                f'Write "dsl_version": "{DSL_VERSION}".',
            )

    def _check_universe(self) -> None:
        universe = self.document["universe"]
        market = str(universe["market"])
        seen: set[str] = set()
        for index, symbol in enumerate(universe["symbols"]):
            pointer = join_pointer("/universe/symbols", index)
            if symbol in seen:
                self.add(
                    ErrorCode.DUPLICATE_SYMBOL,
                    pointer,
                    f"Symbol {symbol} is listed twice.",
                    "Remove the duplicate.",
                )
                continue
            seen.add(symbol)
            if not self.symbol_checker(market, symbol):
                self.add(
                    ErrorCode.UNSUPPORTED_SYMBOL,
                    pointer,
                    f"Symbol {symbol} is not available in market {market}.",
                    "Check the market's symbol list (market-data tools) and the symbol's spelling.",
                )

    # factors -----------------------------------------------------------------------------------

    def _check_factors(self) -> None:
        for index, factor in enumerate(self.document.get("factors", [])):
            pointer = join_pointer("/factors", index)
            factor_id = str(factor["id"])
            if factor_id in self.factors:
                self.add(
                    ErrorCode.DUPLICATE_ID,
                    f"{pointer}/id",
                    f"Factor id '{factor_id}' is already used by {self.factors[factor_id].pointer}.",
                    "Give every factor a unique id.",
                )
                continue
            timeframe = str(factor.get("timeframe", self.timeframe))
            if timeframe_rank(timeframe) < timeframe_rank(self.timeframe):
                self.add(
                    ErrorCode.HIGHER_TIMEFRAME_TOO_LOW,
                    f"{pointer}/timeframe",
                    f"Factor timeframe {timeframe} is shorter than the strategy timeframe {self.timeframe}.",
                    "A factor may only use the strategy timeframe or a longer one; remove 'timeframe' or pick a longer one.",
                )
            spec = get_indicator(str(factor["indicator"]))
            if spec is None:
                self.add(
                    ErrorCode.UNKNOWN_INDICATOR,
                    f"{pointer}/indicator",
                    f"Indicator '{factor['indicator']}' is not in the catalogue.",
                    _close_match(str(factor["indicator"]), indicator_names())
                    or "List the catalogue with the indicator catalogue tool.",
                )
                self.factors[factor_id] = _Factor(pointer, None, None, timeframe)
                continue
            if "source" in factor and not spec.accepts_source:
                self.add(
                    ErrorCode.SOURCE_NOT_APPLICABLE,
                    f"{pointer}/source",
                    f"Indicator '{spec.name}' reads {', '.join(spec.inputs)} and takes no 'source'.",
                    "Remove 'source'.",
                )
            params = self._check_params(pointer, spec, factor.get("params", {}))
            source = str(factor.get("source", "close")) if spec.accepts_source else None
            self.factors[factor_id] = _Factor(pointer, spec, params, timeframe, source)

    def _check_params(
        self, pointer: str, spec: IndicatorSpec, given: Mapping[str, Any]
    ) -> dict[str, ParamValue] | None:
        valid = True
        for name, value in given.items():
            param_pointer = join_pointer(pointer, "params", name)
            param = spec.param(name)
            if param is None:
                names = [p.name for p in spec.params]
                self.add(
                    ErrorCode.UNKNOWN_PARAMETER,
                    param_pointer,
                    f"Indicator '{spec.name}' has no parameter '{name}'; its parameters: {', '.join(names) or 'none'}.",
                    _close_match(name, names),
                )
                valid = False
                continue
            if param.type == "enum":
                if value not in param.choices:
                    self.add(
                        ErrorCode.INVALID_VALUE if isinstance(value, str) else ErrorCode.INVALID_TYPE,
                        param_pointer,
                        f"'{name}' must be one of: {', '.join(param.choices)}.",
                        _close_match(str(value), param.choices),
                    )
                    valid = False
                continue
            if isinstance(value, str) or (
                param.type == "int" and isinstance(value, float) and not value.is_integer()
            ):
                self.add(
                    ErrorCode.INVALID_TYPE,
                    param_pointer,
                    f"'{name}' must be {'an integer' if param.type == 'int' else 'a number'}, got {value!r}.",
                )
                valid = False
                continue
            low = param.minimum if param.minimum is not None else float("-inf")
            high = param.maximum if param.maximum is not None else float("inf")
            if not low <= value <= high:
                self.add(
                    ErrorCode.PARAM_OUT_OF_RANGE,
                    param_pointer,
                    f"'{name}' = {value} is out of range for '{spec.name}'; allowed {param.minimum}..{param.maximum}.",
                    f"Default is {param.default}.",
                )
                valid = False
        if not valid:
            return None
        resolved = spec.resolve_params(given)
        for constraint in spec.constraints:
            if not constraint.holds(resolved):
                # Point at a value the factor sets: a default is not in the document.
                offending = next((name for name in constraint.params if name in given), constraint.params[0])
                shown = ", ".join(
                    f"{name}={resolved[name]}" + ("" if name in given else " (default)")
                    for name in constraint.params
                )
                self.add(
                    ErrorCode.PARAM_CONFLICT,
                    join_pointer(pointer, "params", offending),
                    f"'{spec.name}' requires {constraint.description} (got {shown}).",
                    constraint.hint,
                )
                valid = False
        return resolved if valid else None

    def factor_warmup(self, factor_id: str, offset: int) -> int:
        factor = self.factors.get(factor_id)
        if factor is None or factor.spec is None or factor.params is None:
            return offset
        return scaled_warmup(
            factor.spec.warmup(factor.params),
            offset,
            factor.timeframe,
            self.timeframe,
            market=str(self.document["universe"]["market"]),
        )

    # conditions --------------------------------------------------------------------------------

    def _check_condition_tree(self, pointer: str, node: Mapping[str, Any]) -> None:
        before = len(self.issues)
        self._check_node(pointer, node, 1)
        if len(self.issues) > before:
            return
        lookback = condition_warmup(node, self.factor_warmup)
        if lookback > self.limits.max_lookback_bars:
            self.add(
                ErrorCode.TEMPORAL_WINDOW_TOO_LONG,
                pointer,
                f"This condition needs {lookback} bars of history; the cap is {self.limits.max_lookback_bars}.",
                "Shorten indicator periods, offsets or temporal windows (higher timeframes count in base bars).",
            )

    def _check_node(self, pointer: str, node: Mapping[str, Any], depth: int) -> None:
        self.nodes += 1
        if self.nodes == self.limits.max_condition_nodes + 1:
            self.add(
                ErrorCode.LIMIT_EXCEEDED,
                pointer,
                f"The document has more than {self.limits.max_condition_nodes} condition nodes.",
                "Simplify the conditions.",
            )
        if depth > self.limits.max_condition_depth:
            self.add(
                ErrorCode.LIMIT_EXCEEDED,
                pointer,
                f"Conditions nest deeper than {self.limits.max_condition_depth} levels here.",
                "Flatten nested groups: all inside all can be merged.",
            )
            return
        op = node["op"]
        if op in ("all", "any"):
            for index, child in enumerate(node["conditions"]):
                self._check_node(join_pointer(pointer, "conditions", index), child, depth + 1)
        elif op in ("not", "within_bars", "bars_since"):
            self._check_node(f"{pointer}/condition", node["condition"], depth + 1)
            if op == "bars_since" and "min" in node and "max" in node and node["min"] > node["max"]:
                self.add(
                    ErrorCode.PARAM_CONFLICT,
                    f"{pointer}/min",
                    f"bars_since min ({node['min']}) is greater than max ({node['max']}); nothing can match.",
                )
        elif op == "sequence":
            for index, step in enumerate(node["steps"]):
                self._check_node(join_pointer(pointer, "steps", index), step, depth + 1)
            if node["within_bars"] < len(node["steps"]):
                self.add(
                    ErrorCode.PARAM_CONFLICT,
                    f"{pointer}/within_bars",
                    f"A sequence of {len(node['steps'])} steps needs at least {len(node['steps'])} bars, "
                    f"within_bars is {node['within_bars']}.",
                    "Each step happens on a later bar than the previous one.",
                )
        else:
            before = len(self.issues)
            self._check_operand(f"{pointer}/left", node["left"])
            self._check_operand(f"{pointer}/right", node["right"])
            if op in CROSS_OPS and not isinstance(node["left"], dict) and not isinstance(node["right"], dict):
                self.add(
                    ErrorCode.INVALID_VALUE,
                    pointer,
                    f"{op} between two numbers can never happen.",
                    "Cross a series (field or factor) with a number or another series.",
                )
            elif op in _NEVER_TRUE_ON_ONE_SERIES and len(self.issues) == before:
                self._check_distinct_sides(pointer, op, node["left"], node["right"])

    def _check_distinct_sides(self, pointer: str, op: str, left: Any, right: Any) -> None:
        """Two operands reading the same series (the same field, or factors computing the same
        indicator with the same parameters, source and timeframe, at the same output and offset)
        hold equal values at every bar, so ``op`` between them is never true."""
        left_series, right_series = self._series(left), self._series(right)
        if left_series is None or right_series is None or left_series[1] != right_series[1]:
            return
        self.add(
            ErrorCode.PARAM_CONFLICT,
            f"{pointer}/right",
            f"Both sides of {op} read the same series ({left_series[0]}): they are equal at every "
            "bar, so the condition is never true.",
            "Give one side other parameters (e.g. a shorter period for the fast average), another "
            "output or an offset.",
        )

    def _series(self, operand: Any) -> tuple[str, tuple[Any, ...]] | None:
        """A description of the series an operand reads and its identity (None for a number or an
        unusable factor)."""
        if not isinstance(operand, dict):
            return None
        offset = operand.get("offset", 0)
        shifted = f" {offset} bar(s) back" if offset else ""
        if "field" in operand:
            return f"the field {operand['field']}{shifted}", ("field", operand["field"], offset)
        factor = self.factors.get(str(operand["factor"]))
        if factor is None or factor.spec is None or factor.params is None:
            return None
        output = str(operand.get("output", factor.spec.output_names[0]))
        settings = ", ".join(f"{name}={value}" for name, value in factor.params.items())
        source = f" of {factor.source}" if factor.source else ""
        described = f"{factor.spec.name}({settings}){source} on {factor.timeframe}, output {output}{shifted}"
        identity = (
            factor.spec.name,
            tuple(factor.params.items()),
            factor.source,
            factor.timeframe,
            output,
            offset,
        )
        return described, ("factor", *identity)

    def _check_operand(self, pointer: str, operand: Any) -> None:
        if isinstance(operand, dict) and "factor" in operand:
            self._check_factor_ref(pointer, operand)

    def _check_factor_ref(self, pointer: str, ref: Mapping[str, Any]) -> None:
        factor_id = str(ref["factor"])
        factor = self.factors.get(factor_id)
        if factor is None:
            self.add(
                ErrorCode.UNKNOWN_FACTOR_REFERENCE,
                f"{pointer}/factor",
                f"No factor has id '{factor_id}'.",
                _close_match(factor_id, self.factors)
                or f"Defined factor ids: {', '.join(self.factors) or 'none'}; add the factor to 'factors'.",
            )
            return
        if factor.spec is None:
            return
        outputs = factor.spec.output_names
        if "output" in ref:
            if ref["output"] not in outputs:
                self.add(
                    ErrorCode.BAD_OUTPUT_NAME,
                    f"{pointer}/output",
                    f"Factor '{factor_id}' ({factor.spec.name}) has no output '{ref['output']}'; outputs: {', '.join(outputs)}.",
                    _close_match(str(ref["output"]), outputs),
                )
        elif len(outputs) > 1:
            self.add(
                ErrorCode.BAD_OUTPUT_NAME,
                f"{pointer}/output",
                f"Factor '{factor_id}' ({factor.spec.name}) has several outputs; name one of: {', '.join(outputs)}.",
            )

    # sides -------------------------------------------------------------------------------------

    def _check_side(self, side: str, definition: Mapping[str, Any]) -> None:
        pointer = f"/trade/{side}"
        self._check_condition_tree(f"{pointer}/entry/condition", definition["entry"]["condition"])
        exits = definition.get("exits", [])
        names: dict[str, int] = {}
        by_type: dict[str, list[int]] = {}
        for index, rule in enumerate(exits):
            exit_pointer = join_pointer(pointer, "exits", index)
            if rule["name"] in names:
                self.add(
                    ErrorCode.DUPLICATE_ID,
                    f"{exit_pointer}/name",
                    f"Exit name '{rule['name']}' is already used by exit {names[rule['name']]} of this side.",
                    "Exit names become exit reasons; make them unique.",
                )
            names.setdefault(rule["name"], index)
            by_type.setdefault(rule["type"], []).append(index)
            if rule["type"] == "signal":
                self._check_condition_tree(f"{exit_pointer}/condition", rule["condition"])
        self._check_exit_conflicts(side, pointer, exits, by_type)
        has_rotation = "rotation" in self.document.get("portfolio", {})
        if not exits and not has_rotation:
            self.add(
                ErrorCode.NO_EXIT,
                f"{pointer}/exits",
                f"The {side} side has no exit rule, so a position would never be closed.",
                "Add a signal, stop_loss, take_profit, trailing_stop, time_exit or bracket exit.",
            )
        sizing = definition["sizing"]
        if sizing["mode"] == "risk_per_trade" and not any(
            t in by_type for t in ("stop_loss", "bracket", "trailing_stop")
        ):
            self.add(
                ErrorCode.RISK_SIZING_WITHOUT_STOP,
                f"{pointer}/sizing/mode",
                "risk_per_trade sizes a position from its stop distance, but this side has no stop.",
                "Add a stop_loss (or bracket / trailing_stop) exit, or use another sizing mode.",
            )

    def _check_exit_conflicts(
        self, side: str, pointer: str, exits: list[Mapping[str, Any]], by_type: Mapping[str, list[int]]
    ) -> None:
        def at(index: int, *tokens: str) -> str:
            return join_pointer(pointer, "exits", index, *tokens)

        for exit_type in ("stop_loss", "take_profit", "trailing_stop", "time_exit", "bracket"):
            for index in by_type.get(exit_type, [])[1:]:
                self.add(
                    ErrorCode.CONTRADICTORY_EXITS,
                    at(index, "type"),
                    f"The {side} side has more than one {exit_type} exit; only one can apply.",
                    f"Keep one {exit_type} exit.",
                )
        if "bracket" in by_type:
            for exit_type in ("stop_loss", "take_profit"):
                for index in by_type.get(exit_type, []):
                    self.add(
                        ErrorCode.CONTRADICTORY_EXITS,
                        at(index, "type"),
                        f"A bracket already sets both stop and target; the separate {exit_type} conflicts with it.",
                        "Remove either the bracket or the separate stop_loss/take_profit.",
                    )
        for index, rule in enumerate(exits):
            distance = rule.get("distance") or rule.get("stop")
            if distance is None or distance["unit"] != "percent":
                continue
            value = float(distance["value"])
            field = "distance" if "distance" in rule else "stop"
            protects_long = rule["type"] in ("stop_loss", "trailing_stop", "bracket") and side == "long"
            if protects_long and value >= 100:
                self.add(
                    ErrorCode.CONTRADICTORY_EXITS,
                    at(index, field, "value"),
                    f"A {value}% stop on a long position sits at or below a price of zero and can never trigger.",
                    "Use a percent below 100.",
                )
            target = value * float(rule["reward_ratio"]) if rule["type"] == "bracket" else value
            if side == "short" and rule["type"] in ("take_profit", "bracket") and target >= 100:
                where = at(index, "reward_ratio") if rule["type"] == "bracket" else at(index, field, "value")
                self.add(
                    ErrorCode.CONTRADICTORY_EXITS,
                    where,
                    f"A {target}% profit target on a short position needs the price to fall to zero or below.",
                    "Use a target below 100%.",
                )
        self._check_dead_stop(side, exits, by_type, at)

    def _check_dead_stop(
        self, side: str, exits: list[Mapping[str, Any]], by_type: Mapping[str, list[int]], at: Any
    ) -> None:
        """Flag a fixed stop that a trailing stop of the same unit and no wider distance makes dead.

        The trailing level starts at least as close to the entry as the fixed stop and only
        tightens, so the fixed stop could never be the one that triggers.
        """
        trailing = by_type.get("trailing_stop", [])
        if not trailing:
            return
        trail = exits[trailing[0]]["distance"]
        for exit_type, field in (("stop_loss", "distance"), ("bracket", "stop")):
            for index in by_type.get(exit_type, []):
                stop = exits[index][field]
                same_atr = stop.get("atr_period", DEFAULT_ATR_PERIOD) == trail.get(
                    "atr_period", DEFAULT_ATR_PERIOD
                )
                same_unit = stop["unit"] == trail["unit"] and same_atr
                if same_unit and float(trail["value"]) <= float(stop["value"]):
                    self.add(
                        ErrorCode.CONTRADICTORY_EXITS,
                        at(index, field, "value"),
                        f"The trailing stop ({trail['value']} {trail['unit']}) starts at or inside this "
                        f"{exit_type} stop ({stop['value']} {stop['unit']}) and only tightens, so this stop can never trigger.",
                        "Make the fixed stop tighter than the trailing distance, or drop one of them.",
                    )

    # portfolio ---------------------------------------------------------------------------------

    def _check_portfolio(self) -> None:
        portfolio = self.document.get("portfolio", {})
        symbols = len(self.document["universe"]["symbols"])
        rotation = portfolio.get("rotation")
        if rotation is None:
            return
        self._check_factor_ref("/portfolio/rotation/rank_by", rotation["rank_by"])
        if rotation["top_n"] >= symbols:
            self.add(
                ErrorCode.PARAM_CONFLICT,
                "/portfolio/rotation/top_n",
                f"top_n ({rotation['top_n']}) must be smaller than the number of symbols ({symbols}); "
                "otherwise rotation holds everything.",
                "Add symbols to the universe or lower top_n.",
            )
        max_open = portfolio.get("max_open_positions")
        if max_open is not None and max_open < rotation["top_n"]:
            self.add(
                ErrorCode.PARAM_CONFLICT,
                "/portfolio/max_open_positions",
                f"max_open_positions ({max_open}) is below rotation top_n ({rotation['top_n']}).",
                "Raise max_open_positions to at least top_n or drop it.",
            )
