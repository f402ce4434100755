"""Bar inputs of ``CompiledStrategy.build_plan`` and higher-timeframe alignment.

Bars are ``(n_bars, n_symbols)`` float64 matrices on one increasing index of bar open times (UTC
nanoseconds). Any object with those attributes works (``BarsLike``), e.g. the backtest's
``UniverseBars``; ``BarMatrix`` is the plain container defined here.

Higher-timeframe bars follow the market's session calendar with the market-data store's own code
(``market_data.resample``), so a daily factor of an hourly strategy reads exactly the daily bars
``GET /market-data/bars?timeframe=1d`` serves: 17:00 New York days for forex, regular hours for US
stocks, 18:00 New York days for futures, UTC days for crypto. A higher bar is closed at its session
bucket's end (``market_data.resample.bucket_closes``; a forex day at 17:00 New York, 21:00 or 22:00
UTC depending on DST), and never before every base bar it aggregates; its values become visible
at the first base bar opening at or after that time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from packages.domain.market_data.bars import Bars, Timeframe
from packages.domain.market_data.resample import bucket_closes, bucket_labels, resample
from packages.domain.market_data.sessions import calendar_for

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
    """Builds bars of a longer ``timeframe`` from base bars, stamped as the market-data store stamps
    them (bucket opens; daily bars at 00:00 UTC of their trading date, weekly bars at the week's
    Monday), since their closes are read from the market's session calendar."""

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


# Per base bar: the open of its higher-timeframe bucket and whether a session holds it (``None``: all
# do), as ``market_data.resample.bucket_labels`` gives them.
Buckets = tuple[Int64Array, npt.NDArray[np.bool_] | None]


def session_buckets(index: Int64Array, timeframe: str, *, market: str, base_timeframe: str) -> Buckets:
    """The ``timeframe`` session bucket of each base bar opening at ``index`` (of ``base_timeframe``)."""
    return bucket_labels(
        np.asarray(index, dtype=np.int64),
        Timeframe(base_timeframe),
        Timeframe(timeframe),
        calendar_for(market),
    )


def resample_bars(
    bars: BarsLike,
    timeframe: str,
    *,
    market: str,
    base_timeframe: str,
    buckets: Buckets | None = None,
) -> BarMatrix:
    """``bars`` of ``base_timeframe`` aggregated into ``timeframe`` bars along ``market``'s sessions.

    Each symbol's own bars go through the market-data store's ``resample`` (first open, highest
    high, lowest low, last close, summed volume; bars outside sessions left out); the results are
    aligned on the union of their bar times, NaN where a symbol has no bar. ``buckets`` is
    ``session_buckets`` of ``bars.index`` when the caller already has it.
    """
    source, target = Timeframe(base_timeframe), Timeframe(timeframe)
    calendar = calendar_for(market)
    index = np.asarray(bars.index, dtype=np.int64)
    if buckets is None:
        buckets = bucket_labels(index, source, target, calendar)
    labels, in_session = buckets
    fields = [np.asarray(getattr(bars, name), dtype=np.float64) for name in BAR_FIELDS]
    present = np.isfinite(fields[BAR_FIELDS.index("close")])
    parts = []
    for column in range(len(bars.symbols)):
        rows = slice(None) if bool(present[:, column].all()) else present[:, column]
        symbol_bars = Bars.from_columns(index[rows], *(values[rows, column] for values in fields))
        symbol_buckets = (labels[rows], None if in_session is None else in_session[rows])
        parts.append(resample(symbol_bars, source, target, calendar, buckets=symbol_buckets))
    if len(parts) == 1:
        only = parts[0]
        return BarMatrix.from_arrays(
            only.ts,
            bars.symbols,
            **{name: getattr(only, name) for name in BAR_FIELDS},
        )
    stamps = np.unique(np.concatenate([part.ts for part in parts])) if parts else index[:0]
    matrices = {name: np.full((stamps.shape[0], len(parts)), np.nan) for name in BAR_FIELDS}
    for column, part in enumerate(parts):
        rows = np.searchsorted(stamps, part.ts)
        for name in BAR_FIELDS:
            matrices[name][rows, column] = getattr(part, name)
    return BarMatrix(stamps, tuple(bars.symbols), *(matrices[name] for name in BAR_FIELDS))


def visible_rows(
    higher_index: Int64Array,
    higher_timeframe: str,
    base_index: Int64Array,
    *,
    market: str,
    base_timeframe: str,
    buckets: Buckets | None = None,
) -> npt.NDArray[np.intp]:
    """For each base bar, the last higher bar closed at or before its open (-1 if none yet).

    ``higher_index`` holds the higher bars' stamps as ``resample_bars`` (and the store) make them.
    A higher bar closes at its session bucket's end, or after the last base bar of its bucket when
    a source printed bars past the calendar's close (after a 13:00 early close, on a forex
    Christmas Friday): no base bar ever sees a higher bar it is part of. ``buckets`` is
    ``session_buckets`` of ``base_index`` when the caller already has it.
    """
    higher = np.asarray(higher_index, dtype=np.int64)
    base = np.asarray(base_index, dtype=np.int64)
    if higher.shape[0] == 0:
        return np.full(base.shape[0], -1, dtype=np.intp)
    if buckets is None:
        buckets = session_buckets(base, higher_timeframe, market=market, base_timeframe=base_timeframe)
    labels, in_session = buckets
    closes = bucket_closes(higher, Timeframe(higher_timeframe), calendar_for(market))
    members = np.arange(base.shape[0]) if in_session is None else np.flatnonzero(in_session)
    available = closes
    if members.shape[0]:
        member_labels = labels[members]
        last = np.searchsorted(member_labels, higher, side="right") - 1
        clipped = np.maximum(last, 0)
        has_members = (last >= 0) & (member_labels[clipped] == higher)
        after_members = np.where(has_members, base[members[clipped]] + 1, np.iinfo(np.int64).min)
        available = np.maximum(closes, after_members)
    # Base rows are sorted: find where each higher bar becomes visible and fill the runs between,
    # rather than searching every base bar among the higher ones.
    first_seen = np.searchsorted(base, np.maximum.accumulate(available), side="left")
    run_lengths = np.diff(first_seen, prepend=0, append=base.shape[0])
    return np.repeat(np.arange(-1, higher.shape[0], dtype=np.intp), run_lengths)


def take_rows(values: FloatMatrix, rows: npt.NDArray[np.intp]) -> FloatMatrix:
    """``values[rows]`` with NaN where ``rows`` is -1."""
    if values.shape[0] == 0:
        return np.full((rows.shape[0], values.shape[1]), np.nan)
    out = values[np.maximum(rows, 0)]
    out[rows < 0] = np.nan
    return out
