"""Shared test data. Generated price series here are SYNTHETIC (seeded random walks), for tests only."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from packages.domain.market_data.bars import Bars


def synthetic_bars_at(index: pd.DatetimeIndex, seed: int) -> Bars:
    """Synthetic OHLCV (random walk) at the given UTC bar opens."""
    rng = np.random.default_rng(seed)
    n = len(index)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 2e-4, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 5e-4, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 5e-4, n)))
    volume = rng.integers(0, 1000, n).astype(np.float64)
    return Bars.from_columns(index.as_unit("ns").asi8, open_, high, low, close, volume)


def minutes_between(start: str, end: str, tz: str) -> pd.DatetimeIndex:
    return pd.date_range(
        pd.Timestamp(start, tz=tz), pd.Timestamp(end, tz=tz), freq="1min", inclusive="left"
    ).tz_convert("UTC")


@pytest.fixture(scope="session")
def equity_minutes() -> Bars:
    """SYNTHETIC 1m US-equity bars 04:00-20:00 New York (extended hours) on weekdays around both 2024 DST switches."""
    days = [d for d in pd.date_range("2024-03-05", "2024-03-14") if d.day_of_week < 5]
    days += [d for d in pd.date_range("2024-10-30", "2024-11-06") if d.day_of_week < 5]
    parts = [minutes_between(f"{d.date()} 04:00", f"{d.date()} 20:00", "America/New_York") for d in days]
    index = parts[0].append(parts[1:])
    keep = np.random.default_rng(7).random(len(index)) > 0.03  # some missing minutes
    return synthetic_bars_at(index[keep], seed=1)


@pytest.fixture(scope="session")
def forex_minutes() -> Bars:
    """SYNTHETIC 1m forex bars, continuous Sunday 17:00 - Friday 17:00 New York, across the March DST switch,
    plus a few stray weekend prints that must not enter any session."""
    weeks = [("2024-03-03 17:00", "2024-03-08 17:00"), ("2024-03-10 17:00", "2024-03-15 17:00")]
    parts = [minutes_between(a, b, "America/New_York") for a, b in weeks]
    strays = pd.DatetimeIndex(
        [
            pd.Timestamp("2024-03-09 10:00", tz="America/New_York"),
            pd.Timestamp("2024-03-08 18:30", tz="America/New_York"),
        ]
    ).tz_convert("UTC")
    index = parts[0].append([parts[1], strays]).sort_values()
    keep = np.random.default_rng(8).random(len(index)) > 0.02
    return synthetic_bars_at(index[keep], seed=2)


@pytest.fixture(scope="session")
def crypto_minutes() -> Bars:
    """SYNTHETIC 1m crypto bars, 24/7 for 16 days, with random missing minutes."""
    index = pd.date_range("2024-02-26", "2024-03-13", freq="1min", tz="UTC", inclusive="left")
    keep = np.random.default_rng(9).random(len(index)) > 0.05
    return synthetic_bars_at(index[keep], seed=3)


def packaged_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / relative


@pytest.fixture(scope="session")
def aapl_daily() -> Bars:
    """REAL AAPL daily bars 2000-2013 from bokeh-sampledata (public-domain Quandl WIKI data)."""
    with gzip.open(packaged_file("bokeh_sampledata", "_data/stocks.csv.gz"), "rt") as handle:
        frame = pd.read_csv(handle)
    rows = frame[frame["Ticker"] == "AAPL"]
    ts = pd.to_datetime(rows["Date"]).to_numpy(dtype="datetime64[ns]").view(np.int64)
    return Bars.from_columns(ts, rows["Open"], rows["High"], rows["Low"], rows["Close"], rows["Volume"])


@pytest.fixture(scope="session")
def eurusd_hourly() -> Bars:
    """REAL EURUSD hourly bars 2017-2018 shipped in the backtesting package (UTC)."""
    frame = pd.read_csv(packaged_file("backtesting", "test/EURUSD.csv"), index_col=0)
    ts = pd.to_datetime(frame.index).as_unit("ns").asi8
    return Bars.from_columns(ts, frame["Open"], frame["High"], frame["Low"], frame["Close"], frame["Volume"])
