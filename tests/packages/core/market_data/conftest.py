"""Market-data API tests use the session's cold-started store (``market_data_ready`` in tests/conftest.py);
their sync jobs answer from recorded provider responses (MARKET_DATA_PROVIDER_FACTORY, set there too)."""

from tests.conftest import market_data_ready

__all__ = ["market_data_ready"]
