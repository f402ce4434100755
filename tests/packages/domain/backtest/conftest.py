"""Session fixtures of the backtest tests: a one-time kernel warm-up and real daily stock and index data."""

from __future__ import annotations

import pandas as pd
import pytest

from packages.domain.backtest.bars import UniverseBars
from packages.domain.strategy.plan import ExitPlan
from tests.packages.domain.backtest.kit import (
    bars_from_rows,
    flags,
    index_bars,
    run,
    side,
    stock_bars,
    stocks_frame,
)


@pytest.fixture(scope="session", autouse=True)
def _warm_kernels() -> None:
    """Compile (or load from numba's cache) the kernels once, before any timing-sensitive test."""
    bars = bars_from_rows([(10, 11, 9, 10), (10, 11, 9, 10), (10, 12, 8, 11)])
    run(bars, [side(flags(3, [0]), [ExitPlan("sl", "stop_loss", fraction=0.1)])])


@pytest.fixture(scope="session")
def stocks() -> pd.DataFrame:
    return stocks_frame()


@pytest.fixture(scope="session")
def aapl(stocks: pd.DataFrame) -> UniverseBars:
    return stock_bars(stocks, ["AAPL"])


@pytest.fixture(scope="session")
def indices() -> UniverseBars:
    """Daily S&P 500 (SPX) and NASDAQ Composite (IXIC) bars, 1999-2018."""
    return index_bars(["SPX", "IXIC"])
