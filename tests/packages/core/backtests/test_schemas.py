"""The backtest API's schemas against the engine they expose."""

from __future__ import annotations

from packages.core.backtests.schemas import ANALYSIS_VIEWS
from packages.domain.backtest.analytics import VIEWS


def test_every_engine_view_is_exposed_under_its_name() -> None:
    assert set(ANALYSIS_VIEWS) == set(VIEWS)
