"""The executable plan a compiled strategy hands to the backtest engine and the paper-trading runtime.

Both consumers read the same plan, so backtest and live behaviour cannot drift. Every array is
aligned on one bar index shared by all symbols of the universe: shape ``(n_bars, n_symbols)``.
Values at bar ``i`` use only information available at the close of bar ``i``; the engine decides
when an order acting on them fills (next bar's open by default).

Arrays may be shared: between plans built with one ``SeriesCache`` (a sweep), between a signal
and the condition leaf it came from, and with the caller's bars. Read them, never write to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt

BoolMatrix = npt.NDArray[np.bool_]
FloatMatrix = npt.NDArray[np.float64]

Side = Literal["long", "short"]
OrderKind = Literal["market", "limit", "stop"]
ExitKind = Literal["signal", "stop_loss", "take_profit", "trailing_stop", "time_exit", "bracket"]
SizingMode = Literal["fixed_quantity", "fixed_cash", "percent_equity", "risk_per_trade", "volatility_target"]

_Value = TypeVar("_Value")

# valid_bars of a good-till-cancelled order (fits an int32, exceeds any bar count we handle).
GOOD_TILL_CANCELLED = 2**31 - 1


class LazySeries(Mapping[str, _Value]):
    """A read-only mapping whose values are computed by their loader on first access, then kept."""

    def __init__(self, loaders: Mapping[str, Callable[[], _Value]]) -> None:
        self._loaders = dict(loaders)
        self._values: dict[str, _Value] = {}

    def __getitem__(self, key: str) -> _Value:
        if key not in self._values:
            self._values[key] = self._loaders[key]()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaders)

    def __len__(self) -> int:
        return len(self._loaders)

    def __repr__(self) -> str:
        return f"LazySeries({list(self._loaders)})"


@dataclass(frozen=True)
class OrderPlan:
    """How an entry signal becomes an order.

    ``price`` holds the limit or stop price computed at the signal bar's close (NaN where there is
    no signal); it is ``None`` for market orders. ``valid_bars`` is how many bars after the signal
    the order keeps working before it is cancelled (1 = only the next bar);
    ``GOOD_TILL_CANCELLED`` is a count no data set reaches, i.e. the order never expires.
    """

    kind: OrderKind = "market"
    price: FloatMatrix | None = None
    valid_bars: int = 1


@dataclass(frozen=True)
class ExitPlan:
    """One named exit rule; ``name`` is reported as the trade's exit reason.

    - ``signal``: ``signal`` is true on bars whose close asks to leave the position.
    - ``stop_loss`` / ``take_profit`` / ``trailing_stop``: ``distance`` is an absolute price distance
      per bar, read at the entry signal bar (a percent rule is expressed as ``fraction`` instead,
      applied to the fill price). Exactly one of ``distance`` and ``fraction`` is set.
    - ``bracket``: a stop at ``distance``/``fraction`` and a target at ``reward_ratio`` times it.
    - ``time_exit``: leave after ``bars`` bars in the position.
    """

    name: str
    kind: ExitKind
    signal: BoolMatrix | None = None
    distance: FloatMatrix | None = None
    fraction: float | None = None
    reward_ratio: float | None = None
    bars: int | None = None


@dataclass(frozen=True)
class SizingPlan:
    """How many units an entry buys or sells.

    ``value`` is the quantity, cash amount, equity fraction, risk fraction of equity or annual
    volatility target, depending on ``mode``. ``risk_per_trade`` divides the risked cash by the
    stop distance (``stop_distance``); ``volatility_target`` scales by ``volatility`` (a per-bar
    annualised volatility estimate of the symbol).
    """

    mode: SizingMode
    value: float
    stop_distance: FloatMatrix | None = None
    volatility: FloatMatrix | None = None


@dataclass(frozen=True)
class SidePlan:
    side: Side
    entry: BoolMatrix
    order: OrderPlan
    exits: tuple[ExitPlan, ...]
    sizing: SizingPlan


@dataclass(frozen=True)
class RotationPlan:
    """Rank the universe by ``score`` (higher is better), hold the top ``top_n``, rebalance every ``every_bars``."""

    score: FloatMatrix
    top_n: int
    every_bars: int


@dataclass(frozen=True)
class PortfolioPlan:
    max_open_positions: int
    rotation: RotationPlan | None = None


@dataclass(frozen=True)
class StrategyPlan:
    """Everything the engine needs besides prices and execution assumptions."""

    index: npt.NDArray[np.int64]  # bar open times, UTC nanoseconds, shape (n_bars,)
    symbols: tuple[str, ...]
    sides: tuple[SidePlan, ...]
    portfolio: PortfolioPlan
    warmup_bars: int
    # Named factor outputs and condition leaves, each (n_bars, n_symbols): used for trade snapshots
    # ("which leaves were true at entry and exit") and charts, never by the simulation itself.
    # The compiler hands ``factors`` as a ``LazySeries``: each is computed when first read, from the
    # series cache the plan keeps alive.
    factors: Mapping[str, FloatMatrix] = field(default_factory=dict)
    leaves: Mapping[str, BoolMatrix] = field(default_factory=dict)
