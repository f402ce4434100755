"""Session fixtures of the stress tests: the real daily index bars, loaded once."""

from __future__ import annotations

import pytest

from packages.domain.backtest.bars import UniverseBars
from tests.packages.domain.backtest.kit import index_bars


@pytest.fixture(scope="session")
def spx() -> UniverseBars:
    """Daily S&P 500 index bars, 1999-01-04 to 2018-12-31 (real data)."""
    return index_bars(["SPX"])


@pytest.fixture(scope="session")
def ixic() -> UniverseBars:
    """Daily NASDAQ Composite index bars, 1999-01-04 to 2018-12-31 (real data)."""
    return index_bars(["IXIC"])
