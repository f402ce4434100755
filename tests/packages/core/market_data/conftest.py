"""Market-data API tests: the session's real IO worker cold-starts the store once, from packaged data.

Worker subprocesses start after collection, so setting the provider hook here reaches them: their
sync jobs answer AAPL daily bars from a recorded response instead of the network.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.packages.core.market_data.helpers import wait_for_cold_start
from tests.packages.core.market_data.recorded_providers import FACTORY_PATH

os.environ.setdefault("MARKET_DATA_PROVIDER_FACTORY", FACTORY_PATH)


@pytest.fixture(scope="session")
async def market_data_ready(celery_workers: dict[str, str], api_app: Any) -> dict[str, Any]:
    """The cold start the IO worker enqueued on `worker_ready`, finished."""
    return await wait_for_cold_start(api_app.state.resources)
