"""All numba code of the engine: the simulation kernel, the metric kernels and the sweep driver.

They share one file on purpose: numba's cache invalidates a cached function only when its own file
changes, so kernels calling each other (and the record layouts they freeze) must live together.

The simulation is one bar loop with cash carried forward as state.

Everything here works on plain arrays so one compiled loop serves one symbol or many, a single run
or a batch of plans (a parameter sweep). The Python side (``engine.py``) packs a ``StrategyPlan`` into
these arrays (``packing.py``); records come back as float64 matrices whose columns are named in
``codes.py``. Fill and exit rules are documented in ``assumptions.py``.

Plan arrays carry a leading plan axis ``P`` (1 for a single run); per-bar plan inputs have shape
``(P, k, n_bars, n_symbols)`` or ``(P, k, 1, 1)`` when the plan does not use them.

Bar ``i`` is processed in time order:

1. open: queued market exits fill at the open, positions whose stop/target the open gapped through
   exit at the open; then queued entries fill (market at the open; limit/stop if the open crossed them);
2. intrabar: stops and targets of open positions are checked against the bar's range (or the finer bars
   of this bar, in order), then working limit/stop entries are checked;
3. close: marks, borrow fees, equity; then decisions on the close: signal/time/rotation exits and entries
   (queued for the next open, or filled at this close with ``trade_on_close``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# ---------------------------------------------------------------------------------------------
# Codes and record layouts (re-exported by ``codes``). They live here, beside the kernels that freeze
# them at compile time, because numba's cache only notices edits to the file of the cached function.
# Order types of an entry (OrderPlan.kind) and of a recorded fill.
ORDER_MARKET = 0
ORDER_LIMIT = 1
ORDER_STOP = 2

# ExitPlan.kind
EXIT_SIGNAL = 0
EXIT_STOP_LOSS = 1
EXIT_TAKE_PROFIT = 2
EXIT_TRAILING = 3
EXIT_TIME = 4
EXIT_BRACKET = 5

# SizingPlan.mode
SIZE_FIXED_QUANTITY = 0
SIZE_FIXED_CASH = 1
SIZE_PERCENT_EQUITY = 2
SIZE_RISK_PER_TRADE = 3
SIZE_VOLATILITY_TARGET = 4

# Exit reasons: a non-negative reason is the index of the ExitPlan in the flattened exit list;
# these negative ones are the engine's own.
REASON_ENTRY = -100  # order records: the order opened a position
REASON_END_OF_DATA = -1
REASON_ROTATION = -2
REASON_LIQUIDATION = -3
REASON_OPEN = -4  # trade still open at the end (close_at_end off)

# When inside its bar a fill happened.
AT_OPEN = 0
AT_INTRABAR = 1
AT_CLOSE = 2

# Order record columns (float64 matrix, one row per fill).
O_BAR = 0
O_SYMBOL = 1
O_SIDE = 2  # +1 buy, -1 sell
O_QTY = 3  # positive quantity
O_PRICE = 4  # fill price after slippage and spread
O_RAW_PRICE = 5  # market/limit/stop price before costs
O_FEE = 6
O_SLIPPAGE = 7  # cash lost to slippage + spread on this fill
O_TYPE = 8  # ORDER_* of the fill mechanism (stop-loss exits are stop fills, targets limit fills)
O_REASON = 9  # REASON_ENTRY or the exit reason
O_SIGNAL_BAR = 10  # bar at whose close the order was decided
O_TRADE = 11  # trade id
O_AT = 12  # AT_*
N_ORDER_FIELDS = 13

# Trade record columns.
T_SYMBOL = 0
T_SIDE = 1  # index of the SidePlan
T_DIRECTION = 2  # +1 long, -1 short
T_QTY = 3
T_SIGNAL_BAR = 4
T_ENTRY_BAR = 5
T_ENTRY_PRICE = 6
T_EXIT_BAR = 7
T_EXIT_PRICE = 8
T_EXIT_SIGNAL_BAR = 9
T_ENTRY_FEE = 10
T_EXIT_FEE = 11
T_SLIPPAGE = 12
T_BORROW = 13
T_PNL = 14  # net of fees and borrow
T_RETURN = 15  # T_PNL / (qty * entry price), a fraction
T_REASON = 16
T_MAE = 17  # worst excursion against the position, fraction of entry price (<= 0)
T_MFE = 18  # best excursion in favour, fraction of entry price (>= 0)
T_IS_OPEN = 19
T_ENTRY_AT = 20
T_EXIT_AT = 21
T_ID = 22  # entry sequence number, shared with the order records' O_TRADE
N_TRADE_FIELDS = 23

# ---------------------------------------------------------------------------------------------
# State layout. Numba reads module-level ints as compile-time constants.
# Global scalars (float64 vector).
G_CASH = 0
G_N_ORDERS = 1
G_N_TRADES = 2
G_N_OPEN = 3
G_FEES = 4
G_SLIPPAGE = 5
G_BORROW = 6
G_TURNOVER = 7  # traded notional
G_REJECTED = 8  # entries refused for lack of buying power or a non-positive size
G_LIQUIDATED = 9
G_TRADE_SEQ = 10  # next trade id (entry order)
G_N_WORKING = 11  # symbols with a working (not yet filled) entry order
G_N_WATCHED = 12  # open positions with stop/target levels
G_N_QUEUED = 13  # open positions with a market exit queued for the next open
N_GLOBAL = 14

# Per-symbol state (float64 matrix, one row per symbol).
S_QTY = 0  # signed quantity, 0 = flat
S_SIDE = 1  # SidePlan index of the open position, -1 = flat
S_DIR = 2  # +1 long, -1 short, 0 flat
S_ENTRY_PRICE = 3  # fill price after costs
S_ENTRY_BAR = 4
S_ENTRY_POS = 5  # entry instant in bars: bar (open fill), bar + 0.5 (intrabar), bar + 1 (close)
S_SIGNAL_BAR = 6
S_ENTRY_FEE = 7
S_ENTRY_SLIP = 8
S_HI = 9  # highest price seen since entry
S_LO = 10
S_BORROW = 11
S_TRADE_ID = 12
S_MARK = 13  # latest known price (open during the bar, close after it)
S_ENTRY_AT = 14
S_WATCH = 15  # the position has stop/target/trailing levels to check
S_TRAILS = 16  # ... and at least one of them trails
S_STOP = 17  # tightest stop level (-inf long / +inf short when none)
S_STOP_RULE = 18
S_TARGET = 19  # nearest target level (+inf long / -inf short when none)
S_TARGET_RULE = 20
S_PX_ACTIVE = 21  # a market exit is queued for the next open
S_PX_REASON = 22
S_PX_SIGNAL_BAR = 23
S_PE_SIDE = 24  # side of the working entry order, -1 = none
S_PE_TYPE = 25
S_PE_PRICE = 26
S_PE_EXPIRE = 27  # last bar on which the working entry may fill
S_PE_SIGNAL_BAR = 28
N_SYMBOL_STATE = 29

# Per-rule price levels: levels[LV_*, symbol, exit rule].
LV_STOP = 0
LV_TARGET = 1
LV_TRAIL_DISTANCE = 2  # absolute trailing distance (NaN: the rule trails by a fraction)
N_LEVELS = 3

# Execution parameters (float64 vector; flags stored as 0/1).
A_FEE_RATE = 0
A_FEE_FIXED = 1
A_SLIPPAGE = 2  # fraction for the bps model
A_IMPACT = 3  # volume_share model coefficient
A_HALF_SPREAD = 4
A_LEVERAGE = 5  # max gross exposure / equity (1 without margin)
A_BORROW_PER_BAR = 6
A_QTY_STEP = 7
A_INITIAL_CASH = 8
A_TRADE_ON_CLOSE = 9
A_VOLUME_SLIPPAGE = 10
A_LIMIT_TOUCH = 11
A_CLOSE_AT_END = 12
N_PARAMS = 13

# Side description (int matrix, one row per side).
SD_DIRECTION = 0
SD_ORDER_KIND = 1
SD_SIZING_MODE = 2
SD_HAS_PRICE_EXITS = 3
SD_HAS_TRAILING = 4
SD_HAS_SIZING_REF = 5
N_SIDE_INT = 6
# Per-plan side values (float, (P, S, k)).
SF_SIZING_VALUE = 0
SF_ORDER_VALID = 1
N_SIDE_FLOAT = 2

# Exit description (int matrix, one row per exit rule across sides).
EX_SIDE = 0
EX_KIND = 1
EX_SIGNAL_INDEX = 2
EX_DISTANCE_INDEX = 3
N_EXIT_INT = 4
# Per-plan exit values (float, (P, E, k)).
EF_FRACTION = 0
EF_REWARD = 1
EF_BARS = 2
N_EXIT_FLOAT = 3

# Per-plan portfolio values (int, (P, k)).
PF_MAX_OPEN = 0
PF_ROTATION_TOP_N = 1  # 0 = no rotation
PF_ROTATION_EVERY = 2
PF_WARMUP = 3
N_PORTFOLIO = 4

HIT_NONE = 0
HIT_STOP = 1
HIT_TARGET = 2
NO_REASON = -1000

# Constants passed as call arguments are typed as plain int64/bool: a bare literal would make numba
# compile one specialisation of the callee per distinct value.
_MARKET = np.int64(ORDER_MARKET)
_LIMIT = np.int64(ORDER_LIMIT)
_STOP = np.int64(ORDER_STOP)
_AT_OPEN = np.int64(AT_OPEN)
_AT_INTRABAR = np.int64(AT_INTRABAR)
_AT_CLOSE = np.int64(AT_CLOSE)
_END_OF_DATA = np.int64(REASON_END_OF_DATA)
_ROTATION = np.int64(REASON_ROTATION)
_LIQUIDATION = np.int64(REASON_LIQUIDATION)
_STILL_OPEN = np.int64(REASON_OPEN)
_TRUE = np.bool_(True)
_FALSE = np.bool_(False)
_FIRST_SIDE = np.int64(0)

INF = np.inf


def _prefetch_intrinsic(typingctx, array, row, column):
    """Start loading ``array[row, column]`` into cache; no effect on results (a prefetch never faults).

    The quiet stretches stream close, high and low but not the open, so the next bar's open, read
    when an order fills there, would otherwise be a cache miss on every fill.
    """
    signature = types.void(array, row, column)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1], args[2]])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0i8",
        )
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(
            function,
            [
                builder.bitcast(pointer, byte_pointer),
                ir.Constant(i32, 0),
                ir.Constant(i32, 3),
                ir.Constant(i32, 1),
            ],
        )
        return context.get_dummy_value()

    return signature, codegen


# Called from compiled code as _prefetch(array, row, column); the cast gives mypy that signature.
_prefetch = cast(Callable[[Any, Any, Any], None], intrinsic(_prefetch_intrinsic))


_OPEN_LOOKAHEAD = 64  # bars: far enough ahead for the load to land before the next fill reads it


@njit(cache=True, error_model="numpy")
def new_state(n_symbols, n_exits, initial_cash):
    state_g = np.zeros(N_GLOBAL)
    state_g[G_CASH] = initial_cash
    state_s = np.zeros((n_symbols, N_SYMBOL_STATE))
    for j in range(n_symbols):
        state_s[j, S_SIDE] = -1.0
        state_s[j, S_PE_SIDE] = -1.0
        state_s[j, S_MARK] = np.nan
    levels = np.full((N_LEVELS, n_symbols, max(n_exits, 1)), np.nan)
    return state_g, state_s, levels


@njit(cache=True, error_model="numpy")
def grow_records(records, min_free):
    """A copy of a record buffer with at least ``min_free`` more rows (capacity doubles)."""
    capacity = records.shape[0]
    grown = np.empty((max(capacity * 2, capacity + min_free, 64), records.shape[1]))
    grown[:capacity] = records
    return grown


@njit(cache=True, error_model="numpy")
def _equity_and_gross(state_g, state_s):
    value = 0.0
    gross = 0.0
    for j in range(state_s.shape[0]):
        qty = state_s[j, S_QTY]
        if qty != 0.0:
            notional = qty * state_s[j, S_MARK]
            value += notional
            gross += abs(notional)
    return state_g[G_CASH] + value, gross


@njit(cache=True, error_model="numpy", inline="always")
def _adverse_price(raw, direction, qty, volume, params):
    """Price after half the spread and slippage, both against a trade in ``direction`` (+1 buy)."""
    price = raw * (1.0 + direction * params[A_HALF_SPREAD])
    if params[A_VOLUME_SLIPPAGE] == 1.0:
        participation = qty / volume if volume > 0.0 else 1.0
        slip = params[A_IMPACT] * participation
    else:
        slip = params[A_SLIPPAGE]
    return price * (1.0 + direction * slip)


@njit(cache=True, error_model="numpy", inline="always")
def _volume_at(volume, i, j, needed):
    # Only the volume-share slippage model reads volume: a fill otherwise skips a cache miss.
    return volume[i, j] if needed else np.nan


@njit(cache=True, error_model="numpy", inline="always")
def _target_quantity(mode, value, reference, equity, price, fee_rate, fee_fixed):
    if mode == SIZE_FIXED_QUANTITY:
        return value
    if mode == SIZE_FIXED_CASH:
        return value / price
    if mode == SIZE_PERCENT_EQUITY:
        return (value * equity - fee_fixed) / (price * (1.0 + fee_rate))
    if mode == SIZE_RISK_PER_TRADE:
        return value * equity / reference if reference > 0.0 else 0.0
    if mode == SIZE_VOLATILITY_TARGET:
        return value / reference * equity / price if reference > 0.0 else 0.0
    return 0.0


@njit(cache=True, error_model="numpy")
def _refresh_levels(p, j, exit_i, exit_f, state_s, levels):
    """Ratchet trailing stops to the current extremes, then pick the tightest stop and nearest target."""
    side = state_s[j, S_SIDE]
    direction = state_s[j, S_DIR]
    hi = state_s[j, S_HI]
    lo = state_s[j, S_LO]
    best_stop = -INF if direction > 0 else INF
    stop_rule = -1
    best_target = INF if direction > 0 else -INF
    target_rule = -1
    for e in range(exit_i.shape[0]):
        if exit_i[e, EX_SIDE] != side:
            continue
        if exit_i[e, EX_KIND] == EXIT_TRAILING:
            dist = levels[LV_TRAIL_DISTANCE, j, e]
            if direction > 0:
                level = hi - dist if dist == dist else hi * (1.0 - exit_f[p, e, EF_FRACTION])
                if not (levels[LV_STOP, j, e] >= level):
                    levels[LV_STOP, j, e] = level
            else:
                level = lo + dist if dist == dist else lo * (1.0 + exit_f[p, e, EF_FRACTION])
                if not (levels[LV_STOP, j, e] <= level):
                    levels[LV_STOP, j, e] = level
        stop = levels[LV_STOP, j, e]
        if stop == stop and ((direction > 0 and stop > best_stop) or (direction < 0 and stop < best_stop)):
            best_stop = stop
            stop_rule = e
        target = levels[LV_TARGET, j, e]
        if target == target and (
            (direction > 0 and target < best_target) or (direction < 0 and target > best_target)
        ):
            best_target = target
            target_rule = e
    state_s[j, S_STOP] = best_stop
    state_s[j, S_STOP_RULE] = stop_rule
    state_s[j, S_TARGET] = best_target
    state_s[j, S_TARGET_RULE] = target_rule


@njit(cache=True, error_model="numpy", inline="always")
def _segment_hit(direction, o, h, lo, check_open, allow_target, stop, target, half_spread, touch):
    """Whether a price segment (bar or finer bar) hits the stop or the target, and the raw fill price.

    The open is checked first (a gap fills at the open); inside the range the stop wins ties.
    """
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


@njit(cache=True, error_model="numpy")
def _scan(p, j, o, h, lo, check_open, allow_target, exit_i, exit_f, state_s, levels, half_spread, touch):
    """Stop/target check of a watched position over one segment; ratchets extremes when nothing hits.

    Returns ``(hit, rule, price)``; a stop's price is the raw trigger (costs added by the caller), a
    target's price is its final limit fill.
    """
    trails = state_s[j, S_TRAILS] == 1.0
    direction = state_s[j, S_DIR]
    if check_open and trails:
        if direction > 0 and o > state_s[j, S_HI]:
            state_s[j, S_HI] = o
            _refresh_levels(p, j, exit_i, exit_f, state_s, levels)
        elif direction < 0 and o < state_s[j, S_LO]:
            state_s[j, S_LO] = o
            _refresh_levels(p, j, exit_i, exit_f, state_s, levels)
    hit, price = _segment_hit(
        direction,
        o,
        h,
        lo,
        check_open,
        allow_target,
        state_s[j, S_STOP],
        state_s[j, S_TARGET],
        half_spread,
        touch,
    )
    if hit == HIT_STOP:
        return hit, int(state_s[j, S_STOP_RULE]), price
    if hit == HIT_TARGET:
        return hit, int(state_s[j, S_TARGET_RULE]), price
    moved = False
    if h > state_s[j, S_HI]:
        state_s[j, S_HI] = h
        moved = True
    if lo < state_s[j, S_LO]:
        state_s[j, S_LO] = lo
        moved = True
    if moved and trails:
        _refresh_levels(p, j, exit_i, exit_f, state_s, levels)
    return HIT_NONE, -1, 0.0


@njit(cache=True, error_model="numpy")
def _open_position(
    p,
    i,
    j,
    side,
    raw,
    order_type,
    at,
    signal_bar,
    volume,
    sizing_ref,
    side_i,
    side_f,
    params,
    state_g,
    state_s,
    orders,
):
    """Fill an entry for symbol ``j`` at ``raw`` (before costs); returns False when refused.

    A position with stop/target rules (``S_WATCH``) still needs ``_arm_levels`` from the caller.
    """
    direction = side_i[side, SD_DIRECTION]
    equity, gross = _equity_and_gross(state_g, state_s)
    mode = side_i[side, SD_SIZING_MODE]
    value = side_f[p, side, SF_SIZING_VALUE]
    fee_rate = params[A_FEE_RATE]
    fee_fixed = params[A_FEE_FIXED]
    reference = np.nan
    if side_i[side, SD_HAS_SIZING_REF] == 1:
        reference = sizing_ref[p, side, signal_bar, j]
    if order_type == ORDER_LIMIT:
        # A limit fills at its own price (already on the bid/ask side): no slippage.
        price = raw
        qty = _target_quantity(mode, value, reference, equity, price, fee_rate, fee_fixed)
    else:
        estimate = raw * (1.0 + direction * params[A_HALF_SPREAD])
        qty = _target_quantity(mode, value, reference, equity, estimate, fee_rate, fee_fixed)
        price = _adverse_price(raw, direction, abs(qty), volume, params)
        qty = _target_quantity(mode, value, reference, equity, price, fee_rate, fee_fixed)
    buying_power = equity * params[A_LEVERAGE] - gross
    affordable = (buying_power - fee_fixed) / (price * (1.0 + fee_rate))
    if qty > affordable:
        qty = affordable
    step = params[A_QTY_STEP]
    if step > 0.0:
        qty = np.floor(qty / step + 1e-9) * step
    if not (qty > 0.0) or not np.isfinite(qty):
        state_g[G_REJECTED] += 1.0
        return False
    notional = qty * price
    fee = notional * fee_rate + fee_fixed
    slippage = qty * abs(price - raw)
    state_g[G_CASH] -= direction * notional + fee
    state_g[G_FEES] += fee
    state_g[G_SLIPPAGE] += slippage
    state_g[G_TURNOVER] += notional
    state_g[G_N_OPEN] += 1.0
    trade_id = state_g[G_TRADE_SEQ]
    state_g[G_TRADE_SEQ] += 1.0
    k = int(state_g[G_N_ORDERS])
    state_g[G_N_ORDERS] += 1.0
    orders[k, O_BAR] = i
    orders[k, O_SYMBOL] = j
    orders[k, O_SIDE] = direction
    orders[k, O_QTY] = qty
    orders[k, O_PRICE] = price
    orders[k, O_RAW_PRICE] = raw
    orders[k, O_FEE] = fee
    orders[k, O_SLIPPAGE] = slippage
    orders[k, O_TYPE] = order_type
    orders[k, O_REASON] = REASON_ENTRY
    orders[k, O_SIGNAL_BAR] = signal_bar
    orders[k, O_TRADE] = trade_id
    orders[k, O_AT] = at
    state_s[j, S_QTY] = direction * qty
    state_s[j, S_SIDE] = side
    state_s[j, S_DIR] = direction
    state_s[j, S_ENTRY_PRICE] = price
    state_s[j, S_ENTRY_BAR] = i
    state_s[j, S_ENTRY_POS] = i + (0.0 if at == AT_OPEN else (0.5 if at == AT_INTRABAR else 1.0))
    state_s[j, S_SIGNAL_BAR] = signal_bar
    state_s[j, S_ENTRY_FEE] = fee
    state_s[j, S_ENTRY_SLIP] = slippage
    state_s[j, S_HI] = raw
    state_s[j, S_LO] = raw
    state_s[j, S_BORROW] = 0.0
    state_s[j, S_TRADE_ID] = trade_id
    state_s[j, S_ENTRY_AT] = at
    state_s[j, S_PX_ACTIVE] = 0.0
    state_s[j, S_MARK] = raw
    state_s[j, S_WATCH] = side_i[side, SD_HAS_PRICE_EXITS]
    state_s[j, S_TRAILS] = side_i[side, SD_HAS_TRAILING]
    if side_i[side, SD_HAS_PRICE_EXITS] == 1:
        state_g[G_N_WATCHED] += 1.0
    return True


@njit(cache=True, error_model="numpy")
def _arm_levels(p, j, dist_stack, exit_i, exit_f, state_s, levels):
    """Set the stop/target levels of the position just opened on symbol ``j`` from its fill price."""
    side = state_s[j, S_SIDE]
    direction = state_s[j, S_DIR]
    price = state_s[j, S_ENTRY_PRICE]
    signal_bar = int(state_s[j, S_SIGNAL_BAR])
    for e in range(exit_i.shape[0]):
        levels[LV_STOP, j, e] = np.nan
        levels[LV_TARGET, j, e] = np.nan
        levels[LV_TRAIL_DISTANCE, j, e] = np.nan
        kind = exit_i[e, EX_KIND]
        if exit_i[e, EX_SIDE] != side or kind in (EXIT_SIGNAL, EXIT_TIME):
            continue
        dist_index = exit_i[e, EX_DISTANCE_INDEX]
        if dist_index >= 0:
            dist = dist_stack[p, dist_index, signal_bar, j]
        else:
            dist = exit_f[p, e, EF_FRACTION] * price
        if not (dist > 0.0):
            continue
        if kind == EXIT_STOP_LOSS:
            levels[LV_STOP, j, e] = price - direction * dist
        elif kind == EXIT_TAKE_PROFIT:
            levels[LV_TARGET, j, e] = price + direction * dist
        elif kind == EXIT_BRACKET:
            levels[LV_STOP, j, e] = price - direction * dist
            levels[LV_TARGET, j, e] = price + direction * dist * exit_f[p, e, EF_REWARD]
        elif kind == EXIT_TRAILING:
            if dist_index >= 0:
                levels[LV_TRAIL_DISTANCE, j, e] = dist
            levels[LV_STOP, j, e] = price - direction * dist
    _refresh_levels(p, j, exit_i, exit_f, state_s, levels)


@njit(cache=True, error_model="numpy", inline="always")
def _record_trade(
    i,
    j,
    exit_price,
    exit_raw,
    exit_fee,
    exit_slip,
    reason,
    at,
    exit_signal_bar,
    is_open,
    state_g,
    state_s,
    trades,
):
    qty_signed = state_s[j, S_QTY]
    direction = state_s[j, S_DIR]
    qty = abs(qty_signed)
    entry_price = state_s[j, S_ENTRY_PRICE]
    hi = max(state_s[j, S_HI], exit_raw)
    lo = min(state_s[j, S_LO], exit_raw)
    pnl = (
        direction * qty * (exit_price - entry_price)
        - state_s[j, S_ENTRY_FEE]
        - exit_fee
        - state_s[j, S_BORROW]
    )
    t = int(state_g[G_N_TRADES])
    state_g[G_N_TRADES] += 1.0
    trades[t, T_SYMBOL] = j
    trades[t, T_SIDE] = state_s[j, S_SIDE]
    trades[t, T_DIRECTION] = direction
    trades[t, T_QTY] = qty
    trades[t, T_SIGNAL_BAR] = state_s[j, S_SIGNAL_BAR]
    trades[t, T_ENTRY_BAR] = state_s[j, S_ENTRY_BAR]
    trades[t, T_ENTRY_PRICE] = entry_price
    trades[t, T_EXIT_BAR] = i
    trades[t, T_EXIT_PRICE] = exit_price
    trades[t, T_EXIT_SIGNAL_BAR] = exit_signal_bar
    trades[t, T_ENTRY_FEE] = state_s[j, S_ENTRY_FEE]
    trades[t, T_EXIT_FEE] = exit_fee
    trades[t, T_SLIPPAGE] = state_s[j, S_ENTRY_SLIP] + exit_slip
    trades[t, T_BORROW] = state_s[j, S_BORROW]
    trades[t, T_PNL] = pnl
    trades[t, T_RETURN] = pnl / (qty * entry_price)
    trades[t, T_REASON] = reason
    if direction > 0:
        trades[t, T_MAE] = min(lo / entry_price - 1.0, 0.0)
        trades[t, T_MFE] = max(hi / entry_price - 1.0, 0.0)
    else:
        trades[t, T_MAE] = min(1.0 - hi / entry_price, 0.0)
        trades[t, T_MFE] = max(1.0 - lo / entry_price, 0.0)
    trades[t, T_IS_OPEN] = is_open
    trades[t, T_ENTRY_AT] = state_s[j, S_ENTRY_AT]
    trades[t, T_EXIT_AT] = at
    trades[t, T_ID] = state_s[j, S_TRADE_ID]


@njit(cache=True, error_model="numpy")
def _close_position(
    i,
    j,
    raw,
    is_limit_fill,
    order_type,
    reason,
    at,
    exit_signal_bar,
    volume,
    params,
    state_g,
    state_s,
    orders,
    trades,
):
    """Fill the exit of symbol ``j``'s position at ``raw`` (limit fills: final price) and record the trade."""
    direction = state_s[j, S_DIR]
    qty = abs(state_s[j, S_QTY])
    price = raw if is_limit_fill else _adverse_price(raw, -direction, qty, volume, params)
    notional = qty * price
    fee = notional * params[A_FEE_RATE] + params[A_FEE_FIXED]
    slippage = qty * abs(price - raw)
    state_g[G_CASH] += direction * notional - fee
    state_g[G_FEES] += fee
    state_g[G_SLIPPAGE] += slippage
    state_g[G_TURNOVER] += notional
    state_g[G_N_OPEN] -= 1.0
    k = int(state_g[G_N_ORDERS])
    state_g[G_N_ORDERS] += 1.0
    orders[k, O_BAR] = i
    orders[k, O_SYMBOL] = j
    orders[k, O_SIDE] = -direction
    orders[k, O_QTY] = qty
    orders[k, O_PRICE] = price
    orders[k, O_RAW_PRICE] = raw
    orders[k, O_FEE] = fee
    orders[k, O_SLIPPAGE] = slippage
    orders[k, O_TYPE] = order_type
    orders[k, O_REASON] = reason
    orders[k, O_SIGNAL_BAR] = exit_signal_bar
    orders[k, O_TRADE] = state_s[j, S_TRADE_ID]
    orders[k, O_AT] = at
    _record_trade(i, j, price, raw, fee, slippage, reason, at, exit_signal_bar, 0.0, state_g, state_s, trades)
    if state_s[j, S_WATCH] == 1.0:
        state_g[G_N_WATCHED] -= 1.0
    if state_s[j, S_PX_ACTIVE] == 1.0:
        state_g[G_N_QUEUED] -= 1.0
    state_s[j, S_QTY] = 0.0
    state_s[j, S_SIDE] = -1.0
    state_s[j, S_DIR] = 0.0
    state_s[j, S_WATCH] = 0.0
    state_s[j, S_PX_ACTIVE] = 0.0


