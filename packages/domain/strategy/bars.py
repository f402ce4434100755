"""Bar inputs of ``CompiledStrategy.build_plan`` and higher-timeframe alignment.

Bars are ``(n_bars, n_symbols)`` float64 matrices on one increasing index of bar open times (UTC
nanoseconds). Any object with those attributes works (``BarsLike``), e.g. the backtest's
``UniverseBars``; ``BarMatrix`` is the plain container defined here.

Higher-timeframe rule: a higher bar opening at ``t`` is treated as closed at ``t + length``,
never earlier, and its values become visible at the first base bar opening at or after that
time. Timestamps label bar opens, and the market-data store stamps daily and weekly bars at
00:00 UTC of their trading date, so ``t + length`` is never before the bar's real close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from packages.domain.strategy.vocabulary import WEEK_ANCHOR_NS, timeframe_ns

FloatMatrix = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class BarsLike(Protocol):
    @property
    def index(self) -> Int64Array: ...
    @property
    def symbols(self) -> tuple[str, ...]: ...
    @property
    def open(self) -> FloatMatrix: ...
    @property
    def high(self) -> FloatMatrix: ...
    @property
    def low(self) -> FloatMatrix: ...
    @property
    def close(self) -> FloatMatrix: ...
    @property
    def volume(self) -> FloatMatrix: ...


class Resampler(Protocol):
    """Builds bars of a longer ``timeframe`` from base bars (market data can supply a session-aware one)."""

    def __call__(self, bars: BarsLike, timeframe: str) -> BarsLike: ...


class MissingSymbolsError(ValueError):
    """The bars lack symbols of the strategy's universe."""


@dataclass(frozen=True, eq=False)
class BarMatrix:
    """OHLCV matrices ``(n_bars, n_symbols)`` aligned on ``index`` (bar open times, UTC ns).

    A symbol without a bar at some time holds NaN there; indicators of that symbol are computed
    over its own bars only.
    """

    index: Int64Array
    symbols: tuple[str, ...]
    open: FloatMatrix
    high: FloatMatrix
    low: FloatMatrix
    close: FloatMatrix
    volume: FloatMatrix

    def __post_init__(self) -> None:
        shape = (self.index.shape[0], len(self.symbols))
        for name in BAR_FIELDS:
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.index.shape[0] > 1 and not bool(np.all(np.diff(self.index) > 0)):
            raise ValueError("bar index must be strictly increasing")

    @classmethod
    def from_arrays(
        cls,
        index: npt.ArrayLike,
        symbols: Sequence[str],
        *,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
    ) -> BarMatrix:
        """Build from 1-D (one symbol) or 2-D arrays, converting to contiguous float64."""

        def matrix(values: npt.ArrayLike) -> FloatMatrix:
            array = np.asarray(values, dtype=np.float64)
            return np.ascontiguousarray(array.reshape(-1, 1) if array.ndim == 1 else array)

        return cls(
            index=np.ascontiguousarray(index, dtype=np.int64),
            symbols=tuple(symbols),
            open=matrix(open),
            high=matrix(high),
            low=matrix(low),
            close=matrix(close),
            volume=matrix(volume),
        )

    def head(self, count: int) -> BarMatrix:
        """The first ``count`` bars."""
        rows = slice(0, count)
        return BarMatrix(self.index[rows], self.symbols, *(getattr(self, name)[rows] for name in BAR_FIELDS))


def select_symbols(bars: BarsLike, symbols: Sequence[str]) -> BarMatrix:
    """``bars`` restricted to ``symbols``, in that column order."""
    positions = {symbol: column for column, symbol in enumerate(bars.symbols)}
    missing = [symbol for symbol in symbols if symbol not in positions]
    if missing:
        raise MissingSymbolsError(f"bars have no data for symbols: {', '.join(missing)}")
    columns = [positions[symbol] for symbol in symbols]
    if columns == list(range(len(bars.symbols))):
        return BarMatrix(
            np.asarray(bars.index, dtype=np.int64),
            tuple(symbols),
            *(np.asarray(getattr(bars, name), dtype=np.float64) for name in BAR_FIELDS),
        )
    return BarMatrix(
        np.asarray(bars.index, dtype=np.int64),
        tuple(symbols),
        *(
            np.ascontiguousarray(np.asarray(getattr(bars, name), dtype=np.float64)[:, columns])
            for name in BAR_FIELDS
        ),
    )


