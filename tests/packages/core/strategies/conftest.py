from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _tradable_symbols(market_data_ready: dict[str, Any]) -> None:
    """Strategies may only trade symbols with data: the offline store must be there."""
