"""Turn ``StrategyPlan`` objects into the flat arrays the numba kernel reads.

A batch of plans (a sweep) must share one structure (same sides, exit kinds and the same optional
inputs); their arrays are stacked on a leading plan axis so one compiled call runs them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import _kernel as k
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.codes import (
    EXIT_BRACKET,
    EXIT_KIND_CODES,
    EXIT_SIGNAL,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TIME,
    EXIT_TRAILING,
    ORDER_LIMIT,
    ORDER_MARKET,
    ORDER_STOP,
    SIZE_RISK_PER_TRADE,
    SIZE_VOLATILITY_TARGET,
    SIZING_CODES,
)
from packages.domain.strategy.plan import ExitPlan, SidePlan, StrategyPlan

_ORDER_CODES = {"market": ORDER_MARKET, "limit": ORDER_LIMIT, "stop": ORDER_STOP}
_PRICE_EXIT_KINDS = {EXIT_STOP_LOSS, EXIT_TAKE_PROFIT, EXIT_TRAILING, EXIT_BRACKET}


class PlanError(ValueError):
    """The plan does not fit the bars or is internally inconsistent."""


@dataclass(frozen=True)
class ExitRule:
    """One flattened exit rule: which side it belongs to and the name reported as exit reason."""

    side: int
    name: str
    kind: int


@dataclass(frozen=True)
class PackedPlans:
    """Kernel inputs for ``P`` plans of one structure."""

    entries: npt.NDArray[np.bool_]  # (P, S, n, m)
    order_price: npt.NDArray[np.float64]  # (P, S, n|1, m|1)
    sizing_ref: npt.NDArray[np.float64]  # (P, S, n|1, m|1)
    sig_stack: npt.NDArray[np.bool_]  # (P, Ks, n|1, m|1)
    dist_stack: npt.NDArray[np.float64]  # (P, Kd, n|1, m|1)
    rot_score: npt.NDArray[np.float64]  # (P, n|1, m|1)
    entry_any: npt.NDArray[np.bool_]  # (P, n): any entry signal on the bar
    exit_any: npt.NDArray[np.bool_]  # (P, n): any signal exit on the bar
    side_i: npt.NDArray[np.int64]  # (S, N_SIDE_INT)
    side_f: npt.NDArray[np.float64]  # (P, S, N_SIDE_FLOAT)
    exit_i: npt.NDArray[np.int64]  # (E, N_EXIT_INT)
    exit_f: npt.NDArray[np.float64]  # (P, E, N_EXIT_FLOAT)
    port_i: npt.NDArray[np.int64]  # (P, N_PORTFOLIO)
    exit_rules: tuple[ExitRule, ...]
    side_names: tuple[str, ...]

    @property
    def n_plans(self) -> int:
        return int(self.port_i.shape[0])


def readonly(array: npt.NDArray[np.generic]) -> npt.NDArray[Any]:
    """A C-contiguous, non-writeable view (copy only if needed) so every call compiles to one signature."""
    view = np.ascontiguousarray(array).view()
    view.flags.writeable = False
    return view


def _check_matrix(array: npt.NDArray[np.generic], shape: tuple[int, int], what: str) -> None:
    if array.shape != shape:
        raise PlanError(f"{what} has shape {array.shape}, expected {shape} (bars x symbols)")


def _exit_distance(rule: ExitPlan) -> npt.NDArray[np.float64] | None:
    kind = EXIT_KIND_CODES[rule.kind]
    if kind not in _PRICE_EXIT_KINDS:
        return None
    has_distance = rule.distance is not None
    has_fraction = rule.fraction is not None
    if has_distance == has_fraction:
        raise PlanError(f"exit {rule.name!r}: exactly one of distance and fraction must be set")
    if kind == EXIT_BRACKET and not (rule.reward_ratio is not None and rule.reward_ratio > 0):
        raise PlanError(f"exit {rule.name!r}: a bracket needs a positive reward_ratio")
    if has_fraction and not (rule.fraction is not None and rule.fraction > 0):
        raise PlanError(f"exit {rule.name!r}: fraction must be positive")
    return rule.distance


def _structure(plan: StrategyPlan) -> tuple[object, ...]:
    """What must agree between plans run in one batch."""
    sides = tuple(
        (
            s.side,
            s.order.kind,
            s.sizing.mode,
            s.sizing.stop_distance is not None or s.sizing.volatility is not None,
            tuple((e.kind, e.signal is not None, e.distance is not None) for e in s.exits),
        )
        for s in plan.sides
    )
    return (plan.symbols, sides, plan.portfolio.rotation is not None)


def pack_plans(plans: Sequence[StrategyPlan], bars: UniverseBars) -> PackedPlans:
    """Validate ``plans`` against ``bars`` and stack them into kernel arrays."""
    if not plans:
        raise PlanError("no plan to run")
    first = plans[0]
    shape = (bars.n_bars, bars.n_symbols)
    if tuple(first.symbols) != tuple(bars.symbols):
        raise PlanError(f"plan symbols {first.symbols} do not match bar symbols {bars.symbols}")
    if first.index is not bars.index and (
        first.index.shape[0] != bars.n_bars or not np.array_equal(first.index, bars.index)
    ):
        raise PlanError("plan index does not match the bar index")
    if not first.sides:
        raise PlanError("the plan has no trade side")
    structure = _structure(first)
    for plan in plans[1:]:
        if _structure(plan) != structure:
            raise PlanError("plans of one batch must share sides, exits and inputs")
        if plan.index is not first.index and not np.array_equal(plan.index, first.index):
            raise PlanError("plans of one batch must share the bar index")

    n_plans = len(plans)
    n_sides = len(first.sides)
    exit_rules: list[ExitRule] = []
    for s, side in enumerate(first.sides):
        for rule in side.exits:
            exit_rules.append(ExitRule(side=s, name=rule.name, kind=EXIT_KIND_CODES[rule.kind]))
    n_exits = len(exit_rules)

    side_i = np.zeros((n_sides, k.N_SIDE_INT), dtype=np.int64)
    for s, side in enumerate(first.sides):
        side_i[s, k.SD_DIRECTION] = 1 if side.side == "long" else -1
        side_i[s, k.SD_ORDER_KIND] = _ORDER_CODES[side.order.kind]
        side_i[s, k.SD_SIZING_MODE] = SIZING_CODES[side.sizing.mode]
        side_i[s, k.SD_HAS_PRICE_EXITS] = int(
            any(EXIT_KIND_CODES[e.kind] in _PRICE_EXIT_KINDS for e in side.exits)
        )
        side_i[s, k.SD_HAS_TRAILING] = int(any(EXIT_KIND_CODES[e.kind] == EXIT_TRAILING for e in side.exits))
        side_i[s, k.SD_HAS_SIZING_REF] = int(_sizing_reference(side) is not None)

    exit_i = np.full((max(n_exits, 1), k.N_EXIT_INT), -1, dtype=np.int64)
    signal_slots = 0
    distance_slots = 0
    flat_exits = [rule for side in first.sides for rule in side.exits]
    for e, (rule, meta) in enumerate(zip(flat_exits, exit_rules, strict=True)):
        exit_i[e, k.EX_SIDE] = meta.side
        exit_i[e, k.EX_KIND] = meta.kind
        if meta.kind == EXIT_SIGNAL:
            if rule.signal is None:
                raise PlanError(f"signal exit {rule.name!r} has no signal")
            exit_i[e, k.EX_SIGNAL_INDEX] = signal_slots
            signal_slots += 1
        elif meta.kind == EXIT_TIME:
            if rule.bars is None or rule.bars < 1:
                raise PlanError(f"time exit {rule.name!r} needs bars >= 1")
        elif _exit_distance(rule) is not None:
            exit_i[e, k.EX_DISTANCE_INDEX] = distance_slots
            distance_slots += 1
    if n_exits == 0:
        # A plan without exits still runs (positions close at the end); the dummy row belongs to no side.
        exit_i[0, k.EX_SIDE] = -1
        exit_i[0, k.EX_KIND] = EXIT_TIME

    entries = np.empty((n_plans, n_sides, *shape), dtype=np.bool_)
    has_order_price = any(s.order.kind != "market" for s in first.sides)
    order_price = np.full((n_plans, n_sides, *shape) if has_order_price else (n_plans, n_sides, 1, 1), np.nan)
    has_sizing_ref = bool(side_i[:, k.SD_HAS_SIZING_REF].any())
    sizing_ref = np.full((n_plans, n_sides, *shape) if has_sizing_ref else (n_plans, n_sides, 1, 1), np.nan)
    sig_stack = np.zeros(
        (n_plans, signal_slots, *shape) if signal_slots else (n_plans, 1, 1, 1), dtype=np.bool_
    )
    dist_stack = np.full((n_plans, distance_slots, *shape) if distance_slots else (n_plans, 1, 1, 1), np.nan)
    rotation = first.portfolio.rotation
    rot_score = np.full((n_plans, *shape) if rotation is not None else (n_plans, 1, 1), np.nan)
    side_f = np.zeros((n_plans, n_sides, k.N_SIDE_FLOAT))
    exit_f = np.zeros((n_plans, max(n_exits, 1), k.N_EXIT_FLOAT))
    port_i = np.zeros((n_plans, k.N_PORTFOLIO), dtype=np.int64)

    for p, plan in enumerate(plans):
        _fill_plan(
            plan,
            p,
            shape,
            entries,
            order_price,
            sizing_ref,
            sig_stack,
            dist_stack,
            rot_score,
            side_f,
            exit_f,
            port_i,
        )

    return PackedPlans(
        entries=readonly(entries),
        order_price=readonly(order_price),
        sizing_ref=readonly(sizing_ref),
        sig_stack=readonly(sig_stack),
        dist_stack=readonly(dist_stack),
        rot_score=readonly(rot_score),
        entry_any=readonly(_any_per_bar(entries, bars.n_bars)),
        exit_any=readonly(
            _any_per_bar(sig_stack, bars.n_bars) if signal_slots else np.zeros((n_plans, bars.n_bars), bool)
        ),
        side_i=readonly(side_i),
        side_f=readonly(side_f),
        exit_i=readonly(exit_i),
        exit_f=readonly(exit_f),
        port_i=readonly(port_i),
        exit_rules=tuple(exit_rules),
        side_names=tuple(s.side for s in first.sides),
    )


def _any_per_bar(stack: npt.NDArray[np.bool_], n_bars: int) -> npt.NDArray[np.bool_]:
    """Reduce a ``(P, k, n, m)`` signal stack to ``(P, n)``: is any signal on at each bar."""
    n_plans, slots, _, n_symbols = stack.shape
    if slots * n_symbols == 1:
        return stack.reshape(n_plans, n_bars)
    return np.asarray(stack.any(axis=(1, 3)))


def _sizing_reference(side: SidePlan) -> npt.NDArray[np.float64] | None:
    mode = SIZING_CODES[side.sizing.mode]
    if mode == SIZE_RISK_PER_TRADE:
        if side.sizing.stop_distance is None:
            raise PlanError("risk_per_trade sizing needs stop_distance")
        return side.sizing.stop_distance
    if mode == SIZE_VOLATILITY_TARGET:
        if side.sizing.volatility is None:
            raise PlanError("volatility_target sizing needs volatility")
        return side.sizing.volatility
    return None


def _fill_plan(
    plan: StrategyPlan,
    p: int,
    shape: tuple[int, int],
    entries: npt.NDArray[np.bool_],
    order_price: npt.NDArray[np.float64],
    sizing_ref: npt.NDArray[np.float64],
    sig_stack: npt.NDArray[np.bool_],
    dist_stack: npt.NDArray[np.float64],
    rot_score: npt.NDArray[np.float64],
    side_f: npt.NDArray[np.float64],
    exit_f: npt.NDArray[np.float64],
    port_i: npt.NDArray[np.int64],
) -> None:
    signal_slot = 0
    distance_slot = 0
    e = 0
    for s, side in enumerate(plan.sides):
        _check_matrix(side.entry, shape, f"{side.side} entry")
        entries[p, s] = side.entry
        if side.order.kind != "market":
            if side.order.price is None:
                raise PlanError(f"{side.side} {side.order.kind} orders need a price")
            _check_matrix(side.order.price, shape, f"{side.side} order price")
            order_price[p, s] = side.order.price
        if side.order.valid_bars < 1:
            raise PlanError("orders must stay valid for at least one bar")
        reference = _sizing_reference(side)
        if reference is not None:
            _check_matrix(reference, shape, f"{side.side} sizing reference")
            sizing_ref[p, s] = reference
        if not np.isfinite(side.sizing.value) or side.sizing.value <= 0:
            raise PlanError("sizing value must be positive")
        side_f[p, s, k.SF_SIZING_VALUE] = side.sizing.value
        side_f[p, s, k.SF_ORDER_VALID] = side.order.valid_bars
        for rule in side.exits:
            kind = EXIT_KIND_CODES[rule.kind]
            if kind == EXIT_SIGNAL:
                assert rule.signal is not None
                _check_matrix(rule.signal, shape, f"exit {rule.name!r} signal")
                sig_stack[p, signal_slot] = rule.signal
                signal_slot += 1
            elif kind == EXIT_TIME:
                exit_f[p, e, k.EF_BARS] = float(rule.bars or 0)
            else:
                distance = _exit_distance(rule)
                if distance is not None:
                    _check_matrix(distance, shape, f"exit {rule.name!r} distance")
                    dist_stack[p, distance_slot] = distance
                    distance_slot += 1
                exit_f[p, e, k.EF_FRACTION] = rule.fraction if rule.fraction is not None else np.nan
                exit_f[p, e, k.EF_REWARD] = rule.reward_ratio if rule.reward_ratio is not None else np.nan
            e += 1
    portfolio = plan.portfolio
    if portfolio.max_open_positions < 1:
        raise PlanError("max_open_positions must be at least 1")
    port_i[p, k.PF_MAX_OPEN] = portfolio.max_open_positions
    port_i[p, k.PF_WARMUP] = max(plan.warmup_bars, 0)
    if portfolio.rotation is not None:
        rotation = portfolio.rotation
        if rotation.top_n < 1 or rotation.every_bars < 1:
            raise PlanError("rotation needs top_n >= 1 and every_bars >= 1")
        _check_matrix(rotation.score, shape, "rotation score")
        rot_score[p] = rotation.score
        port_i[p, k.PF_ROTATION_TOP_N] = rotation.top_n
        port_i[p, k.PF_ROTATION_EVERY] = rotation.every_bars


def pack_params(assumptions: ExecutionAssumptions, periods_per_year: float) -> npt.NDArray[np.float64]:
    """The execution assumptions as the kernel's parameter vector."""
    params = np.zeros(k.N_PARAMS)
    params[k.A_FEE_RATE] = assumptions.fee_rate()
    params[k.A_FEE_FIXED] = assumptions.fee_fixed
    params[k.A_SLIPPAGE] = assumptions.slippage_bps * 1e-4
    params[k.A_IMPACT] = assumptions.volume_impact
    params[k.A_HALF_SPREAD] = assumptions.half_spread()
    params[k.A_LEVERAGE] = assumptions.margin_leverage if assumptions.allow_margin else 1.0
    params[k.A_BORROW_PER_BAR] = assumptions.borrow_rate / periods_per_year
    params[k.A_QTY_STEP] = assumptions.quantity_step
    params[k.A_INITIAL_CASH] = assumptions.initial_cash
    params[k.A_TRADE_ON_CLOSE] = float(assumptions.trade_on_close)
    params[k.A_VOLUME_SLIPPAGE] = float(assumptions.slippage_model == "volume_share")
    params[k.A_LIMIT_TOUCH] = float(assumptions.limit_fill_on_touch)
    params[k.A_CLOSE_AT_END] = float(assumptions.close_at_end)
    return readonly(params)
