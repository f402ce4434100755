"""Builders shared by the backtest tests: hand-written bars, plans, result accessors and real data.

Hand-written bars are tiny, explicit price paths (not market data); the real data are the daily
AAPL/MSFT/IBM/GOOG bars of bokeh-sampledata, the GOOG/EURUSD CSVs bundled with backtesting.py and the
daily S&P 500 and NASDAQ Composite index bars (1999-2018) bundled with arch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.result import BacktestResult
from packages.domain.strategy.plan import (
    ExitPlan,
    OrderPlan,
    PortfolioPlan,
    RotationPlan,
    SidePlan,
    SizingPlan,
    StrategyPlan,
)

NS_PER_DAY = 86_400 * 1_000_000_000
# Index files shipped with arch, by the symbol the market-data store serves them as.
ARCH_INDEX_FILES = {"SPX": "data/sp500/sp500.csv.gz", "IXIC": "data/nasdaq/nasdaq.csv.gz"}
DAY0 = int(pd.Timestamp("2024-01-01").value)

# Costs off: scenario tests that are not about costs check prices exactly.
NO_COSTS = ExecutionAssumptions(fee_bps=0.0, slippage_bps=0.0, periods_per_year=252.0)

Row = tuple[float, ...]


def bars_from_rows(
    rows: Sequence[Row] | Sequence[Sequence[Row]], symbols: Sequence[str] = ("X",)
) -> UniverseBars:
    """Daily bars from ``(open, high, low, close[, volume])`` rows; nested lists give several symbols."""
    per_symbol = [rows] if len(symbols) == 1 else rows
    n = len(per_symbol[0])
    columns = {name: np.empty((n, len(symbols))) for name in ("open", "high", "low", "close", "volume")}
    for column, series in enumerate(per_symbol):
        for i, row in enumerate(series):  # type: ignore[arg-type]
            values = tuple(row) if len(row) == 5 else (*row, 1_000.0)  # type: ignore[arg-type]
            for name, value in zip(("open", "high", "low", "close", "volume"), values, strict=True):
                columns[name][i, column] = value
    index = DAY0 + NS_PER_DAY * np.arange(n, dtype=np.int64)
    return UniverseBars(index=index, symbols=tuple(symbols), **columns)


def flags(n: int, bars: Sequence[int], n_symbols: int = 1, column: int = 0) -> np.ndarray:
    """A boolean signal matrix that is true on ``bars`` of one symbol column."""
    matrix = np.zeros((n, n_symbols), dtype=bool)
    matrix[list(bars), column] = True
    return matrix


def values_at(n: int, at: dict[int, float], n_symbols: int = 1, column: int = 0) -> np.ndarray:
    matrix = np.full((n, n_symbols), np.nan)
    for bar, value in at.items():
        matrix[bar, column] = value
    return matrix


def side(
    entry: np.ndarray,
    exits: Sequence[ExitPlan] = (),
    *,
    direction: str = "long",
    order: OrderPlan | None = None,
    sizing: SizingPlan | None = None,
) -> SidePlan:
    return SidePlan(
        side=direction,  # type: ignore[arg-type]
        entry=entry,
        order=order or OrderPlan(),
        exits=tuple(exits),
        sizing=sizing or SizingPlan("fixed_quantity", 10.0),
    )


def plan(
    bars: UniverseBars,
    sides: Sequence[SidePlan],
    *,
    max_open: int = 1,
    rotation: RotationPlan | None = None,
    warmup: int = 0,
    factors: dict[str, np.ndarray] | None = None,
    leaves: dict[str, np.ndarray] | None = None,
) -> StrategyPlan:
    return StrategyPlan(
        index=bars.index,
        symbols=bars.symbols,
        sides=tuple(sides),
        portfolio=PortfolioPlan(max_open, rotation),
        warmup_bars=warmup,
        factors=factors or {},
        leaves=leaves or {},
    )


@dataclass(frozen=True)
class Trade:
    """A trade as the tests compare it: plain Python values."""

    symbol: str
    direction: str
    entry_bar: int
    entry_price: float
    exit_bar: int
    exit_price: float
    quantity: float
    reason: str
    pnl: float


def trades_of(result: BacktestResult) -> list[Trade]:
    cols = result.trade_columns()
    return [
        Trade(
            str(cols["symbol"][k]),
            str(cols["direction"][k]),
            int(cols["entry_bar"][k]),
            float(cols["entry_price"][k]),
            int(cols["exit_bar"][k]),
            float(cols["exit_price"][k]),
            float(cols["quantity"][k]),
            str(cols["exit_reason"][k]),
            float(cols["pnl"][k]),
        )
        for k in range(result.n_trades)
    ]


def run(
    bars: UniverseBars,
    sides: Sequence[SidePlan],
    assumptions: ExecutionAssumptions = NO_COSTS,
    **plan_kwargs: Any,
) -> BacktestResult:
    return simulate(plan(bars, sides, **plan_kwargs), bars, assumptions)


def stocks_frame() -> pd.DataFrame:
    """bokeh-sampledata daily stocks (AAPL, MSFT, IBM 2000-2013; GOOG 2004-2013; not split-adjusted)."""
    path = resources.files("bokeh_sampledata") / "_data" / "stocks.csv.gz"
    with resources.as_file(path) as file:
        return pd.read_csv(file, parse_dates=["Date"])


def stock_bars(frame: pd.DataFrame, symbols: Sequence[str]) -> UniverseBars:
    """Daily bars of ``symbols`` aligned on the union of their dates."""
    per_symbol = {s: frame[frame["Ticker"] == s].set_index("Date").sort_index() for s in symbols}
    index = sorted(set().union(*(f.index for f in per_symbol.values())))
    aligned = {s: f.reindex(index) for s, f in per_symbol.items()}
    matrices = {
        name.lower(): np.column_stack([aligned[s][name].to_numpy(dtype=float) for s in symbols])
        for name in ("Open", "High", "Low", "Close", "Volume")
    }
    return UniverseBars.from_arrays(
        pd.DatetimeIndex(index).as_unit("ns").asi8,
        list(symbols),
        matrices["open"],
        matrices["high"],
        matrices["low"],
        matrices["close"],
        matrices["volume"],
    )


def backtesting_csv(name: str) -> pd.DataFrame:
    """One of the OHLCV CSVs shipped with backtesting.py (GOOG daily 2004-2013, EURUSD hourly)."""
    path = resources.files("backtesting") / "test" / f"{name}.csv"
    with resources.as_file(path) as file:
        return pd.read_csv(file, index_col=0, parse_dates=True)


def index_bars(symbols: Sequence[str]) -> UniverseBars:
    """Daily bars of arch's index files (``ARCH_INDEX_FILES``) aligned on the union of their dates.

    The files are found without importing arch (which would pull in scipy and statsmodels).
    """
    spec = importlib.util.find_spec("arch")
    assert spec is not None and spec.submodule_search_locations, "arch is not installed"
    folder = Path(next(iter(spec.submodule_search_locations)))
    frames = []
    for symbol in symbols:
        frame = pd.read_csv(folder / ARCH_INDEX_FILES[symbol])
        frame["Date"] = pd.to_datetime(frame["Date"], format="%m/%d/%Y")
        frames.append(frame.assign(Ticker=symbol))
    return stock_bars(pd.concat(frames), symbols)