@njit(cache=True, error_model="numpy")
def _close_hit(i, j, hit, rule, price, at, volume, params, state_g, state_s, orders, trades):
    if hit == HIT_TARGET:
        _close_position(
            i, j, price, _TRUE, _LIMIT, rule, at, float(i), volume, params, state_g, state_s, orders, trades
        )
    else:
        _close_position(
            i, j, price, _FALSE, _STOP, rule, at, float(i), volume, params, state_g, state_s, orders, trades
        )


@njit(cache=True, error_model="numpy", inline="always")
def _queue_entry(p, i, j, side, order_price, side_i, side_f, state_g, state_s):
    """Queue the entry decided at the close of bar ``i`` (market: next open; limit/stop: works from the next bar)."""
    kind = side_i[side, SD_ORDER_KIND]
    price = np.nan
    expire = i + 1.0
    if kind != ORDER_MARKET:
        price = order_price[p, side, i, j]
        if not (price > 0.0):
            return False
        expire = i + side_f[p, side, SF_ORDER_VALID]
    state_g[G_N_WORKING] += 1.0
    state_s[j, S_PE_SIDE] = side
    state_s[j, S_PE_TYPE] = kind
    state_s[j, S_PE_PRICE] = price
    state_s[j, S_PE_EXPIRE] = expire
    state_s[j, S_PE_SIGNAL_BAR] = i
    return True


