"""Real offline market data for the strategy DSL tests.

- US stocks AAPL, MSFT, IBM, GOOG daily OHLCV (bokeh-sampledata, 2000-2013, not split-adjusted);
- EURUSD hourly OHLCV (the CSV bundled with backtesting.py, 2017-2018);
- S&P 500 (^GSPC, symbol SPX) and NASDAQ Composite (^IXIC, symbol IXIC) daily (arch's data sets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pytest

from packages.domain.strategy.bars import BarMatrix

_COLUMNS = ("Open", "High", "Low", "Close", "Volume")


def _matrix_from_frames(frames: dict[str, pd.DataFrame], symbols: Sequence[str]) -> BarMatrix:
    index = sorted(set().union(*(frame.index for frame in frames.values())))
    aligned = {symbol: frames[symbol].reindex(index) for symbol in symbols}
    values = {
        column: np.column_stack([aligned[symbol][column].to_numpy(dtype=float) for symbol in symbols])
        for column in _COLUMNS
    }
    stamps = pd.DatetimeIndex(index).as_unit("ns").asi8
    return BarMatrix.from_arrays(
        stamps,
        symbols,
        open=values["Open"],
        high=values["High"],
        low=values["Low"],
        close=values["Close"],
        volume=values["Volume"],
    )


@lru_cache(maxsize=1)
def _stock_frames() -> dict[str, pd.DataFrame]:
    path = resources.files("bokeh_sampledata") / "_data" / "stocks.csv.gz"
    with resources.as_file(path) as file:
        frame = pd.read_csv(file)
    frame["Date"] = pd.to_datetime(frame["Date"])
    return {
        str(ticker): rows.set_index("Date").sort_index()[list(_COLUMNS)]
        for ticker, rows in frame.groupby("Ticker")
    }


@lru_cache(maxsize=1)
def _index_frames() -> dict[str, pd.DataFrame]:
    frames = {}
    for symbol, name in (("SPX", "sp500"), ("IXIC", "nasdaq")):
        path = resources.files("arch") / "data" / name / f"{name}.csv.gz"
        with resources.as_file(path) as file:
            frame = pd.read_csv(file)
        frame["Date"] = pd.to_datetime(frame["Date"], format="%m/%d/%Y")
        frames[symbol] = frame.set_index("Date").sort_index()[list(_COLUMNS)]
    return frames


@lru_cache(maxsize=1)
def _eurusd_frame() -> pd.DataFrame:
    path = resources.files("backtesting") / "test" / "EURUSD.csv"
    with resources.as_file(path) as file:
        frame = pd.read_csv(file, index_col=0, parse_dates=True)
    return frame[list(_COLUMNS)]


def load_bars(symbols: Sequence[str]) -> BarMatrix:
    """Real bars of ``symbols`` from the offline data, aligned on the union of their dates."""
    frames: dict[str, pd.DataFrame] = {}
    for symbol in symbols:
        if symbol == "EURUSD":
            frames[symbol] = _eurusd_frame()
        elif symbol in ("SPX", "IXIC"):
            frames[symbol] = _index_frames()[symbol]
        else:
            frames[symbol] = _stock_frames()[symbol]
    return _matrix_from_frames(frames, symbols)


@pytest.fixture(scope="session")
def bars_for() -> Callable[[Sequence[str]], BarMatrix]:
    return load_bars


@pytest.fixture(scope="session")
def msft_columns() -> dict[str, Any]:
    """MSFT daily OHLCV as 1-D float arrays plus a pandas frame for reference computations."""
    frame = _stock_frames()["MSFT"]
    arrays = {column.lower(): frame[column].to_numpy(dtype=float) for column in _COLUMNS}
    return {"frame": frame, **arrays}
