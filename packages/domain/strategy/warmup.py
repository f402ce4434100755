"""How many bars of history a document needs before its values are defined (its warm-up).

Shared by validation (to cap total look-back) and the compiler (to report ``warmup_bars``). All
functions read already schema-valid JSON nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from packages.domain.strategy.vocabulary import CROSS_OPS, timeframe_ns

# factor id, offset (in the factor's own bars) -> warm-up in base bars
FactorWarmup = Callable[[str, int], int]


def scaled_warmup(indicator_warmup: int, offset: int, factor_timeframe: str, base_timeframe: str) -> int:
    """Base bars before a factor value at ``offset`` is defined.

    On a higher timeframe, ``indicator_warmup + offset + 1`` higher bars must have closed, plus one
    because the first higher bar may be partial; each spans at most ``ratio`` base bars, so this
    is an upper bound (markets with sessions fill fewer base bars per higher bar).
    """
    if factor_timeframe == base_timeframe:
        return indicator_warmup + offset
    ratio = math.ceil(timeframe_ns(factor_timeframe) / timeframe_ns(base_timeframe))
    return (indicator_warmup + offset + 2) * ratio


def operand_warmup(operand: Any, factor_warmup: FactorWarmup) -> int:
    if isinstance(operand, dict):
        offset = int(operand.get("offset", 0))
        if "factor" in operand:
            return factor_warmup(str(operand["factor"]), offset)
        # hl2 etc. are defined from the first bar; offsets shift them.
        return offset
    return 0


def condition_warmup(node: Mapping[str, Any], factor_warmup: FactorWarmup) -> int:
    """Bars needed before ``node`` can be true for a reason other than missing history."""
    op = node["op"]
    if op in ("all", "any"):
        return max(condition_warmup(child, factor_warmup) for child in node["conditions"])
    if op == "not":
        return condition_warmup(node["condition"], factor_warmup)
    if op == "within_bars":
        return condition_warmup(node["condition"], factor_warmup) + int(node["bars"]) - 1
    if op == "bars_since":
        window = int(node["max"]) if "max" in node else int(node["min"])
        return condition_warmup(node["condition"], factor_warmup) + window
    if op == "sequence":
        steps = max(condition_warmup(step, factor_warmup) for step in node["steps"])
        return steps + int(node["within_bars"]) - 1
    operands = max(operand_warmup(node["left"], factor_warmup), operand_warmup(node["right"], factor_warmup))
    # A cross compares the current bar with the previous one.
    return operands + 1 if op in CROSS_OPS else operands
