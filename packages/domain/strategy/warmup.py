"""How many bars of history a document needs before its values are defined (its warm-up).

Shared by validation (to cap total look-back) and the compiler (to report ``warmup_bars``). All
functions read already schema-valid JSON nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from packages.domain.market_data.sessions import US_EQUITY_CALENDAR
from packages.domain.strategy.vocabulary import CROSS_OPS, NS_PER_DAY, NS_PER_MINUTE, timeframe_ns

# factor id, offset (in the factor's own bars) -> warm-up in base bars
FactorWarmup = Callable[[str, int], int]

# Markets whose intraday buckets cover only part of the day while base bars may cover all of it
# (US stocks: 09:30-16:00 buckets, pre- and post-market base bars), with their shortest session
# (09:30 to a 13:00 early close).
_SHORTEST_PARTIAL_SESSION_NS = {
    "us_stocks": (US_EQUITY_CALENDAR.early_close_minute - US_EQUITY_CALENDAR.open_minute) * NS_PER_MINUTE
}


def scaled_warmup(
    indicator_warmup: int,
    offset: int,
    factor_timeframe: str,
    base_timeframe: str,
    *,
    market: str | None = None,
) -> int:
    """Base bars before a factor value at ``offset`` is defined: an upper bound, whatever bar the
    history starts on.

    On a higher timeframe, ``indicator_warmup + offset + 1`` higher bars must have closed, plus one
    because the first higher bar may be partial. Higher bars follow the ``market``'s sessions.
    Between two consecutive closes of a forex, futures or crypto bar, or of a US-stock day or week,
    lie at most ``ratio`` base bars (bar length over base length): sessions last at most 24 hours
    and no bars print between them, but for the odd forex weekend quote, which the spare bar
    absorbs. That gives ``(indicator_warmup + offset + 2) * ratio``. Intraday US-stock buckets
    cover regular hours only while base bars may cover the whole day (extended hours), so there
    whole days are counted: after a first partial day every trading day closes at least as many
    buckets as its shortest session (a 13:00 early close) holds, and no day holds more than a day
    of base bars. Without a ``market`` every base bar is taken to belong to a bucket (the
    fixed-step bound).
    """
    if factor_timeframe == base_timeframe:
        return indicator_warmup + offset
    factor_ns, base_ns = timeframe_ns(factor_timeframe), timeframe_ns(base_timeframe)
    shortest_session = _SHORTEST_PARTIAL_SESSION_NS.get(market or "")
    if shortest_session is not None and factor_ns < NS_PER_DAY:
        buckets_per_day = math.ceil(shortest_session / factor_ns)
        days = math.ceil((indicator_warmup + offset + 1) / buckets_per_day) + 1
        return days * math.ceil(NS_PER_DAY / base_ns)
    ratio = math.ceil(factor_ns / base_ns)
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
