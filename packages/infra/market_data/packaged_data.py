"""Real price history shipped inside installed PyPI packages, used to build the offline demo archive.

Files are located with ``importlib.util.find_spec`` (no package is imported: importing ``arch`` or
``backtesting`` would pull in scipy, statsmodels or bokeh just to find a path) and parsed with
pandas. Each dataset records its package, file, version and licence note.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from packages.domain.market_data.bars import AssetClass, Bars, Market, Timeframe, sort_unique


@dataclass(frozen=True, slots=True)
class PackagedDataset:
    market: Market
    symbol: str
    timeframe: Timeframe
    asset_class: AssetClass
    bars: Bars
    provenance: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Source:
    package: str
    distribution: str
    relative_path: str
    licence: str
    loader: Callable[[Path], list[tuple[str, Bars]]]
    market: Market
    timeframe: Timeframe
    asset_class: AssetClass
    note: str
    symbols: tuple[str, ...] = ()


def locate_package_file(package: str, relative_path: str) -> Path | None:
    """Path of a data file inside an installed top-level package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative_path
        if candidate.is_file():
            return candidate
    return None


def _daily_ts(dates: pd.Series, date_format: str | None = None) -> np.ndarray:
    parsed = pd.to_datetime(dates, format=date_format).dt.normalize()
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _frame_bars(frame: pd.DataFrame, ts: np.ndarray) -> Bars:
    return sort_unique(
        Bars.from_columns(
            ts,
            frame["Open"].to_numpy(dtype=np.float64),
            frame["High"].to_numpy(dtype=np.float64),
            frame["Low"].to_numpy(dtype=np.float64),
            frame["Close"].to_numpy(dtype=np.float64),
            frame["Volume"].to_numpy(dtype=np.float64),
        )
    )


def _load_bokeh_stocks(path: Path, symbols: tuple[str, ...]) -> list[tuple[str, Bars]]:
    frame = pd.read_csv(path)
    loaded = []
    for symbol in symbols:
        rows = frame[frame["Ticker"] == symbol]
        if len(rows):
            loaded.append((symbol, _frame_bars(rows, _daily_ts(rows["Date"], "%Y-%m-%d"))))
    return loaded


def _load_backtesting_csv(path: Path, symbol: str) -> list[tuple[str, Bars]]:
    frame = pd.read_csv(path, index_col=0)
    # backtesting's EURUSD.csv is in UTC: its week opens Sunday 21:00/22:00 = 17:00 New York.
    stamps = pd.to_datetime(frame.index).as_unit("ns")
    return [(symbol, _frame_bars(frame, stamps.asi8))]


def _load_arch_index(path: Path, symbol: str) -> list[tuple[str, Bars]]:
    frame = pd.read_csv(path)
    return [(symbol, _frame_bars(frame, _daily_ts(frame["Date"], "%m/%d/%Y")))]


_BOKEH_LICENCE = "bokeh-sampledata (BSD-3-Clause); stock prices from the Quandl WIKI dataset, public domain"
_SOURCES: tuple[_Source, ...] = (
    _Source(
        package="bokeh_sampledata",
        distribution="bokeh-sampledata",
        relative_path="_data/stocks.csv.gz",
        licence=_BOKEH_LICENCE,
        loader=lambda path: _load_bokeh_stocks(path, ("AAPL", "MSFT", "IBM", "GOOG")),
        market=Market.US_STOCKS,
        timeframe=Timeframe.D1,
        asset_class=AssetClass.STOCK,
        note="daily OHLCV, prices not split-adjusted",
        symbols=("AAPL", "MSFT", "IBM", "GOOG"),
    ),
    _Source(
        package="backtesting",
        distribution="backtesting",
        relative_path="test/GOOG.csv",
        licence="backtesting.py package (AGPL-3.0); only the bundled CSV data is read, no code is used",
        loader=lambda path: _load_backtesting_csv(path, "GOOG"),
        market=Market.US_STOCKS,
        timeframe=Timeframe.D1,
        asset_class=AssetClass.STOCK,
        note="daily OHLCV; used only when bokeh-sampledata is not installed",
        symbols=("GOOG",),
    ),
    _Source(
        package="backtesting",
        distribution="backtesting",
        relative_path="test/EURUSD.csv",
        licence="backtesting.py package (AGPL-3.0); only the bundled CSV data is read, no code is used",
        loader=lambda path: _load_backtesting_csv(path, "EURUSD"),
        market=Market.FOREX,
        timeframe=Timeframe.H1,
        asset_class=AssetClass.FOREX,
        note="hourly OHLCV in UTC, volume as shipped (tick volume)",
        symbols=("EURUSD",),
    ),
    _Source(
        package="arch",
        distribution="arch",
        relative_path="data/sp500/sp500.csv.gz",
        licence="arch package (NCSA); S&P 500 index (^GSPC) daily data as shipped in arch.data",
        loader=lambda path: _load_arch_index(path, "SPX"),
        market=Market.US_STOCKS,
        timeframe=Timeframe.D1,
        asset_class=AssetClass.INDEX,
        note="index, source ticker ^GSPC (S&P 500); not tradable directly",
        symbols=("SPX",),
    ),
    _Source(
        package="arch",
        distribution="arch",
        relative_path="data/nasdaq/nasdaq.csv.gz",
        licence="arch package (NCSA); NASDAQ Composite index (^IXIC) daily data as shipped in arch.data",
        loader=lambda path: _load_arch_index(path, "IXIC"),
        market=Market.US_STOCKS,
        timeframe=Timeframe.D1,
        asset_class=AssetClass.INDEX,
        note="index, source ticker ^IXIC (NASDAQ Composite, not the Nasdaq-100); not tradable directly",
        symbols=("IXIC",),
    ),
)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_packaged_datasets() -> list[PackagedDataset]:
    """Every packaged dataset found in the environment; the first source of a symbol wins."""
    datasets: list[PackagedDataset] = []
    seen: set[tuple[Market, str, Timeframe]] = set()
    for source in _SOURCES:
        if all((source.market, symbol, source.timeframe) in seen for symbol in source.symbols):
            continue
        path = locate_package_file(source.package, source.relative_path)
        if path is None:
            continue
        for symbol, bars in source.loader(path):
            key = (source.market, symbol, source.timeframe)
            if key in seen or len(bars) == 0:
                continue
            seen.add(key)
            datasets.append(
                PackagedDataset(
                    market=source.market,
                    symbol=symbol,
                    timeframe=source.timeframe,
                    asset_class=source.asset_class,
                    bars=bars,
                    provenance={
                        "kind": "real",
                        "package": source.distribution,
                        "package_version": _version(source.distribution),
                        "file": f"{source.package}/{source.relative_path}",
                        "licence": source.licence,
                        "note": source.note,
                    },
                )
            )
    return datasets
