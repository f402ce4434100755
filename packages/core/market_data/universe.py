"""Market data's public read API for a strategy's universe: which dataset serves each symbol (the
user's own imports first, then shared data), and the aligned bars of all of them.

Backtests, stress tests and paper trading read through it. A run reads its range plus enough
earlier bars for every indicator to be warm at the first bar of the range, so the result does not
depend on where the stored history happens to begin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.market_data.access import ServedDataset, market_store, resolve_dataset, visible_namespaces
from packages.core.market_data.service import read_bars
from packages.core.principal import Principal
from packages.domain.backtest.bars import UniverseBars
from packages.domain.market_data.bars import NS_PER_DAY, Bars, Market, Timeframe, concat_bars
from packages.domain.strategy.vocabulary import bars_per_year
from packages.shared_settings import Settings

_NS_PER_YEAR = 365.25 * NS_PER_DAY
# Extra calendar time read before the range for warm-up bars: covers weekends and holidays.
_WARMUP_SLACK_NS = 10 * NS_PER_DAY
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // timedelta(microseconds=1) * 1000


@dataclass(frozen=True)
class UniverseSource:
    """Which dataset serves each symbol of a universe (for coverage and the bars estimate); the bars
    themselves are read through the market-data service's ``read_bars``, as the user."""

    settings: Settings
    principal: Principal
    market: Market
    timeframe: Timeframe
    served: tuple[ServedDataset, ...]

    def read(self, symbol: str, start_ns: int | None, end_ns: int | None, limit: int | None = None) -> Bars:
        return read_bars(
            self.principal,
            self.market,
            symbol,
            self.timeframe,
            start_ns,
            end_ns,
            limit=limit,
            settings=self.settings,
        )

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(item.base.symbol for item in self.served)

    def coverage(self) -> tuple[int | None, int | None]:
        starts = [s.base.start_ns for s in self.served if s.base.start_ns is not None]
        ends = [s.base.end_ns for s in self.served if s.base.end_ns is not None]
        return (min(starts) if starts else None, max(ends) if ends else None)

    def estimated_cells(self, start_ns: int | None, end_ns: int | None) -> int:
        """Bars x symbols the range holds, from each dataset's coverage and the market's bars per year."""
        per_year = bars_per_year(self.market.value, self.timeframe.value)
        cells = 0.0
        for item in self.served:
            first, last = item.base.start_ns, item.base.end_ns
            if first is None or last is None:
                continue
            lo = first if start_ns is None else max(first, start_ns)
            hi = last + self.timeframe.nanos if end_ns is None else min(last + self.timeframe.nanos, end_ns)
            if hi > lo:
                cells += (hi - lo) / _NS_PER_YEAR * per_year
        return int(np.ceil(cells))


def resolve_universe(
    settings: Settings,
    user_id: uuid.UUID,
    market: str,
    symbols: Sequence[str],
    timeframe: str,
    *,
    symbol_pointer: Callable[[int], str],
    timeframe_pointer: str,
) -> UniverseSource:
    """Find the dataset serving every symbol; problems point at the symbol or timeframe they concern."""
    store = market_store(settings)
    principal = Principal(user_id=user_id)
    market_value, timeframe_value = Market(market), Timeframe(timeframe)
    served = []
    for position, symbol in enumerate(symbols):
        try:
            served.append(
                resolve_dataset(store, visible_namespaces(principal), market_value, symbol, timeframe_value)
            )
        except NotFound as exc:
            raise ValidationFailed(
                f"No market data for {market}:{symbol}.",
                errors=[FieldError("no_market_data", symbol_pointer(position), exc.detail)],
            ) from exc
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.detail,
                errors=[FieldError(e.code, timeframe_pointer, f"{symbol}: {e.message}") for e in exc.errors],
            ) from exc
    return UniverseSource(settings, principal, market_value, timeframe_value, tuple(served))


def _read_symbol(
    source: UniverseSource, symbol: str, start_ns: int | None, end_ns: int | None, warmup_bars: int
) -> Bars:
    main = source.read(symbol, start_ns, end_ns)
    if start_ns is None or warmup_bars <= 0:
        return main
    lookback = start_ns - warmup_bars * source.timeframe.nanos * 3 - _WARMUP_SLACK_NS
    history = source.read(symbol, lookback, start_ns, warmup_bars)
    if len(history) < warmup_bars:
        history = source.read(symbol, None, start_ns, warmup_bars)
    return concat_bars([history, main]) if len(history) else main


def read_universe(
    source: UniverseSource, start_ns: int | None, end_ns: int | None, warmup_bars: int
) -> tuple[UniverseBars, int]:
    """Bars of every symbol on one index, with up to ``warmup_bars`` bars before ``start_ns``;
    returns them and the row where the requested range begins."""
    by_symbol = {
        symbol: _read_symbol(source, symbol, start_ns, end_ns, warmup_bars) for symbol in source.symbols
    }
    if not any(len(bars) for bars in by_symbol.values()):
        raise ValidationFailed(
            "No bars in the requested range.",
            errors=[FieldError("empty_range", "/start", "the range holds no bars of any symbol")],
        )
    universe = UniverseBars.from_symbol_bars(by_symbol)
    first_row = 0 if start_ns is None else int(np.searchsorted(universe.index, start_ns, side="left"))
    return universe, first_row


def read_benchmark_close(
    settings: Settings,
    user_id: uuid.UUID,
    market: str,
    symbol: str,
    timeframe: str,
    index: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """The benchmark's close on the backtest's bar index (its last close carried over gaps)."""
    source = resolve_universe(
        settings,
        user_id,
        market,
        [symbol],
        timeframe,
        symbol_pointer=lambda _: "/benchmark",
        timeframe_pointer="/benchmark",
    )
    first = int(index[0]) - source.timeframe.nanos - _WARMUP_SLACK_NS
    bars = source.read(source.symbols[0], first, int(index[-1]) + 1)
    closes = np.full(index.shape[0], np.nan)
    if len(bars):
        rows = np.searchsorted(bars.ts, index, side="right") - 1
        valid = rows >= 0
        closes[valid] = bars.close[rows[valid]]
    return closes