@njit(cache=True, error_model="numpy", inline="always")
def _open_trigger(direction, kind, price, o, half_spread):
    """Fill price when a working entry is crossed at an open (NaN when it is not)."""
    if kind == ORDER_LIMIT:
        if direction > 0:
            ask = o * (1.0 + half_spread)
            if ask <= price:
                return ask
        else:
            bid = o * (1.0 - half_spread)
            if bid >= price:
                return bid
    elif kind == ORDER_STOP and ((direction > 0 and o >= price) or (direction < 0 and o <= price)):
        return o
    return np.nan


@njit(cache=True, error_model="numpy", inline="always")
def _range_trigger(direction, kind, price, h, lo, half_spread, touch):
    """Fill price when a working entry is reached inside a range (NaN when it is not)."""
    if kind == ORDER_LIMIT:
        if direction > 0:
            ask_low = lo * (1.0 + half_spread)
            if ask_low < price or (touch and ask_low <= price):
                return price
        else:
            bid_high = h * (1.0 - half_spread)
            if bid_high > price or (touch and bid_high >= price):
                return price
    elif kind == ORDER_STOP and ((direction > 0 and h >= price) or (direction < 0 and lo <= price)):
        return price
    return np.nan


@njit(cache=True, error_model="numpy")
def _fill_working_entry(
    p,
    i,
    j,
    o,
    h,
    lo,
    fine_lo,
    fine_hi,
    fine_open,
    fine_high,
    fine_low,
    volume_ij,
    sizing_ref,
    dist_stack,
    side_i,
    side_f,
    exit_i,
    exit_f,
    params,
    state_g,
    state_s,
    levels,
    orders,
    trades,
):
    """Intrabar fill of a working limit/stop entry, then the new position's stop check for the rest of the bar."""
    side = int(state_s[j, S_PE_SIDE])
    kind = int(state_s[j, S_PE_TYPE])
    direction = side_i[side, SD_DIRECTION]
    order_px = state_s[j, S_PE_PRICE]
    signal_bar = int(state_s[j, S_PE_SIGNAL_BAR])
    half_spread = params[A_HALF_SPREAD]
    touch = params[A_LIMIT_TOUCH] == 1.0
    if fine_hi > fine_lo:
        for k in range(fine_lo, fine_hi):
            fill = np.nan
            at_fine_open = False
            if k > fine_lo:
                fill = _open_trigger(direction, kind, order_px, fine_open[k, j], half_spread)
                at_fine_open = fill == fill
            if fill != fill:
                fill = _range_trigger(
                    direction, kind, order_px, fine_high[k, j], fine_low[k, j], half_spread, touch
                )
            if fill != fill:
                continue
            _cancel_entry(j, state_g, state_s)
            if not _open_position(
                p,
                i,
                j,
                side,
                fill,
                kind,
                _AT_INTRABAR,
                signal_bar,
                volume_ij,
                sizing_ref,
                side_i,
                side_f,
                params,
                state_g,
                state_s,
                orders,
            ):
                return
            if state_s[j, S_WATCH] == 0.0:
                return
            _arm_levels(p, j, dist_stack, exit_i, exit_f, state_s, levels)
            # In the fill's own finer bar only the stop can be assumed to follow the fill.
            for kk in range(k, fine_hi):
                hit, rule, price = _scan(
                    p,
                    j,
                    fine_open[kk, j],
                    fine_high[kk, j],
                    fine_low[kk, j],
                    kk > k,
                    kk > k or at_fine_open,
                    exit_i,
                    exit_f,
                    state_s,
                    levels,
                    half_spread,
                    touch,
                )
                if hit != HIT_NONE:
                    _close_hit(
                        i,
                        j,
                        hit,
                        rule,
                        price,
                        _AT_INTRABAR,
                        volume_ij,
                        params,
                        state_g,
                        state_s,
                        orders,
                        trades,
                    )
                    return
            return
        return
    fill = _range_trigger(direction, kind, order_px, h, lo, half_spread, touch)
    if fill != fill:
        return
    _cancel_entry(j, state_g, state_s)
    if not _open_position(
        p,
        i,
        j,
        side,
        fill,
        kind,
        _AT_INTRABAR,
        signal_bar,
        volume_ij,
        sizing_ref,
        side_i,
        side_f,
        params,
        state_g,
        state_s,
        orders,
    ):
        return
    if state_s[j, S_WATCH] == 1.0:
        _arm_levels(p, j, dist_stack, exit_i, exit_f, state_s, levels)
        hit, rule, price = _scan(
            p, j, o, h, lo, _FALSE, _FALSE, exit_i, exit_f, state_s, levels, half_spread, touch
        )
        if hit != HIT_NONE:
            _close_hit(
                i, j, hit, rule, price, _AT_INTRABAR, volume_ij, params, state_g, state_s, orders, trades
            )


