"""Price inputs of a backtest: one bar index shared by every symbol of the universe.

``UniverseBars`` holds ``(n_bars, n_symbols)`` float64 matrices aligned on ``index`` (bar open
times, UTC nanoseconds). A symbol without a bar at some time has NaN there and is simply not
traded on that bar. ``FinerBars`` optionally carries lower-timeframe bars of the same symbols so
the simulation can tell which of a stop and a target a bar touched first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from packages.domain.market_data.bars import Bars

FloatMatrix = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

_PRICE_FIELDS = ("open", "high", "low", "close", "volume")


def _as_matrix(values: npt.ArrayLike, name: str) -> FloatMatrix:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D (one symbol) or 2-D (bars x symbols)")
    return np.ascontiguousarray(array)


@dataclass(frozen=True, eq=False)
class UniverseBars:
    """OHLCV matrices of shape ``(n_bars, n_symbols)`` on one shared, increasing bar index."""

    index: Int64Array
    symbols: tuple[str, ...]
    open: FloatMatrix
    high: FloatMatrix
    low: FloatMatrix
    close: FloatMatrix
    volume: FloatMatrix

    def __post_init__(self) -> None:
        shape = (self.index.shape[0], len(self.symbols))
        for name in _PRICE_FIELDS:
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.index.shape[0] > 1 and not bool(np.all(np.diff(self.index) > 0)):
            raise ValueError("bar index must be strictly increasing")

    @property
    def n_bars(self) -> int:
        return int(self.index.shape[0])

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    def select(self, symbols: tuple[str, ...]) -> UniverseBars:
        """These bars restricted to ``symbols``, in that order (no copy when nothing changes)."""
        if tuple(symbols) == self.symbols:
            return self
        position = {symbol: column for column, symbol in enumerate(self.symbols)}
        missing = [s for s in symbols if s not in position]
        if missing:
            raise ValueError(f"bars have no data for symbols: {', '.join(missing)}")
        columns = [position[s] for s in symbols]
        return UniverseBars(
            index=self.index,
            symbols=tuple(symbols),
            **{name: np.ascontiguousarray(getattr(self, name)[:, columns]) for name in _PRICE_FIELDS},
        )

    @classmethod
    def from_arrays(
        cls,
        index: npt.ArrayLike,
        symbols: tuple[str, ...] | list[str],
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike | None = None,
    ) -> UniverseBars:
        """Build from 1-D (single symbol) or 2-D arrays; copies only when dtype or layout differ."""
        close_m = _as_matrix(close, "close")
        volume_m = np.full_like(close_m, np.nan) if volume is None else _as_matrix(volume, "volume")
        return cls(
            index=np.ascontiguousarray(index, dtype=np.int64),
            symbols=tuple(symbols),
            open=_as_matrix(open_, "open"),
            high=_as_matrix(high, "high"),
            low=_as_matrix(low, "low"),
            close=close_m,
            volume=volume_m,
        )

    @classmethod
    def from_symbol_bars(cls, bars_by_symbol: Mapping[str, Bars]) -> UniverseBars:
        """Align per-symbol market-data ``Bars`` on the union of their timestamps (NaN where missing)."""
        symbols = tuple(bars_by_symbol)
        if not symbols:
            raise ValueError("at least one symbol is required")
        index = np.unique(np.concatenate([bars_by_symbol[s].ts for s in symbols]))
        matrices = {name: np.full((index.shape[0], len(symbols)), np.nan) for name in _PRICE_FIELDS}
        for column, symbol in enumerate(symbols):
            bars = bars_by_symbol[symbol]
            rows = np.searchsorted(index, bars.ts)
            for name in _PRICE_FIELDS:
                matrices[name][rows, column] = getattr(bars, name)
        return cls(index=index, symbols=symbols, **matrices)


@dataclass(frozen=True, eq=False)
class FinerBars:
    """Lower-timeframe bars used only to order intrabar events.

    Rows ``parent_start[i]:parent_start[i + 1]`` of the ``(n_fine, n_symbols)`` matrices are the
    finer bars inside bar ``i`` of the main index, in time order; an empty range means "no finer
    data for this bar" and the conservative one-bar rule applies there.
    """

    parent_start: Int64Array
    open: FloatMatrix
    high: FloatMatrix
    low: FloatMatrix
    close: FloatMatrix

    @classmethod
    def from_index(
        cls,
        parent_index: npt.ArrayLike,
        fine_index: npt.ArrayLike,
        open_: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
    ) -> FinerBars:
        """Assign each finer bar to the main bar whose open time is the latest at or before it."""
        parent = np.asarray(parent_index, dtype=np.int64)
        fine = np.asarray(fine_index, dtype=np.int64)
        if fine.shape[0] > 1 and not bool(np.all(np.diff(fine) > 0)):
            raise ValueError("finer bar index must be strictly increasing")
        starts = np.searchsorted(fine, parent, side="left").astype(np.int64)
        parent_start = np.concatenate([starts, np.array([fine.shape[0]], dtype=np.int64)])
        # Finer bars before the first main bar belong to no main bar: they are never read.
        return cls(
            parent_start=parent_start,
            open=_as_matrix(open_, "open"),
            high=_as_matrix(high, "high"),
            low=_as_matrix(low, "low"),
            close=_as_matrix(close, "close"),
        )

    def check_against(self, bars: UniverseBars) -> None:
        if self.parent_start.shape[0] != bars.n_bars + 1:
            raise ValueError("finer bars must map onto every main bar (parent_start has n_bars + 1 entries)")
        for name in ("open", "high", "low", "close"):
            if getattr(self, name).shape[1] != bars.n_symbols:
                raise ValueError(f"finer {name} must have one column per symbol")
