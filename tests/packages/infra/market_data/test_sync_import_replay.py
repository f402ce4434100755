"""End-to-end pieces: a sync job fills a planted gap from recorded responses; imports; replay feed."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from alpaca.data.historical.stock import StockHistoricalDataClient

from packages.domain.market_data.bars import Market, Timeframe
from packages.domain.market_data.gaps import detect_missing_ranges
from packages.domain.market_data.quality import ImportRejected
from packages.domain.market_data.replay import ReplayClock
from packages.domain.market_data.sessions import US_EQUITY_CALENDAR
from packages.domain.market_data.sync import BarProvider, plan_sync, run_sync
from packages.domain.market_data.timeconv import to_ns
from packages.infra.market_data.catalog_json import JsonCatalog
from packages.infra.market_data.importer import import_bars
from packages.infra.market_data.packaged_data import load_packaged_datasets
from packages.infra.market_data.providers.alpaca_bars import AlpacaBarProvider
from packages.infra.market_data.providers.base import RetryPolicy, TokenBucket
from packages.infra.market_data.providers.yahoo import YahooChartProvider
from packages.infra.market_data.replay_feed import ReplayFeed
from packages.infra.market_data.store import ParquetBarStore


@pytest.fixture(scope="module")
def real_aapl() -> Any:
    return next(d for d in load_packaged_datasets() if d.symbol == "AAPL").bars


def yahoo_provider(
    fixture_text: Callable[[str], str], retry: RetryPolicy, limiter: TokenBucket
) -> BarProvider:
    body = fixture_text("yahoo_chart_aapl_1d_2013-02.json")
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, text=body)))
    return YahooChartProvider(client=client, retry=retry, limiter=limiter)


def alpaca_provider(
    fixture_text: Callable[[str], str], recorded_session: Any, retry: RetryPolicy, limiter: TokenBucket
) -> BarProvider:
    def responder(request: requests.PreparedRequest) -> tuple[int, str]:
        page = "page2" if "page_token=" in (request.url or "") else "page1"
        return 200, fixture_text(f"alpaca_stock_bars_aapl_1d_{page}.json")

    client = StockHistoricalDataClient("PKTESTKEY", "testsecret", raw_data=True)
    client._session, _ = recorded_session(responder)
    return AlpacaBarProvider(None, None, stock_client=client, retry=retry, limiter=limiter)


@pytest.mark.parametrize("provider_name", ["yahoo", "alpaca"])
def test_sync_job_fills_a_planted_gap_from_recorded_responses(
    tmp_path: Path,
    real_aapl: Any,
    provider_name: str,
    fixture_text: Callable[[str], str],
    recorded_session: Any,
    fast_retry: RetryPolicy,
    unlimited: TokenBucket,
) -> None:
    store = ParquetBarStore(tmp_path / "store")
    planted = (real_aapl.ts >= to_ns("2013-02-06")) & (real_aapl.ts < to_ns("2013-02-14"))
    store.write("us_stocks", "AAPL", "1d", real_aapl.take(~planted))
    start, end = to_ns("2013-01-02"), to_ns("2013-03-02")
    missing = detect_missing_ranges(
        US_EQUITY_CALENDAR, Timeframe.D1, store.read_base("us_stocks", "AAPL", "1d").ts, start, end
    )
    assert [(m.to_dict()["start"], m.bars) for m in missing] == [("2013-02-06T00:00:00Z", 6)]
    if provider_name == "yahoo":
        provider = yahoo_provider(fixture_text, fast_retry, unlimited)
    else:
        provider = alpaca_provider(fixture_text, recorded_session, fast_retry, unlimited)
    plan = plan_sync(
        missing,
        market=Market.US_STOCKS,
        symbol="AAPL",
        timeframe=Timeframe.D1,
        provider=provider.name,
        max_bars_per_chunk=4,
    )
    report = run_sync(plan, provider, store)
    assert report.status == "succeeded" and report.rows_written == 6
    # chunks span 4 days of calendar time: Wed-Fri, then Mon-Wed
    assert [c["rows_written"] for c in report.to_dict()["chunks"]] == [3, 3]
    assert store.read_base("us_stocks", "AAPL", "1d").equals(real_aapl)
    assert (
        detect_missing_ranges(
            US_EQUITY_CALENDAR, Timeframe.D1, store.read_base("us_stocks", "AAPL", "1d").ts, start, end
        )
        == []
    )


def synthetic_csv() -> bytes:
    """SYNTHETIC 5m bars for an import, New York wall-clock timestamps, one duplicated row."""
    index = pd.date_range("2024-04-01 09:30", "2024-04-01 15:55", freq="5min")
    close = np.linspace(20, 21, len(index))
    frame = pd.DataFrame(
        {
            "Datetime": index.strftime("%m/%d/%Y %H:%M"),
            "o": close,
            "h": close + 0.1,
            "l": close - 0.1,
            "c": close,
            "v": 1000,
        }
    )
    frame = pd.concat([frame, frame.iloc[[3]]])
    return frame.to_csv(index=False).encode()


def test_csv_import_is_stored_privately_with_its_report(tmp_path: Path) -> None:
    store = ParquetBarStore(tmp_path / "store")
    catalog = JsonCatalog(tmp_path / "catalog.json")
    stored = import_bars(
        synthetic_csv(),
        file_format="csv",
        mapping={
            "ts": "Datetime",
            "open": "o",
            "high": "h",
            "low": "l",
            "close": "c",
            "volume": "v",
            "timestamp_format": "%m/%d/%Y %H:%M",
        },
        timezone="America/New_York",
        market="us_stocks",
        symbol="MYCSV",
        timeframe="5m",
        namespace="user-1",
        max_columns=64,
        store=store,
        catalog=catalog,
    )
    report = stored.result.report
    # the duplicate is appended at the end of the file, so it also breaks the ordering
    assert report["defect_names"] == ["duplicate_timestamps", "non_monotonic"] and report["rows_out"] == 78
    assert report["coverage_start"] == "2024-04-01T13:30:00Z"
    assert catalog.list_datasets(namespaces=("user-1",))[0].symbol == "MYCSV"
    assert catalog.list_datasets() == [] and store.list_symbols() == []
    info = store.dataset("us_stocks", "MYCSV", "5m", namespace="user-1")
    assert info is not None and info.metadata["quality_report"]["defect_names"] == report["defect_names"]
    assert len(store.read("us_stocks", "MYCSV", "1h", namespace="user-1")) == 7


def test_parquet_import_and_unparseable_input(tmp_path: Path) -> None:
    ts = pd.date_range("2024-01-01", periods=30, freq="1D", tz="UTC")
    table = pa.table(
        {
            "time": ts,
            "open": np.arange(30.0) + 1,
            "high": np.arange(30.0) + 2,
            "low": np.arange(30.0) + 0.5,
            "close": np.arange(30.0) + 1.5,
            "volume": np.ones(30),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    stored = import_bars(
        buffer.getvalue(),
        file_format="parquet",
        mapping={"ts": "time"},
        timezone="UTC",
        market="crypto",
        symbol="SYNTH",
        timeframe="1d",
        namespace="user-2",
        max_columns=64,
    )
    assert len(stored.result.bars) == 30 and stored.catalog_entry is None
    with pytest.raises(ImportRejected, match="cannot parse parquet"):
        import_bars(
            b"not parquet",
            file_format="parquet",
            mapping={},
            timezone="UTC",
            market="crypto",
            symbol="X",
            timeframe="1d",
            namespace="u",
            max_columns=64,
        )


def test_replay_feed_publishes_snapshots_from_the_store(tmp_path: Path, real_aapl: Any) -> None:
    store = ParquetBarStore(tmp_path / "store")
    store.write("us_stocks", "AAPL", "1d", real_aapl)
    clock = ReplayClock(start_ns=to_ns("2013-02-04"), wall_anchor_s=0.0, speed=86_400.0)  # one day per second
    feed = ReplayFeed(store, "us_stocks", ["AAPL"], "1d", clock)
    first = feed.snapshots(0.0)[0]
    assert first["bar"]["ts"] == "2013-02-01T00:00:00Z" and first["market"] == "us_stocks"
    later = feed.snapshots(3.0)[0]
    assert later["bar"]["close"] == 457.35  # 2013-02-06 closed by the morning of the 7th
