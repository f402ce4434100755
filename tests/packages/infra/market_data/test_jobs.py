"""The entry points the lead wires into API routes, MCP tools and Celery tasks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from packages.domain.market_data.sync import ProviderError
from packages.domain.market_data.timeconv import to_ns
from packages.infra.market_data.catalog_json import JsonCatalog
from packages.infra.market_data.jobs import (
    ProviderSettings,
    build_regime_snapshot,
    default_provider_name,
    detect_missing,
    execute_sync,
    make_provider,
    plan_missing,
)
from packages.infra.market_data.packaged_data import load_packaged_datasets
from packages.infra.market_data.providers.base import RetryPolicy, TokenBucket
from packages.infra.market_data.providers.yahoo import YahooChartProvider
from packages.infra.market_data.store import DatasetNotFound, ParquetBarStore


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> ParquetBarStore:
    """A store holding the REAL packaged datasets (AAPL etc. daily, EURUSD hourly)."""
    store = ParquetBarStore(tmp_path_factory.mktemp("jobs") / "store")
    for dataset in load_packaged_datasets():
        store.write(dataset.market, dataset.symbol, dataset.timeframe, dataset.bars)
    return store


def test_provider_selection_and_construction() -> None:
    keyed = ProviderSettings(alpaca_api_key="k", alpaca_secret_key="s")
    assert default_provider_name("crypto", "1m", ProviderSettings()) == "ccxt"
    assert default_provider_name("us_stocks", "5m", keyed) == "alpaca"
    assert default_provider_name("us_stocks", "1d", ProviderSettings()) == "yahoo"
    with pytest.raises(ProviderError):
        default_provider_name("forex", "1h", ProviderSettings())
    assert make_provider("ccxt", ProviderSettings(ccxt_exchange="kraken")).name == "ccxt_kraken"
    assert make_provider("yahoo", ProviderSettings()).name == "yahoo_chart"
    with pytest.raises(ValueError, match="unknown provider"):
        make_provider("bloomberg", ProviderSettings())


def test_gap_detection_planning_and_execution_update_the_catalog(
    tmp_path: Path, fixture_text: Callable[[str], str], fast_retry: RetryPolicy, unlimited: TokenBucket
) -> None:
    aapl = next(d for d in load_packaged_datasets() if d.symbol == "AAPL").bars
    store = ParquetBarStore(tmp_path / "store")
    store.write("us_stocks", "AAPL", "1d", aapl.take(aapl.ts < to_ns("2013-02-04")))
    missing = detect_missing(store, "us_stocks", "AAPL", "1d", "2013-01-15", "2013-02-16")
    assert [(m.to_dict()["start"], m.bars) for m in missing] == [("2013-02-04T00:00:00Z", 10)]
    assert detect_missing(store, "us_stocks", "NONE", "1d", "2013-02-04", "2013-02-09")[0].bars == 5
    body = fixture_text("yahoo_chart_aapl_1d_2013-02.json")
    provider = YahooChartProvider(
        client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text=body))),
        retry=fast_retry,
        limiter=unlimited,
    )
    plan = plan_missing(store, provider, "us_stocks", "AAPL", "1d", "2013-01-15", "2013-02-16")
    assert len(plan.chunks) == 1
    catalog = JsonCatalog(tmp_path / "catalog.json")
    report = execute_sync(plan, provider, store, catalog=catalog)
    assert report.rows_written == 10
    entry = catalog.get_dataset("public", "us_stocks", "AAPL", "1d")
    assert entry is not None and entry.to_dict()["coverage_end"] == "2013-02-15T00:00:00Z"
    with pytest.raises(ProviderError):
        plan_missing(store, provider, "us_stocks", "AAPL", "5m", "2013-01-15", "2013-02-16")


def test_regime_snapshot_from_the_store_uses_available_timeframes(real_store: ParquetBarStore) -> None:
    daily = build_regime_snapshot(real_store, "us_stocks", "SPX", "swing")
    assert daily["timeframes"] == {"primary": "1d", "context": "1w"}
    assert any("finest stored" in note for note in daily["notes"])
    assert daily["as_of"] == "2018-12-31T00:00:00Z"
    hourly = build_regime_snapshot(real_store, "forex", "EURUSD", "intraday", holding_minutes=600)
    assert hourly["timeframes"] == {"primary": "1h", "context": "4h"}
    assert build_regime_snapshot(real_store, "forex", "EURUSD", "intraday", holding_minutes=600) == hourly
    with pytest.raises(DatasetNotFound):
        build_regime_snapshot(real_store, "crypto", "BTC/USDT", "swing")