@njit(cache=True, error_model="numpy", inline="always")
def _cancel_entry(j, state_g, state_s):
    if state_s[j, S_PE_SIDE] >= 0.0:
        state_s[j, S_PE_SIDE] = -1.0
        state_g[G_N_WORKING] -= 1.0


@njit(cache=True, error_model="numpy", inline="always")
def _queue_exit(j, reason, bar, state_g, state_s):
    state_g[G_N_QUEUED] += 1.0
    state_s[j, S_PX_ACTIVE] = 1.0
    state_s[j, S_PX_REASON] = reason
    state_s[j, S_PX_SIGNAL_BAR] = bar


@njit(cache=True, error_model="numpy")
def _rebalance(
    p,
    i,
    top_n,
    max_open,
    close,
    volume,
    entries,
    order_price,
    sizing_ref,
    dist_stack,
    rot_score,
    side_i,
    side_f,
    exit_i,
    exit_f,
    params,
    state_g,
    state_s,
    levels,
    orders,
    trades,
):
    """Hold the ``top_n`` best-scored symbols whose first side's entry condition holds."""
    n_symbols = close.shape[1]
    trade_on_close = params[A_TRADE_ON_CLOSE] == 1.0
    # Pick the best scores one at a time (ties go to the earlier symbol): no sort needed for a top-n.
    wanted = np.zeros(n_symbols, dtype=np.bool_)
    ranking = np.full(n_symbols, -1, dtype=np.int64)
    for r in range(min(top_n, max_open, n_symbols)):
        best = -1
        best_score = -INF
        for j in range(n_symbols):
            score = rot_score[p, i, j]
            if wanted[j] or score != score or close[i, j] != close[i, j] or not entries[p, 0, i, j]:
                continue
            if best < 0 or score > best_score:
                best = j
                best_score = score
        if best < 0:
            break
        wanted[best] = True
        ranking[r] = best
    picked = int(wanted.sum())
    for j in range(n_symbols):
        if (
            state_s[j, S_QTY] == 0.0
            or state_s[j, S_PX_ACTIVE] == 1.0
            or state_s[j, S_SIDE] != 0.0
            or wanted[j]
        ):
            continue
        if trade_on_close and close[i, j] == close[i, j]:
            _close_position(
                i,
                j,
                close[i, j],
                _FALSE,
                _MARKET,
                _ROTATION,
                _AT_CLOSE,
                float(i),
                volume[i, j],
                params,
                state_g,
                state_s,
                orders,
                trades,
            )
        else:
            _queue_exit(j, _ROTATION, i, state_g, state_s)
    for r in range(picked):
        j = ranking[r]
        if state_s[j, S_PE_SIDE] >= 0.0:
            continue
        if state_s[j, S_QTY] != 0.0 and (state_s[j, S_PX_ACTIVE] == 0.0 or state_s[j, S_SIDE] == 0.0):
            continue
        if trade_on_close and side_i[0, SD_ORDER_KIND] == ORDER_MARKET:
            if (
                _open_position(
                    p,
                    i,
                    j,
                    _FIRST_SIDE,
                    close[i, j],
                    _MARKET,
                    _AT_CLOSE,
                    i,
                    volume[i, j],
                    sizing_ref,
                    side_i,
                    side_f,
                    params,
                    state_g,
                    state_s,
                    orders,
                )
                and state_s[j, S_WATCH] == 1.0
            ):
                _arm_levels(p, j, dist_stack, exit_i, exit_f, state_s, levels)
        else:
            _queue_entry(p, i, j, _FIRST_SIDE, order_price, side_i, side_f, state_g, state_s)


