"""Validation error vocabulary: stable codes, one issue object per problem, and the exception."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable error codes; clients and the LLM may branch on them, so never rename one."""

    # Shape of the document (schema stage)
    MISSING_FIELD = "MISSING_FIELD"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    INVALID_TYPE = "INVALID_TYPE"
    INVALID_VALUE = "INVALID_VALUE"
    UNSUPPORTED_DSL_VERSION = "UNSUPPORTED_DSL_VERSION"
    UNSUPPORTED_MARKET = "UNSUPPORTED_MARKET"
    UNSUPPORTED_TIMEFRAME = "UNSUPPORTED_TIMEFRAME"
    UNSUPPORTED_SYMBOL = "UNSUPPORTED_SYMBOL"
    LOOKAHEAD_OFFSET = "LOOKAHEAD_OFFSET"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    TEMPORAL_WINDOW_TOO_LONG = "TEMPORAL_WINDOW_TOO_LONG"
    PARAM_OUT_OF_RANGE = "PARAM_OUT_OF_RANGE"
    NO_TRADE_SIDE = "NO_TRADE_SIDE"
    # Meaning of the document (semantic stage)
    DUPLICATE_ID = "DUPLICATE_ID"
    DUPLICATE_SYMBOL = "DUPLICATE_SYMBOL"
    UNKNOWN_INDICATOR = "UNKNOWN_INDICATOR"
    UNKNOWN_PARAMETER = "UNKNOWN_PARAMETER"
    PARAM_CONFLICT = "PARAM_CONFLICT"
    SOURCE_NOT_APPLICABLE = "SOURCE_NOT_APPLICABLE"
    HIGHER_TIMEFRAME_TOO_LOW = "HIGHER_TIMEFRAME_TOO_LOW"
    UNKNOWN_FACTOR_REFERENCE = "UNKNOWN_FACTOR_REFERENCE"
    BAD_OUTPUT_NAME = "BAD_OUTPUT_NAME"
    CONTRADICTORY_EXITS = "CONTRADICTORY_EXITS"
    NO_EXIT = "NO_EXIT"
    RISK_SIZING_WITHOUT_STOP = "RISK_SIZING_WITHOUT_STOP"


ERROR_CODE_MEANINGS: dict[ErrorCode, str] = {
    ErrorCode.MISSING_FIELD: "A required field is absent; the pointer names where it belongs.",
    ErrorCode.UNKNOWN_FIELD: "A field the language does not define (or not in this context).",
    ErrorCode.INVALID_TYPE: "A value has the wrong JSON type (or is not JSON at all).",
    ErrorCode.INVALID_VALUE: "A value is not one of the allowed words or does not match the format.",
    ErrorCode.UNSUPPORTED_DSL_VERSION: "dsl_version is not a version this engine reads.",
    ErrorCode.UNSUPPORTED_MARKET: "universe.market is not a supported market.",
    ErrorCode.UNSUPPORTED_TIMEFRAME: "A timeframe is not one the market-data store serves.",
    ErrorCode.UNSUPPORTED_SYMBOL: "A symbol is malformed or not available in the market.",
    ErrorCode.LOOKAHEAD_OFFSET: "A negative offset would read future bars; offsets only look back.",
    ErrorCode.LIMIT_EXCEEDED: "A resource cap (symbols, factors, nodes, depth, magnitudes) is exceeded.",
    ErrorCode.TEMPORAL_WINDOW_TOO_LONG: "An offset, temporal window or total look-back is too long.",
    ErrorCode.PARAM_OUT_OF_RANGE: "A number is outside its allowed range.",
    ErrorCode.NO_TRADE_SIDE: "trade defines neither long nor short.",
    ErrorCode.DUPLICATE_ID: "Two factors share an id, or two exits of one side share a name.",
    ErrorCode.DUPLICATE_SYMBOL: "A symbol is listed twice in the universe.",
    ErrorCode.UNKNOWN_INDICATOR: "The indicator is not in the catalogue.",
    ErrorCode.UNKNOWN_PARAMETER: "The indicator has no parameter of that name.",
    ErrorCode.PARAM_CONFLICT: "Parameters are each valid but contradict each other.",
    ErrorCode.SOURCE_NOT_APPLICABLE: "source was given to an indicator that reads fixed price fields.",
    ErrorCode.HIGHER_TIMEFRAME_TOO_LOW: "A factor timeframe is shorter than the strategy timeframe.",
    ErrorCode.UNKNOWN_FACTOR_REFERENCE: "An operand names a factor id that is not defined.",
    ErrorCode.BAD_OUTPUT_NAME: "An operand names an output the indicator does not have (or omits one).",
    ErrorCode.CONTRADICTORY_EXITS: "Exit rules that cannot work as written or that cancel each other.",
    ErrorCode.NO_EXIT: "A side can never leave a position (no exit rule and no rotation).",
    ErrorCode.RISK_SIZING_WITHOUT_STOP: "risk_per_trade sizing needs a stop distance from a stop exit.",
}


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a strategy document.

    ``pointer`` is an RFC 6901 JSON pointer to the offending value (for a missing field: where the
    field belongs). ``message`` says what is wrong and ``hint`` how to fix it.
    """

    code: ErrorCode
    pointer: str
    message: str
    hint: str | None = None

    def to_dict(self) -> dict[str, str]:
        payload = {"code": self.code.value, "pointer": self.pointer, "message": self.message}
        if self.hint:
            payload["hint"] = self.hint
        return payload


class StrategyValidationError(ValueError):
    """Raised by entry points that need a valid document (compile, apply_parameters)."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        summary = "; ".join(f"{i.code.value} at {i.pointer or '/'}: {i.message}" for i in issues[:5])
        more = f" (+{len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(f"invalid strategy document: {summary}{more}")
