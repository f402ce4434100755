"""The fill rules of ``backtest.assumptions`` as plain functions, in the engine's arithmetic.

Each mirrors a function of the engine's kernel (``backtest._kernel``) operation for operation, so a
paper fill computed here equals the backtest's to the last bit:

* ``target_quantity``: units an entry buys at a price, by sizing mode (``_target_quantity``);
* ``adverse_price``: a price moved against the trade by half the spread, then by slippage
  (``_adverse_price``);
* ``open_trigger`` / ``range_trigger``: where a working limit or stop entry fills when the open, or
  the bar's range, crosses it (``_open_trigger``, ``_range_trigger``);
* ``stop_or_target``: which of a position's stop and target a price segment reaches first and at
  what raw price (``_segment_hit``): the open first (a gap fills at the open), then the range, the
  stop winning when both lie inside it;
* ``round_down``: quantities to a multiple of the quantity step.
"""

from __future__ import annotations

import math
from typing import Final

from packages.domain.strategy.plan import SizingMode
from packages.domain.trading.costs import CostModel
from packages.domain.trading.orders import OrderType

HIT_NONE: Final = 0
HIT_STOP: Final = 1
HIT_TARGET: Final = 2


def target_quantity(
    mode: SizingMode,
    value: float,
    reference: float,
    equity: float,
    price: float,
    fee_rate: float,
    fee_fixed: float,
) -> float:
    """Units an entry of sizing ``mode`` buys or sells at ``price`` (the engine's ``_target_quantity``)."""
    if mode == "fixed_quantity":
        return value
    if mode == "fixed_cash":
        return value / price
    if mode == "percent_equity":
        return (value * equity - fee_fixed) / (price * (1.0 + fee_rate))
    if mode == "risk_per_trade":
        return value * equity / reference if reference > 0.0 else 0.0
    if mode == "volatility_target":
        return value / reference * equity / price if reference > 0.0 else 0.0
    return 0.0


def adverse_price(
    raw: float, direction: float, units: float, volume: float, cost: CostModel, half_spread: float
) -> float:
    """``raw`` moved against a trade in ``direction`` (+1 buy) by half the spread, then by slippage."""
    price = raw * (1.0 + direction * half_spread)
    if cost.volume_slippage:
        participation = units / volume if volume > 0.0 else 1.0
        slip = cost.volume_impact * participation
    else:
        slip = cost.slippage
    return price * (1.0 + direction * slip)


def round_down(units: float, step: float) -> float:
    return math.floor(units / step + 1e-9) * step if step > 0.0 else units


def stop_or_target(
    direction: float,
    o: float,
    h: float,
    lo: float,
    check_open: bool,
    allow_target: bool,
    stop: float,
    target: float,
    half_spread: float,
    touch: bool,
) -> tuple[int, float]:
    """Which of stop and target a price segment reaches first, and the raw fill price (the engine's rule)."""
    if direction > 0:
        if check_open:
            if o <= stop:
                return HIT_STOP, o
            bid_open = o * (1.0 - half_spread)
            if allow_target and bid_open >= target:
                return HIT_TARGET, bid_open
        if lo <= stop:
            return HIT_STOP, stop
        if allow_target:
            bid_high = h * (1.0 - half_spread)
            if bid_high > target or (touch and bid_high >= target):
                return HIT_TARGET, target
    else:
        if check_open:
            if o >= stop:
                return HIT_STOP, o
            ask_open = o * (1.0 + half_spread)
            if allow_target and ask_open <= target:
                return HIT_TARGET, ask_open
        if h >= stop:
            return HIT_STOP, stop
        if allow_target:
            ask_low = lo * (1.0 + half_spread)
            if ask_low < target or (touch and ask_low <= target):
                return HIT_TARGET, target
    return HIT_NONE, 0.0


def open_trigger(direction: float, kind: OrderType, price: float, o: float, half_spread: float) -> float:
    """Fill price of a working entry the open crosses (NaN when it does not)."""
    if kind == "limit":
        if direction > 0:
            ask = o * (1.0 + half_spread)
            if ask <= price:
                return ask
        else:
            bid = o * (1.0 - half_spread)
            if bid >= price:
                return bid
    elif kind == "stop" and ((direction > 0 and o >= price) or (direction < 0 and o <= price)):
        return o
    return math.nan


def range_trigger(
    direction: float, kind: OrderType, price: float, h: float, lo: float, half_spread: float, touch: bool
) -> float:
    """Fill price of a working entry the bar's range reaches (NaN when it does not)."""
    if kind == "limit":
        if direction > 0:
            ask_low = lo * (1.0 + half_spread)
            if ask_low < price or (touch and ask_low <= price):
                return price
        else:
            bid_high = h * (1.0 - half_spread)
            if bid_high > price or (touch and bid_high >= price):
                return price
    elif kind == "stop" and ((direction > 0 and h >= price) or (direction < 0 and lo <= price)):
        return price
    return math.nan