@njit(cache=True, error_model="numpy", nogil=True)
def run_bars(
    p,
    start,
    stop,
    prices,
    fine_start,
    fine,
    entries,
    order_price,
    sizing_ref,
    sig_stack,
    dist_stack,
    rot_score,
    entry_any,
    exit_any,
    side_i,
    side_f,
    exit_i,
    exit_f,
    port_i,
    params,
    state_g,
    state_s,
    levels,
    orders,
    trades,
    equity_out,
    cash_out,
    gross_out,
):
    """Simulate bars ``start..stop-1`` of plan ``p``; returns the next bar to process.

    Returns early (before a bar) when the record buffers might overflow; the caller grows them and
    calls again from the returned bar. Phases with nothing to do (no position, no working order) are
    skipped, which keeps flat stretches of a backtest nearly free.
    """
    open_, high, low, close, volume = prices
    fine_open, fine_high, fine_low, _fine_close = fine
    n_bars, n_symbols = close.shape
    n_sides = side_i.shape[0]
    n_exits = exit_i.shape[0]
    has_fine = fine_start.shape[0] == n_bars + 1
    trade_on_close = params[A_TRADE_ON_CLOSE] == 1.0
    touch = params[A_LIMIT_TOUCH] == 1.0
    half_spread = params[A_HALF_SPREAD]
    borrow_per_bar = params[A_BORROW_PER_BAR]
    max_open = port_i[p, PF_MAX_OPEN]
    top_n = port_i[p, PF_ROTATION_TOP_N]
    rotation_every = max(port_i[p, PF_ROTATION_EVERY], 1)
    warmup = port_i[p, PF_WARMUP]
    volume_model = params[A_VOLUME_SLIPPAGE] == 1.0
    need = 8 * n_symbols + 8
    i = start - 1
    while i + 1 < stop:
        i += 1
        if (
            orders.shape[0] - int(state_g[G_N_ORDERS]) < need
            or trades.shape[0] - int(state_g[G_N_TRADES]) < need
        ):
            return i
        if top_n == 0 and state_g[G_N_WORKING] == 0.0 and state_g[G_N_QUEUED] == 0.0:
            # Quiet stretch: with no working entry and no queued exit, only mark to market until a bar on
            # which an entry or exit signal, a time exit, a stop/target level inside the bar's range or
            # non-positive equity needs the full pass below. Marks and extremes written for that bar are
            # rewritten identically by the full pass; borrow is committed only for bars passed over.
            limit = stop
            can_skip = True
            for j in range(n_symbols):
                if state_s[j, S_QTY] == 0.0:
                    continue
                if state_s[j, S_TRAILS] == 1.0:
                    can_skip = False
                    break
                side = state_s[j, S_SIDE]
                for e in range(n_exits):
                    if exit_i[e, EX_SIDE] == side and exit_i[e, EX_KIND] == EXIT_TIME:
                        fire = int(np.ceil(state_s[j, S_ENTRY_POS] + exit_f[p, e, EF_BARS] - 1.0))
                        if fire < limit:
                            limit = max(fire, i)
            if can_skip:
                n_open = state_g[G_N_OPEN]
                entries_possible = n_open < max_open and state_g[G_LIQUIDATED] == 0.0
                cash = state_g[G_CASH]
                if n_open == 0.0:
                    while i < limit and not (entries_possible and i >= warmup and entry_any[p, i]):
                        _prefetch(open_, i + _OPEN_LOOKAHEAD, 0)
                        equity_out[i] = cash
                        cash_out[i] = cash
                        gross_out[i] = 0.0
                        i += 1
                elif n_open == 1.0:
                    # One position (the common single-symbol case): its state lives in registers.
                    held = 0
                    while state_s[held, S_QTY] == 0.0:
                        held += 1
                    qty = state_s[held, S_QTY]
                    mark = state_s[held, S_MARK]
                    hi = state_s[held, S_HI]
                    lo = state_s[held, S_LO]
                    watched = state_s[held, S_WATCH] == 1.0
                    stop_level = state_s[held, S_STOP]
                    target = state_s[held, S_TARGET]
                    borrow_total = 0.0
                    while i < limit:
                        if exit_any[p, i] or (entries_possible and i >= warmup and entry_any[p, i]):
                            break
                        _prefetch(open_, i + _OPEN_LOOKAHEAD, held)
                        c = close[i, held]
                        if c == c:
                            h = high[i, held]
                            low_i = low[i, held]
                            if watched and (
                                (qty > 0.0 and (low_i <= stop_level or h >= target))
                                or (qty < 0.0 and (h >= stop_level or low_i <= target))
                            ):
                                break
                            mark = c
                            if h > hi:
                                hi = h
                            if low_i < lo:
                                lo = low_i
                        notional = qty * mark
                        borrow = -notional * borrow_per_bar if qty < 0.0 else 0.0
                        equity = cash - borrow + notional
                        if equity <= 0.0:
                            break
                        cash -= borrow
                        borrow_total += borrow
                        equity_out[i] = equity
                        cash_out[i] = cash
                        gross_out[i] = abs(notional)
                        i += 1
                    state_s[held, S_MARK] = mark
                    state_s[held, S_HI] = hi
                    state_s[held, S_LO] = lo
                    state_s[held, S_BORROW] += borrow_total
                    state_g[G_BORROW] += borrow_total
                else:
                    while i < limit:
                        if entries_possible and i >= warmup and entry_any[p, i]:
                            break
                        if exit_any[p, i]:
                            break
                        value = 0.0
                        gross = 0.0
                        borrow = 0.0
                        level_inside = False
                        for j in range(n_symbols):
                            qty = state_s[j, S_QTY]
                            if qty == 0.0:
                                continue
                            c = close[i, j]
                            if c == c:
                                h = high[i, j]
                                low_i = low[i, j]
                                if state_s[j, S_WATCH] == 1.0:
                                    if qty > 0.0:
                                        level_inside = (
                                            low_i <= state_s[j, S_STOP] or h >= state_s[j, S_TARGET]
                                        )
                                    else:
                                        level_inside = (
                                            h >= state_s[j, S_STOP] or low_i <= state_s[j, S_TARGET]
                                        )
                                    if level_inside:
                                        break
                                state_s[j, S_MARK] = c
                                if h > state_s[j, S_HI]:
                                    state_s[j, S_HI] = h
                                if low_i < state_s[j, S_LO]:
                                    state_s[j, S_LO] = low_i
                            notional = qty * state_s[j, S_MARK]
                            if qty < 0.0:
                                borrow -= notional * borrow_per_bar
                            value += notional
                            gross += abs(notional)
                        if level_inside:
                            break
                        equity = cash - borrow + value
                        if equity <= 0.0:
                            break
                        if borrow > 0.0:
                            cash -= borrow
                            state_g[G_BORROW] += borrow
                            for j in range(n_symbols):
                                qty = state_s[j, S_QTY]
                                if qty < 0.0:
                                    state_s[j, S_BORROW] -= qty * state_s[j, S_MARK] * borrow_per_bar
                        equity_out[i] = equity
                        cash_out[i] = cash
                        gross_out[i] = gross
                        i += 1
                state_g[G_CASH] = cash
                if i >= stop:
                    break
                if i + 1 < n_bars:
                    # Bar i needs the full pass: an order decided now fills at the next open, where
                    # the other side's signals are read again (the stretch only streamed one side's).
                    _prefetch(open_, i + 1, 0)
                    _prefetch(entry_any, p, i + 1)
                    _prefetch(exit_any, p, i + 1)
        if state_g[G_N_QUEUED] > 0.0 or state_g[G_N_WATCHED] > 0.0 or state_g[G_N_WORKING] > 0.0:
            # 1a. The open: queued exits, gaps through stops/targets (and marks for sizing entries).
            for j in range(n_symbols):
                if state_s[j, S_QTY] == 0.0:
                    continue
                o = open_[i, j]
                if o != o:
                    continue
                state_s[j, S_MARK] = o
                if state_s[j, S_PX_ACTIVE] == 1.0:
                    _close_position(
                        i,
                        j,
                        o,
                        _FALSE,
                        _MARKET,
                        int(state_s[j, S_PX_REASON]),
                        _AT_OPEN,
                        state_s[j, S_PX_SIGNAL_BAR],
                        _volume_at(volume, i, j, volume_model),
                        params,
                        state_g,
                        state_s,
                        orders,
                        trades,
                    )
                elif state_s[j, S_WATCH] == 1.0:
                    hit, rule, price = _scan(
                        p, j, o, o, o, _TRUE, _TRUE, exit_i, exit_f, state_s, levels, half_spread, touch
                    )
                    if hit != HIT_NONE:
                        _close_hit(
                            i,
                            j,
                            hit,
                            rule,
                            price,
                            _AT_OPEN,
                            _volume_at(volume, i, j, volume_model),
                            params,
                            state_g,
                            state_s,
                            orders,
                            trades,
                        )
        if state_g[G_N_WORKING] > 0.0:
            # 1b. The open: queued entries (market), limit/stop entries the open crossed.
            for j in range(n_symbols):
                side = int(state_s[j, S_PE_SIDE])
                if side < 0 or state_s[j, S_QTY] != 0.0:
                    continue
                o = open_[i, j]
                if o != o:
                    continue
                if i > state_s[j, S_PE_EXPIRE]:
                    _cancel_entry(j, state_g, state_s)
                    continue
                kind = int(state_s[j, S_PE_TYPE])
                if kind == ORDER_MARKET:
                    fill = o
                else:
                    fill = _open_trigger(
                        side_i[side, SD_DIRECTION], kind, state_s[j, S_PE_PRICE], o, half_spread
                    )
                if fill == fill:
                    _cancel_entry(j, state_g, state_s)
                    if (
                        _open_position(
                            p,
                            i,
                            j,
                            side,
                            fill,
                            kind,
                            _AT_OPEN,
                            int(state_s[j, S_PE_SIGNAL_BAR]),
                            _volume_at(volume, i, j, volume_model),
                            sizing_ref,
                            side_i,
                            side_f,
                            params,
                            state_g,
                            state_s,
                            orders,
                        )
                        and state_s[j, S_WATCH] == 1.0
                    ):
                        _arm_levels(p, j, dist_stack, exit_i, exit_f, state_s, levels)
        if state_g[G_N_WATCHED] > 0.0 or state_g[G_N_WORKING] > 0.0:
            # 2. Inside the bar: stops/targets of open positions, then working limit/stop entries.
            fine_lo = 0
            fine_hi = 0
            if has_fine:
                fine_lo = fine_start[i]
                fine_hi = fine_start[i + 1]
            for j in range(n_symbols):
                o = open_[i, j]
                if o != o:
                    continue
                if state_s[j, S_QTY] != 0.0:
                    if state_s[j, S_WATCH] == 0.0:
                        continue
                    if fine_hi > fine_lo:
                        for k in range(fine_lo, fine_hi):
                            hit, rule, price = _scan(
                                p,
                                j,
                                fine_open[k, j],
                                fine_high[k, j],
                                fine_low[k, j],
                                k > fine_lo,
                                _TRUE,
                                exit_i,
                                exit_f,
                                state_s,
                                levels,
                                half_spread,
                                touch,
                            )
                            if hit != HIT_NONE:
                                _close_hit(
                                    i,
                                    j,
                                    hit,
                                    rule,
                                    price,
                                    _AT_INTRABAR,
                                    _volume_at(volume, i, j, volume_model),
                                    params,
                                    state_g,
                                    state_s,
                                    orders,
                                    trades,
                                )
                                break
                    else:
                        hit, rule, price = _scan(
                            p,
                            j,
                            o,
                            high[i, j],
                            low[i, j],
                            _FALSE,
                            _TRUE,
                            exit_i,
                            exit_f,
                            state_s,
                            levels,
                            half_spread,
                            touch,
                        )
                        if hit != HIT_NONE:
                            _close_hit(
                                i,
                                j,
                                hit,
                                rule,
                                price,
                                _AT_INTRABAR,
                                _volume_at(volume, i, j, volume_model),
                                params,
                                state_g,
                                state_s,
                                orders,
                                trades,
                            )
                elif (
                    state_s[j, S_PE_SIDE] >= 0.0
                    and i <= state_s[j, S_PE_EXPIRE]
                    and state_s[j, S_PE_TYPE] != ORDER_MARKET
                ):
                    _fill_working_entry(
                        p,
                        i,
                        j,
                        o,
                        high[i, j],
                        low[i, j],
                        fine_lo,
                        fine_hi,
                        fine_open,
                        fine_high,
                        fine_low,
                        _volume_at(volume, i, j, volume_model),
                        sizing_ref,
                        dist_stack,
                        side_i,
                        side_f,
                        exit_i,
                        exit_f,
                        params,
                        state_g,
                        state_s,
                        levels,
                        orders,
                        trades,
                    )
        # 3. The close: expiries, marks, excursions, borrow and equity; then the close's decisions.
        active = 0
        if state_g[G_N_WORKING] > 0.0:
            for j in range(n_symbols):
                if state_s[j, S_PE_SIDE] >= 0.0:
                    if i >= state_s[j, S_PE_EXPIRE]:
                        _cancel_entry(j, state_g, state_s)
                    else:
                        active += 1
        equity = state_g[G_CASH]
        gross = 0.0
        if state_g[G_N_OPEN] > 0.0:
            value = 0.0
            for j in range(n_symbols):
                qty = state_s[j, S_QTY]
                if qty == 0.0:
                    continue
                c = close[i, j]
                if c == c:
                    state_s[j, S_MARK] = c
                    if high[i, j] > state_s[j, S_HI]:
                        state_s[j, S_HI] = high[i, j]
                    if low[i, j] < state_s[j, S_LO]:
                        state_s[j, S_LO] = low[i, j]
                notional = qty * state_s[j, S_MARK]
                if qty < 0.0 and borrow_per_bar > 0.0:
                    fee = -notional * borrow_per_bar
                    state_g[G_CASH] -= fee
                    state_g[G_BORROW] += fee
                    state_s[j, S_BORROW] += fee
                value += notional
                gross += abs(notional)
            equity = state_g[G_CASH] + value
            if equity <= 0.0 and state_g[G_LIQUIDATED] == 0.0:
                state_g[G_LIQUIDATED] = 1.0
                for j in range(n_symbols):
                    _cancel_entry(j, state_g, state_s)
                    if state_s[j, S_QTY] == 0.0:
                        continue
                    if trade_on_close:
                        _close_position(
                            i,
                            j,
                            state_s[j, S_MARK],
                            _FALSE,
                            _MARKET,
                            _LIQUIDATION,
                            _AT_CLOSE,
                            float(i),
                            _volume_at(volume, i, j, volume_model),
                            params,
                            state_g,
                            state_s,
                            orders,
                            trades,
                        )
                    else:
                        _queue_exit(j, _LIQUIDATION, i, state_g, state_s)
                active = 0
            # Exit decisions.
            for j in range(n_symbols):
                if state_s[j, S_QTY] == 0.0 or state_s[j, S_PX_ACTIVE] == 1.0:
                    continue
                c = close[i, j]
                side = state_s[j, S_SIDE]
                reason = NO_REASON
                if c == c:
                    for e in range(n_exits):
                        if exit_i[e, EX_SIDE] != side:
                            continue
                        kind = exit_i[e, EX_KIND]
                        if kind == EXIT_SIGNAL:
                            if (
                                i > state_s[j, S_SIGNAL_BAR]
                                and sig_stack[p, exit_i[e, EX_SIGNAL_INDEX], i, j]
                            ):
                                reason = e
                                break
                        elif kind == EXIT_TIME and i + 1.0 - state_s[j, S_ENTRY_POS] >= exit_f[p, e, EF_BARS]:
                            reason = e
                            break
                if reason == NO_REASON:
                    active += 1
                elif trade_on_close:
                    _close_position(
                        i,
                        j,
                        c,
                        _FALSE,
                        _MARKET,
                        reason,
                        _AT_CLOSE,
                        float(i),
                        _volume_at(volume, i, j, volume_model),
                        params,
                        state_g,
                        state_s,
                        orders,
                        trades,
                    )
                else:
                    _queue_exit(j, reason, i, state_g, state_s)
        # Entry decisions.
        if i >= warmup and state_g[G_LIQUIDATED] == 0.0:
            if top_n > 0:
                if (i - warmup) % rotation_every == 0:
                    _rebalance(
                        p,
                        i,
                        top_n,
                        max_open,
                        close,
                        volume,
                        entries,
                        order_price,
                        sizing_ref,
                        dist_stack,
                        rot_score,
                        side_i,
                        side_f,
                        exit_i,
                        exit_f,
                        params,
                        state_g,
                        state_s,
                        levels,
                        orders,
                        trades,
                    )
            elif active < max_open:
                for j in range(n_symbols):
                    for s in range(n_sides):
                        if not entries[p, s, i, j]:
                            continue
                        held = state_s[j, S_QTY] != 0.0
                        if state_s[j, S_PE_SIDE] >= 0.0 or (held and state_s[j, S_PX_ACTIVE] == 0.0):
                            break
                        if held and s == state_s[j, S_SIDE]:
                            continue
                        c = close[i, j]
                        if c != c:
                            break
                        if trade_on_close and side_i[s, SD_ORDER_KIND] == ORDER_MARKET:
                            if _open_position(
                                p,
                                i,
                                j,
                                s,
                                c,
                                _MARKET,
                                _AT_CLOSE,
                                i,
                                _volume_at(volume, i, j, volume_model),
                                sizing_ref,
                                side_i,
                                side_f,
                                params,
                                state_g,
                                state_s,
                                orders,
                            ):
                                active += 1
                                if state_s[j, S_WATCH] == 1.0:
                                    _arm_levels(p, j, dist_stack, exit_i, exit_f, state_s, levels)
                        elif _queue_entry(p, i, j, s, order_price, side_i, side_f, state_g, state_s):
                            active += 1
                        break
                    if active >= max_open:
                        break
        if trade_on_close:
            equity, gross = _equity_and_gross(state_g, state_s)
        equity_out[i] = equity
        cash_out[i] = state_g[G_CASH]
        gross_out[i] = gross
    return stop