def universe_view(bars: BarsLike, symbols: Sequence[str]) -> BarsLike:
    """``bars`` itself when its columns already are ``symbols`` (nothing copied), else ``select_symbols``.

    The shapes are checked; the index is trusted to increase, which ``BarMatrix`` (and the
    backtest's ``UniverseBars``) check when they are built.
    """
    if tuple(bars.symbols) != tuple(symbols):
        return select_symbols(bars, symbols)
    shape = (np.shape(bars.index)[0], len(symbols))
    for name in BAR_FIELDS:
        if np.shape(getattr(bars, name)) != shape:
            raise ValueError(f"{name} has shape {np.shape(getattr(bars, name))}, expected {shape}")
    return bars


def bucket_starts(index: Int64Array, timeframe: str) -> Int64Array:
    """Open time of the ``timeframe`` bucket holding each timestamp (weeks start on Monday)."""
    length = timeframe_ns(timeframe)
    anchor = WEEK_ANCHOR_NS if timeframe == "1w" else 0
    return (index - anchor) // length * length + anchor


def resample_bars(bars: BarsLike, timeframe: str) -> BarMatrix:
    """Default resampler: calendar buckets from UTC midnight (Monday for weeks), no sessions.

    Each bucket takes the first defined open, highest high, lowest low, last defined close and
    summed volume of each symbol; a bucket where a symbol has no bar is NaN for that symbol.
    """
    index = np.asarray(bars.index, dtype=np.int64)
    if index.shape[0] == 0:
        empty = np.empty((0, len(bars.symbols)))
        return BarMatrix(index, tuple(bars.symbols), empty, empty, empty, empty, empty)
    labels = bucket_starts(index, timeframe)
    starts = np.flatnonzero(np.concatenate(([True], labels[1:] != labels[:-1])))
    rows = np.arange(index.shape[0])[:, None]
    close = np.asarray(bars.close, dtype=np.float64)
    present = np.isfinite(close)
    first = np.minimum.reduceat(np.where(present, rows, np.iinfo(np.int64).max), starts, axis=0)
    last = np.maximum.reduceat(np.where(present, rows, -1), starts, axis=0)
    empty_bucket = last < 0
    columns = np.arange(close.shape[1])[None, :]
    open_ = np.asarray(bars.open, dtype=np.float64)[np.where(empty_bucket, 0, first), columns]
    closes = close[np.where(empty_bucket, 0, last), columns]
    high = np.fmax.reduceat(np.asarray(bars.high, dtype=np.float64), starts, axis=0)
    low = np.fmin.reduceat(np.asarray(bars.low, dtype=np.float64), starts, axis=0)
    volume = np.add.reduceat(np.nan_to_num(np.asarray(bars.volume, dtype=np.float64)), starts, axis=0)
    for matrix in (open_, closes, high, low, volume):
        matrix[empty_bucket] = np.nan
    return BarMatrix(labels[starts], tuple(bars.symbols), open_, high, low, closes, volume)


def visible_rows(
    higher_index: Int64Array, higher_timeframe: str, base_index: Int64Array
) -> npt.NDArray[np.intp]:
    """For each base bar, the last higher bar closed at or before its open (-1 if none yet)."""
    closes = np.asarray(higher_index, dtype=np.int64) + timeframe_ns(higher_timeframe)
    return np.searchsorted(closes, np.asarray(base_index, dtype=np.int64), side="right") - 1


def take_rows(values: FloatMatrix, rows: npt.NDArray[np.intp]) -> FloatMatrix:
    """``values[rows]`` with NaN where ``rows`` is -1."""
    if values.shape[0] == 0:
        return np.full((rows.shape[0], values.shape[1]), np.nan)
    out = values[np.maximum(rows, 0)]
    out[rows < 0] = np.nan
    return out
