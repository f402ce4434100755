"""What a cycle reads: the compiled strategy's plan over a bounded window, at the window's last bar.

``evaluate_window(strategy, window)`` builds the plan with the same compiled strategy and plan builder
as the backtest (``CompiledStrategy.build_plan``; never a recompilation) over bars ending at the
closed bar, and returns what the cycle reads at that bar (``BarSignals``): per trade side the entry
signal, order kind and price, validity, sizing rule and reference, and every exit rule's signal or
distance, per symbol; the rotation score; whether the window holds the strategy's warm-up.

``bars_window(bars, row, window_bars(strategy))`` cuts the window (views, no copy). Its length is the
strategy's warm-up and ``SETTLE_PER_WARMUP_BAR`` times as many bars again, at most
``MAX_SETTLE_BARS``, so that recursive indicators such as EMAs and Wilder averages have forgotten,
to double precision, where the window starts: plan values at its last bar then equal those computed
over all history (up to the last bits of TA-Lib's running sums), and the cycle decides as the
backtest does. The window is longer than the longest time exit, whose bars it counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from packages.domain.strategy.bars import BarMatrix, BarsLike, Resampler, universe_view
from packages.domain.strategy.compiler import CompiledStrategy
from packages.domain.strategy.plan import (
    GOOD_TILL_CANCELLED,
    ExitKind,
    ExitPlan,
    OrderKind,
    Side,
    SidePlan,
    SizingMode,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Int64Array = npt.NDArray[np.int64]

# Bars of settling per warm-up bar: recursive indicators forget the window's first bar to double
# precision (a Wilder average of period P keeps (1 - 1/P)^n of it after n bars: 1e-16 after ~37 P bars;
# an EMA after about half that), so plan values at the window's end equal those over all history.
SETTLE_PER_WARMUP_BAR = 40
# ... but never more than this many: strategies with long (higher-timeframe) warm-ups stay cheap, at
# the price of a residue from the window's start in recursive indicators of periods above ~50.
MAX_SETTLE_BARS = 2_000


@dataclass(frozen=True)
class ExitRuleAtBar:
    name: str
    kind: ExitKind
    signal: BoolArray | None = None  # signal exits, per symbol
    distance: FloatArray | None = None  # absolute distances read at this bar, per symbol
    fraction: float | None = None
    reward_ratio: float | None = None
    bars: int | None = None


@dataclass(frozen=True)
class SideAtBar:
    side: Side
    entry: BoolArray  # per symbol
    order_kind: OrderKind
    order_price: FloatArray | None  # limit/stop price per symbol (NaN where no signal)
    valid_bars: int | None  # None: good till cancelled
    sizing_mode: SizingMode
    sizing_value: float
    sizing_reference: FloatArray | None  # risk_per_trade stop distance or volatility, per symbol
    exits: tuple[ExitRuleAtBar, ...]


@dataclass(frozen=True)
class RotationAtBar:
    score: FloatArray
    top_n: int
    every_bars: int


@dataclass(frozen=True, eq=False)
class BarSignals:
    """The strategy's plan at the last bar of its window."""

    time: int  # open time (ns) of the closed bar
    index: Int64Array  # the window's bar times
    symbols: tuple[str, ...]
    close: FloatArray
    sides: tuple[SideAtBar, ...]
    max_open_positions: int
    rotation: RotationAtBar | None
    warmed_up: bool  # the window holds the strategy's warm-up before this bar

    def bars_since(self, time: int) -> int:
        """Bars of the window from the bar of ``time`` to this one (the window's length when older)."""
        if time < int(self.index[0]):
            return int(self.index.shape[0])
        return int(self.index.shape[0]) - 1 - int(np.searchsorted(self.index, time))


def window_bars(
    strategy: CompiledStrategy,
    *,
    settle_per_warmup_bar: int = SETTLE_PER_WARMUP_BAR,
    max_settle_bars: int = MAX_SETTLE_BARS,
) -> int:
    """Bars a cycle evaluates: the warm-up, then ``settle_per_warmup_bar`` times it (at most
    ``max_settle_bars``) to settle, and more than the longest time exit."""
    longest_hold = max(
        (
            int(rule["bars"])
            for side in strategy.document["trade"].values()
            for rule in side.get("exits", [])
            if rule["type"] == "time_exit"
        ),
        default=0,
    )
    warmup = strategy.warmup_bars
    return max(warmup + min(warmup * settle_per_warmup_bar, max_settle_bars), longest_hold + 2, 2)


def bars_window(bars: BarsLike, row: int, length: int) -> BarMatrix:
    """Views of the ``length`` rows of ``bars`` ending at ``row`` (fewer at the start of the data)."""
    rows = slice(max(row + 1 - length, 0), row + 1)
    return BarMatrix(
        np.asarray(bars.index)[rows],
        tuple(bars.symbols),
        *(np.asarray(getattr(bars, name))[rows] for name in ("open", "high", "low", "close", "volume")),
    )


def _row(matrix: npt.NDArray[np.generic] | None, row: int) -> npt.NDArray[np.generic] | None:
    """A copy of one bar's values (plans share their arrays; the cycle keeps only this row)."""
    return None if matrix is None else np.array(matrix[row])


def _exit_at(rule: ExitPlan, row: int) -> ExitRuleAtBar:
    return ExitRuleAtBar(
        name=rule.name,
        kind=rule.kind,
        signal=_row(rule.signal, row),  # type: ignore[arg-type]
        distance=_row(rule.distance, row),  # type: ignore[arg-type]
        fraction=rule.fraction,
        reward_ratio=rule.reward_ratio,
        bars=rule.bars,
    )


def _side_at(side: SidePlan, row: int) -> SideAtBar:
    sizing = side.sizing
    reference = sizing.stop_distance if sizing.mode == "risk_per_trade" else sizing.volatility
    valid = side.order.valid_bars
    return SideAtBar(
        side=side.side,
        entry=_row(side.entry, row),  # type: ignore[arg-type]
        order_kind=side.order.kind,
        order_price=_row(side.order.price, row),  # type: ignore[arg-type]
        valid_bars=None if valid >= GOOD_TILL_CANCELLED else valid,
        sizing_mode=sizing.mode,
        sizing_value=sizing.value,
        sizing_reference=_row(reference, row)
        if sizing.mode in ("risk_per_trade", "volatility_target")
        else None,  # type: ignore[arg-type]
        exits=tuple(_exit_at(rule, row) for rule in side.exits),
    )


def evaluate_window(
    strategy: CompiledStrategy,
    window: BarsLike,
    *,
    higher_timeframe_bars: Mapping[str, BarsLike] | None = None,
    resampler: Resampler | None = None,
) -> BarSignals:
    """The strategy's plan over ``window`` (bars ending at the closed bar), read at its last bar."""
    bars = universe_view(window, strategy.symbols)
    plan = strategy.build_plan(bars, higher_timeframe_bars=higher_timeframe_bars, resampler=resampler)
    last = plan.index.shape[0] - 1
    if last < 0:
        raise ValueError("the window holds no bar")
    rotation = plan.portfolio.rotation
    return BarSignals(
        time=int(plan.index[last]),
        index=plan.index,
        symbols=plan.symbols,
        close=np.asarray(bars.close[last], dtype=np.float64),
        sides=tuple(_side_at(side, last) for side in plan.sides),
        max_open_positions=plan.portfolio.max_open_positions,
        rotation=None
        if rotation is None
        else RotationAtBar(_row(rotation.score, last), rotation.top_n, rotation.every_bars),  # type: ignore[arg-type]
        warmed_up=last >= plan.warmup_bars,
    )