@njit(cache=True, error_model="numpy", nogil=True)
def finish(close, volume, params, state_g, state_s, orders, trades, equity_out, cash_out, gross_out):
    """After the last bar: close what is still open (``close_at_end``) or report it as an open trade."""
    n_bars, n_symbols = close.shape
    if n_bars == 0:
        return
    last = n_bars - 1
    for j in range(n_symbols):
        if state_s[j, S_QTY] == 0.0:
            continue
        mark = state_s[j, S_MARK]
        if params[A_CLOSE_AT_END] == 1.0:
            _close_position(
                last,
                j,
                mark,
                _FALSE,
                _MARKET,
                _END_OF_DATA,
                _AT_CLOSE,
                float(last),
                volume[last, j],
                params,
                state_g,
                state_s,
                orders,
                trades,
            )
        else:
            _record_trade(
                last,
                j,
                mark,
                mark,
                0.0,
                0.0,
                _STILL_OPEN,
                _AT_CLOSE,
                float(last),
                1.0,
                state_g,
                state_s,
                trades,
            )
    equity, gross = _equity_and_gross(state_g, state_s)
    equity_out[last] = equity
    cash_out[last] = state_g[G_CASH]
    gross_out[last] = gross


# --- trade metrics (read the trade record layout above) ---------------------------------------

TRADE_METRICS = (
    "trades",
    "long_trades",
    "short_trades",
    "winning_trades",
    "losing_trades",
    "win_rate",
    "gross_profit",
    "gross_loss",
    "net_profit",
    "profit_factor",
    "expectancy",
    "avg_trade_return",
    "avg_win",
    "avg_loss",
    "payoff_ratio",
    "sqn",
    "kelly",
    "best_trade_return",
    "worst_trade_return",
    "largest_win",
    "largest_loss",
    "avg_holding_bars",
    "median_holding_bars",
    "max_holding_bars",
    "avg_holding_days",
    "median_holding_days",
    "max_consecutive_wins",
    "max_consecutive_losses",
    "avg_mae",
    "avg_mfe",
    "open_trades",
    "open_pnl",
)
N_TRADE_METRICS = len(TRADE_METRICS)
(
    X_TRADES,
    X_LONG,
    X_SHORT,
    X_WINS,
    X_LOSSES,
    X_WIN_RATE,
    X_GROSS_PROFIT,
    X_GROSS_LOSS,
    X_NET,
    X_PF,
    X_EXPECTANCY,
    X_AVG_TRADE_RETURN,
    X_AVG_WIN,
    X_AVG_LOSS,
    X_PAYOFF,
    X_SQN,
    X_KELLY,
    X_BEST,
    X_WORST,
    X_LARGEST_WIN,
    X_LARGEST_LOSS,
    X_AVG_HOLD,
    X_MEDIAN_HOLD,
    X_MAX_HOLD,
    X_AVG_HOLD_DAYS,
    X_MEDIAN_HOLD_DAYS,
    X_CONSEC_WINS,
    X_CONSEC_LOSSES,
    X_AVG_MAE,
    X_AVG_MFE,
    X_OPEN,
    X_OPEN_PNL,
) = range(N_TRADE_METRICS)

NS_PER_DAY = 86_400_000_000_000


@njit(cache=True, error_model="numpy")
def _at_fraction(at):
    return 0.0 if at == 0.0 else (0.5 if at == 1.0 else 1.0)


@njit(cache=True, error_model="numpy")
def _select(values, k):
    """The k-th smallest of ``values`` (0-based), by quickselect on the array in place."""
    lo = 0
    hi = values.shape[0] - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return values[k]
    return values[k]


