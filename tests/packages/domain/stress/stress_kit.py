"""Builders shared by the stress tests: real index data read straight from its files, SYNTHETIC bars
made from a close path, small strategy documents and a context over them.

Real data: the daily S&P 500 (SPX) and NASDAQ Composite (IXIC) index files bundled with arch
(1999-01-04 to 2018-12-31), the same files the market-data store serves offline. Synthetic bars are
generated price paths for properties real data cannot give on demand (no edge at all, a planted
edge); every builder of them says so in its name.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.pipeline import Backtester
from packages.domain.stress.methods import StressContext
from tests.packages.domain.backtest.kit import ARCH_INDEX_FILES

NS_PER_DAY = 86_400 * 10**9
# Costs off where a test works a figure out by hand from prices.
NO_COSTS = ExecutionAssumptions(fee_bps=0.0, slippage_bps=0.0)


def index_frame(symbol: str) -> pd.DataFrame:
    """The raw daily file of ``symbol`` (Date, Open, High, Low, Close, ...), read with pandas alone:
    the independent side of tests that check the engine against the data."""
    spec = importlib.util.find_spec("arch")
    assert spec is not None and spec.submodule_search_locations, "arch is not installed"
    folder = Path(next(iter(spec.submodule_search_locations)))
    frame = pd.read_csv(folder / ARCH_INDEX_FILES[symbol])
    frame["Date"] = pd.to_datetime(frame["Date"], format="%m/%d/%Y")
    return frame.sort_values("Date").reset_index(drop=True)


def synthetic_bars(close: npt.NDArray[np.float64], symbol: str = "SYNTH") -> UniverseBars:
    """SYNTHETIC daily bars around a generated close path: each bar opens at the previous close and
    its range reaches 0.2% beyond the open and the close; one bar per calendar day from 2000-01-01."""
    n = close.shape[0]
    opens = np.concatenate(([close[0]], close[:-1]))
    high = np.maximum(opens, close) * 1.002
    low = np.minimum(opens, close) * 0.998
    index = np.int64(pd.Timestamp("2000-01-01").value) + NS_PER_DAY * np.arange(n, dtype=np.int64)

    def column(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.ascontiguousarray(values, dtype=np.float64).reshape(-1, 1)

    return UniverseBars.from_arrays(
        index,
        [symbol],
        column(opens),
        column(high),
        column(low),
        column(close),
        column(np.full(n, 1e6)),
    )


def document(
    symbol: str,
    factors: list[dict[str, Any]],
    entry: Mapping[str, Any],
    exits: list[dict[str, Any]],
    *,
    sizing: Mapping[str, Any] | None = None,
    portfolio: Mapping[str, Any] | None = None,
    name: str = "Stress test strategy",
) -> dict[str, Any]:
    """A long-only daily US-stock document over one symbol."""
    body: dict[str, Any] = {
        "dsl_version": "1.0.0",
        "metadata": {"name": name},
        "universe": {"market": "us_stocks", "symbols": [symbol]},
        "timeframe": "1d",
        "factors": factors,
        "trade": {
            "long": {
                "entry": {"condition": dict(entry)},
                "exits": exits,
                "sizing": dict(sizing or {"mode": "percent_equity", "percent": 100}),
            }
        },
    }
    if portfolio is not None:
        body["portfolio"] = dict(portfolio)
    return body


def sma_cross_document(symbol: str, fast: int, slow: int, **extra: Any) -> dict[str, Any]:
    """Long while SMA(fast) is above SMA(slow): enter on the cross above, leave on the cross below."""
    fast_op, slow_op = {"factor": "sma_fast"}, {"factor": "sma_slow"}
    return document(
        symbol,
        [
            {"id": "sma_fast", "indicator": "sma", "params": {"period": fast}},
            {"id": "sma_slow", "indicator": "sma", "params": {"period": slow}},
            *extra.pop("more_factors", []),
        ],
        {"op": "cross_above", "left": fast_op, "right": slow_op},
        [
            {
                "name": "cross_below",
                "type": "signal",
                "condition": {"op": "cross_below", "left": fast_op, "right": slow_op},
            }
        ],
        **extra,
    )


def context(
    strategy: Mapping[str, Any],
    bars: UniverseBars,
    *,
    first_row: int = 0,
    stop_row: int | None = None,
    assumptions: ExecutionAssumptions | None = None,
) -> StressContext:
    """A stress context over ``bars`` (rows before ``first_row`` warm up), one sweep thread."""
    return StressContext(
        Backtester(strategy, bars, assumptions),
        first_row=first_row,
        stop_row=bars.n_bars if stop_row is None else stop_row,
        threads=1,
    )