@njit(cache=True, error_model="numpy")
def _median(values):
    """Median of a scratch array (reordered in place)."""
    n = values.shape[0]
    upper = _select(values, n // 2)
    if n % 2 == 1:
        return upper
    return 0.5 * (_select(values, n // 2 - 1) + upper)


@njit(cache=True, error_model="numpy", nogil=True)
def trade_metrics(trades, n_trades, index):
    """Summary metrics of the closed trades among the first ``n_trades`` records.

    pnl is net of both legs' fees and borrow; sqn = √n·mean(pnl)/std(pnl, ddof=1); kelly = win_rate −
    (1 − win_rate)/payoff_ratio; holding time runs from the entry fill instant (open = bar, intrabar =
    bar + ½, close = bar + 1) to the exit's, in bars, and in calendar days between the entry and exit
    bars' open times; win/loss streaks follow exit order.
    """
    out = np.full(N_TRADE_METRICS, np.nan)
    closed = 0
    longs = 0
    shorts = 0
    wins = 0
    losses = 0
    gross_profit = 0.0
    gross_loss = 0.0
    sum_pnl = 0.0
    sum_pnl2 = 0.0
    sum_ret = 0.0
    best = -np.inf
    worst = np.inf
    largest_win = 0.0
    largest_loss = 0.0
    sum_hold = 0.0
    max_hold = 0.0
    run_wins = 0
    run_losses = 0
    max_run_wins = 0
    max_run_losses = 0
    sum_mae = 0.0
    sum_mfe = 0.0
    open_count = 0
    open_pnl = 0.0
    holds = np.empty(n_trades)
    days = np.empty(n_trades)
    for t in range(n_trades):
        pnl = trades[t, T_PNL]
        if trades[t, T_IS_OPEN] == 1.0:
            open_count += 1
            open_pnl += pnl
            continue
        hold = (trades[t, T_EXIT_BAR] + _at_fraction(trades[t, T_EXIT_AT])) - (
            trades[t, T_ENTRY_BAR] + _at_fraction(trades[t, T_ENTRY_AT])
        )
        holds[closed] = hold
        days[closed] = (index[int(trades[t, T_EXIT_BAR])] - index[int(trades[t, T_ENTRY_BAR])]) / NS_PER_DAY
        closed += 1
        if trades[t, T_DIRECTION] > 0:
            longs += 1
        else:
            shorts += 1
        sum_pnl += pnl
        sum_pnl2 += pnl * pnl
        ret = trades[t, T_RETURN]
        sum_ret += ret
        if ret > best:
            best = ret
        if ret < worst:
            worst = ret
        if pnl > 0.0:
            wins += 1
            gross_profit += pnl
            if pnl > largest_win:
                largest_win = pnl
            run_wins += 1
            run_losses = 0
        else:
            losses += 1
            gross_loss -= pnl
            if pnl < largest_loss:
                largest_loss = pnl
            run_losses += 1
            run_wins = 0
        if run_wins > max_run_wins:
            max_run_wins = run_wins
        if run_losses > max_run_losses:
            max_run_losses = run_losses
        sum_hold += hold
        if hold > max_hold:
            max_hold = hold
        sum_mae += trades[t, T_MAE]
        sum_mfe += trades[t, T_MFE]
    out[X_TRADES] = closed
    out[X_LONG] = longs
    out[X_SHORT] = shorts
    out[X_WINS] = wins
    out[X_LOSSES] = losses
    out[X_GROSS_PROFIT] = gross_profit
    out[X_GROSS_LOSS] = gross_loss
    out[X_NET] = sum_pnl
    out[X_OPEN] = open_count
    out[X_OPEN_PNL] = open_pnl
    out[X_CONSEC_WINS] = max_run_wins
    out[X_CONSEC_LOSSES] = max_run_losses
    if closed == 0:
        return out
    win_rate = wins / closed
    out[X_WIN_RATE] = win_rate
    if gross_loss > 0.0:
        out[X_PF] = gross_profit / gross_loss
    mean_pnl = sum_pnl / closed
    out[X_EXPECTANCY] = mean_pnl
    out[X_AVG_TRADE_RETURN] = sum_ret / closed
    if wins > 0:
        out[X_AVG_WIN] = gross_profit / wins
    if losses > 0:
        out[X_AVG_LOSS] = -gross_loss / losses
    if wins > 0 and losses > 0 and gross_loss > 0.0:
        payoff = (gross_profit / wins) / (gross_loss / losses)
        out[X_PAYOFF] = payoff
        if payoff > 0.0:
            out[X_KELLY] = win_rate - (1.0 - win_rate) / payoff
    if closed > 1:
        var = (sum_pnl2 - closed * mean_pnl * mean_pnl) / (closed - 1)
        if var > 0.0:
            out[X_SQN] = np.sqrt(closed) * mean_pnl / np.sqrt(var)
    out[X_BEST] = best
    out[X_WORST] = worst
    out[X_LARGEST_WIN] = largest_win
    out[X_LARGEST_LOSS] = largest_loss
    out[X_AVG_HOLD] = sum_hold / closed
    out[X_MEDIAN_HOLD] = _median(holds[:closed])
    out[X_AVG_HOLD_DAYS] = days[:closed].sum() / closed
    out[X_MEDIAN_HOLD_DAYS] = _median(days[:closed])
    out[X_MAX_HOLD] = max_hold
    out[X_AVG_MAE] = sum_mae / closed
    out[X_AVG_MFE] = sum_mfe / closed
    return out


# --- equity-curve metrics ------------------------------------------------------------------------
#
# Numba equity-curve metrics: one pass over the bars plus one over return periods.
#
# (Trade metrics live in ``_kernel``, beside the trade record layout they read.)
#
# Return statistics use **period returns**: one per UTC calendar day when bars are intraday (average
# spacing under a day), one per bar otherwise; ``r_k = E_k / E_{k-1} - 1`` with ``E`` the equity at each
# period's last bar and ``E_{-1}`` the initial cash. ``A`` is periods per year (observed days per
# calendar year for intraday bars, else the bar frequency) and ``rf`` the per-period risk-free rate.
#
# * annual_volatility = std(r, ddof=1)·√A; sharpe = (mean(r) − rf) / std(r, ddof=1)·√A;
#   sortino = (mean(r) − rf) / √(mean(min(r − rf, 0)²))·√A; annual_return (CAGR) =
#   (E_last / E_{-1})^(1 / years) − 1 with years = bars / bar frequency; calmar = CAGR / |max_drawdown|.
# * Per bar: drawdown_t = E_t / max(E_{-1..t}) − 1 (≤ 0); an episode runs from a peak to the first bar back
#   at or above it (or to the end); durations are in bars; ulcer_index = √mean(drawdown²).
# * var_95 = 5th percentile of r (linear interpolation, numpy's default); cvar_95 = mean of r ≤ var_95;
#   tail_ratio = |95th percentile| / |5th percentile|; omega = Σ max(r, 0) / Σ max(−r, 0);
#   skew and (excess) kurtosis are the population moments of r.
# * The benchmark is the equal-weight buy-and-hold of the universe (each symbol bought at its first close)
#   sampled at the same period ends: beta = cov(r, b) / var(b), alpha = (mean(r) − beta·mean(b))·A,
#   information_ratio = mean(r − b) / std(r − b)·√A.
# * exposure = share of bars with a position at the close; gross leverage = gross exposure / equity.

EQUITY_METRICS = (
    "final_equity",
    "peak_equity",
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_cash",
    "avg_drawdown",
    "max_drawdown_duration_bars",
    "max_drawdown_start_bar",
    "max_drawdown_end_bar",
    "drawdown_episodes",
    "current_drawdown",
    "ulcer_index",
    "skew",
    "kurtosis",
    "var_95",
    "cvar_95",
    "tail_ratio",
    "omega",
    "best_period_return",
    "worst_period_return",
    "return_periods",
    "return_periods_per_year",
    "exposure",
    "avg_gross_leverage",
    "max_gross_leverage",
    "benchmark_return",
    "alpha",
    "beta",
    "correlation",
    "information_ratio",
    "avg_equity",
)
N_EQUITY_METRICS = len(EQUITY_METRICS)

(
    M_FINAL,
    M_PEAK,
    M_TOTAL_RETURN,
    M_CAGR,
    M_VOL,
    M_SHARPE,
    M_SORTINO,
    M_CALMAR,
    M_MAX_DD,
    M_MAX_DD_CASH,
    M_AVG_DD,
    M_DD_DURATION,
    M_DD_START,
    M_DD_END,
    M_DD_EPISODES,
    M_CURRENT_DD,
    M_ULCER,
    M_SKEW,
    M_KURT,
    M_VAR,
    M_CVAR,
    M_TAIL,
    M_OMEGA,
    M_BEST_PERIOD,
    M_WORST_PERIOD,
    M_PERIODS,
    M_PERIODS_PER_YEAR,
    M_EXPOSURE,
    M_AVG_LEV,
    M_MAX_LEV,
    M_BENCH,
    M_ALPHA,
    M_BETA,
    M_CORR,
    M_INFO,
    M_AVG_EQUITY,
) = range(N_EQUITY_METRICS)


NS_PER_YEAR = 365.25 * NS_PER_DAY


@njit(cache=True, error_model="numpy")
def _linear_percentile(sorted_values, q):
    """numpy's default (linear interpolation) percentile of an ascending array."""
    n = sorted_values.shape[0]
    h = q * (n - 1)
    low = int(np.floor(h))
    if low + 1 >= n:
        return sorted_values[n - 1]
    return sorted_values[low] + (sorted_values[low + 1] - sorted_values[low]) * (h - low)


@njit(cache=True, error_model="numpy")
def benchmark_at(close, ends, n_ends, out):
    """Equal-weight buy-and-hold value (starts at 1) at the period-end bars ``ends[:n_ends]``.

    Each symbol is bought at its first valid close; a symbol without a close at a period end keeps
    its last valid close of that period (or the previous period's value).
    """
    n_bars, n_symbols = close.shape
    first = np.full(n_symbols, np.nan)
    last = np.full(n_symbols, np.nan)
    for j in range(n_symbols):
        for i in range(n_bars):
            c = close[i, j]
            if c == c and c > 0.0:
                first[j] = c
                break
    previous_end = -1
    for k in range(n_ends):
        i = ends[k]
        total = 0.0
        for j in range(n_symbols):
            for row in range(i, previous_end, -1):
                c = close[row, j]
                if c == c and c > 0.0:
                    last[j] = c
                    break
            total += last[j] / first[j] if last[j] == last[j] else 1.0
        out[k] = total / n_symbols
        previous_end = i


@njit(cache=True, error_model="numpy")
def _period_ends(index, intraday):
    """Bars that close a return period: every bar, or for intraday bars the last bar of each UTC day.

    Day ends are found by binary search per day boundary, so the bar loop never reads the index.
    """
    n = index.shape[0]
    if not intraday:
        return np.arange(n), n
    first_day = index[0] // NS_PER_DAY
    last_day = index[n - 1] // NS_PER_DAY
    ends = np.empty(min(last_day - first_day + 1, n), dtype=np.int64)
    count = 0
    lo = 0
    for day in range(first_day + 1, last_day + 1):
        after = lo + int(np.searchsorted(index[lo:], day * NS_PER_DAY))
        if after > lo:
            ends[count] = after - 1
            count += 1
            lo = after
    ends[count] = n - 1
    return ends, count + 1


@njit(cache=True, error_model="numpy", nogil=True)
def equity_metrics(
    equity, gross, close, index, initial_cash, bar_periods_per_year, risk_free_rate, drawdown_out
):
    """Summary metrics of an equity curve; fills the per-bar drawdown series.

    Returns the metric vector, the period-end bars and the number of periods.
    """
    out = np.full(N_EQUITY_METRICS, np.nan)
    n = equity.shape[0]
    if n == 0:
        return out, np.empty(0, dtype=np.int64), 0
    intraday = n > 1 and (index[n - 1] - index[0]) / (n - 1) < NS_PER_DAY
    ends, n_periods = _period_ends(index, intraday)
    # Pass over bars: drawdowns and exposure.
    peak = initial_cash
    peak_bar = -1
    sum_dd2 = 0.0
    max_dd = 0.0
    max_dd_cash = 0.0
    max_duration = 0
    duration_start = -1
    duration_end = -1
    episodes = 0
    episode_depth = 0.0
    depth_sum = 0.0
    underwater = False
    exposed = 0
    lev_sum = 0.0
    lev_max = 0.0
    sum_equity = 0.0
    for i in range(n):
        e = equity[i]
        sum_equity += e
        if e >= peak:
            if underwater:
                if i - peak_bar > max_duration:
                    max_duration = i - peak_bar
                    duration_start = peak_bar
                    duration_end = i
                depth_sum += episode_depth
                underwater = False
            peak = e
            peak_bar = i
            dd = 0.0
        else:
            dd = e / peak - 1.0 if peak > 0.0 else -1.0
            if not underwater:
                underwater = True
                episodes += 1
                episode_depth = 0.0
            # Selects, not branches: a falling curve makes new lows at unpredictable bars.
            episode_depth = dd if dd < episode_depth else episode_depth
            loss = peak - e
            max_dd_cash = loss if loss > max_dd_cash else max_dd_cash
            max_dd = dd if dd < max_dd else max_dd
        drawdown_out[i] = dd
        sum_dd2 += dd * dd
        g = gross[i]
        if g > 0.0:
            exposed += 1
            if e > 0.0:
                lev = g / e
                lev_sum += lev
                lev_max = lev if lev > lev_max else lev_max
    if underwater:
        if n - 1 - peak_bar > max_duration:
            max_duration = n - 1 - peak_bar
            duration_start = peak_bar
            duration_end = n - 1
        depth_sum += episode_depth
    # Pass over periods: the return distribution against the benchmark.
    bench = np.empty(n_periods)
    benchmark_at(close, ends, n_periods, bench)
    if intraday:
        span_years = (index[n - 1] - index[0]) / NS_PER_YEAR
        periods_per_year = n_periods / span_years if span_years > 0.0 else bar_periods_per_year
    else:
        periods_per_year = bar_periods_per_year
    rf = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    returns = np.empty(n_periods)
    previous = initial_cash
    previous_bench = 1.0
    sum_r = 0.0
    sum_b = 0.0
    sum_down = 0.0
    sum_pos = 0.0
    sum_neg = 0.0
    for k in range(n_periods):
        e = equity[ends[k]]
        r = e / previous - 1.0 if previous > 0.0 else 0.0
        previous = e
        b = bench[k] / previous_bench - 1.0
        previous_bench = bench[k]
        returns[k] = r
        bench[k] = b
        sum_r += r
        sum_b += b
        d = r - rf
        if d < 0.0:
            sum_down += d * d
        if r > 0.0:
            sum_pos += r
        else:
            sum_neg -= r
    mean_r = sum_r / n_periods
    mean_b = sum_b / n_periods
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    var_b = 0.0
    cov = 0.0
    te2 = 0.0
    for k in range(n_periods):
        c = returns[k] - mean_r
        cb = bench[k] - mean_b
        c2 = c * c
        m2 += c2
        m3 += c2 * c
        m4 += c2 * c2
        var_b += cb * cb
        cov += c * cb
        te2 += (c - cb) * (c - cb)
    final = equity[n - 1]
    years = n / bar_periods_per_year
    out[M_FINAL] = final
    out[M_PEAK] = peak
    out[M_TOTAL_RETURN] = final / initial_cash - 1.0
    out[M_CAGR] = (final / initial_cash) ** (1.0 / years) - 1.0 if final > 0.0 else -1.0
    out[M_PERIODS_PER_YEAR] = periods_per_year
    root = np.sqrt(periods_per_year)
    if n_periods > 1:
        std = np.sqrt(m2 / (n_periods - 1))
        out[M_VOL] = std * root
        if std > 0.0:
            out[M_SHARPE] = (mean_r - rf) / std * root
        if var_b > 0.0:
            beta = cov / var_b
            out[M_BETA] = beta
            out[M_ALPHA] = (mean_r - beta * mean_b) * periods_per_year
            if m2 > 0.0:
                out[M_CORR] = cov / np.sqrt(m2 * var_b)
        if te2 > 0.0:
            out[M_INFO] = (mean_r - mean_b) / np.sqrt(te2 / (n_periods - 1)) * root
    downside = np.sqrt(sum_down / n_periods)
    if downside > 0.0:
        out[M_SORTINO] = (mean_r - rf) / downside * root
    out[M_MAX_DD] = max_dd
    out[M_MAX_DD_CASH] = max_dd_cash
    if max_dd < 0.0:
        out[M_CALMAR] = out[M_CAGR] / -max_dd
    out[M_AVG_DD] = depth_sum / episodes if episodes > 0 else 0.0
    out[M_DD_DURATION] = max_duration
    out[M_DD_START] = duration_start
    out[M_DD_END] = duration_end
    out[M_DD_EPISODES] = episodes
    out[M_CURRENT_DD] = drawdown_out[n - 1]
    out[M_ULCER] = np.sqrt(sum_dd2 / n)
    if m2 > 0.0:
        variance = m2 / n_periods
        out[M_SKEW] = (m3 / n_periods) / variance**1.5
        out[M_KURT] = (m4 / n_periods) / (variance * variance) - 3.0
    ordered = np.sort(returns)
    q05 = _linear_percentile(ordered, 0.05)
    q95 = _linear_percentile(ordered, 0.95)
    out[M_VAR] = q05
    tail_sum = 0.0
    tail_count = 0
    for k in range(n_periods):
        if ordered[k] > q05:
            break
        tail_sum += ordered[k]
        tail_count += 1
    if tail_count > 0:
        out[M_CVAR] = tail_sum / tail_count
    if q05 != 0.0:
        out[M_TAIL] = abs(q95) / abs(q05)
    if sum_neg > 0.0:
        out[M_OMEGA] = sum_pos / sum_neg
    out[M_BEST_PERIOD] = ordered[n_periods - 1]
    out[M_WORST_PERIOD] = ordered[0]
    out[M_PERIODS] = n_periods
    out[M_EXPOSURE] = exposed / n
    out[M_AVG_LEV] = lev_sum / n
    out[M_MAX_LEV] = lev_max
    out[M_BENCH] = previous_bench - 1.0
    out[M_AVG_EQUITY] = sum_equity / n
    return out, ends, n_periods


@njit(cache=True, error_model="numpy")
def _bucket_extremes(values, lo, hi):
    # Selects instead of branches: the loop compiles to conditional moves (about twice as fast).
    i_min = lo
    i_max = lo
    v_min = values[lo]
    v_max = v_min
    for i in range(lo + 1, hi):
        v = values[i]
        lower = v < v_min
        higher = v > v_max
        v_min = v if lower else v_min
        i_min = i if lower else i_min
        v_max = v if higher else v_max
        i_max = i if higher else i_max
    return i_min, i_max


@njit(cache=True, error_model="numpy", nogil=True)
def minmax_downsample(values, max_points):
    """Indices of a chart-sized subset of ``values`` that keeps every bucket's minimum and maximum.

    The series is cut into ``max_points // 2 - 1`` equal buckets; each contributes its min and max in
    time order (one point when they coincide); the first and last points are always kept, so the
    global extremes and the end value survive downsampling.
    """
    n = values.shape[0]
    if n <= max_points:
        return np.arange(n)
    buckets = max(max_points // 2 - 1, 1)
    keep = np.empty(2 * buckets + 2, dtype=np.int64)
    keep[0] = 0
    count = 1
    inner = n - 2
    for b in range(buckets):
        lo = 1 + (b * inner) // buckets
        hi = 1 + ((b + 1) * inner) // buckets
        if hi <= lo:
            continue
        i_min, i_max = _bucket_extremes(values, lo, hi)
        keep[count] = min(i_min, i_max)
        count += 1
        if i_max != i_min:
            keep[count] = max(i_min, i_max)
            count += 1
    keep[count] = n - 1
    return keep[: count + 1]


# --- sweeps --------------------------------------------------------------------------------------

SWEEP_METRICS = (*EQUITY_METRICS, *TRADE_METRICS, "fees_paid", "orders", "traded_notional")
_EXTRA = N_EQUITY_METRICS + N_TRADE_METRICS


# nogil: the engine runs chunks of plans on several threads at once.
@njit(cache=True, error_model="numpy", nogil=True)
def sweep_kernel(
    prices,
    fine_start,
    fine,
    entries,
    order_price,
    sizing_ref,
    sig_stack,
    dist_stack,
    rot_score,
    entry_any,
    exit_any,
    side_i,
    side_f,
    exit_i,
    exit_f,
    port_i,
    params,
    index,
    periods_per_year,
    risk_free_rate,
    capacity,
    summarise,
    out,
):
    """Simulate plans ``0..P-1`` and write each one's metrics row into ``out``.

    Without ``summarise`` only the final equity, the trade count (closed and open) and the run totals
    are written: the simulation core alone.
    """
    close = prices[3]
    volume = prices[4]
    n_bars, n_symbols = close.shape
    need = 8 * n_symbols + 8
    initial_cash = params[A_INITIAL_CASH]
    equity = np.empty(n_bars)
    cash = np.empty(n_bars)
    gross = np.empty(n_bars)
    drawdown = np.empty(n_bars)
    orders = np.empty((capacity, N_ORDER_FIELDS))
    trades = np.empty((capacity, N_TRADE_FIELDS))
    for p in range(port_i.shape[0]):
        state_g, state_s, levels = new_state(n_symbols, exit_i.shape[0], initial_cash)
        bar = 0
        while bar < n_bars:
            bar = run_bars(
                p,
                bar,
                n_bars,
                prices,
                fine_start,
                fine,
                entries,
                order_price,
                sizing_ref,
                sig_stack,
                dist_stack,
                rot_score,
                entry_any,
                exit_any,
                side_i,
                side_f,
                exit_i,
                exit_f,
                port_i,
                params,
                state_g,
                state_s,
                levels,
                orders,
                trades,
                equity,
                cash,
                gross,
            )
            if bar < n_bars:
                orders = grow_records(orders, need)
                trades = grow_records(trades, need)
        if (
            min(orders.shape[0] - int(state_g[G_N_ORDERS]), trades.shape[0] - int(state_g[G_N_TRADES]))
            <= n_symbols
        ):
            orders = grow_records(orders, n_symbols + 1)
            trades = grow_records(trades, n_symbols + 1)
        finish(close, volume, params, state_g, state_s, orders, trades, equity, cash, gross)
        if summarise:
            metrics, _, _ = equity_metrics(
                equity, gross, close, index, initial_cash, periods_per_year, risk_free_rate, drawdown
            )
            out[p, :N_EQUITY_METRICS] = metrics
            out[p, N_EQUITY_METRICS:_EXTRA] = trade_metrics(trades, int(state_g[G_N_TRADES]), index)
        else:
            out[p, M_FINAL] = equity[n_bars - 1]
            out[p, N_EQUITY_METRICS + X_TRADES] = state_g[G_N_TRADES]
        out[p, _EXTRA] = state_g[G_FEES]
        out[p, _EXTRA + 1] = state_g[G_N_ORDERS]
        out[p, _EXTRA + 2] = state_g[G_TURNOVER]
