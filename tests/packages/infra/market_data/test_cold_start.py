"""Cold start from the real data shipped in installed packages, offline, idempotent; archive downloads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import py7zr
import pytest

from packages.domain.market_data.bars import Timeframe
from packages.infra.market_data.catalog_json import JsonCatalog
from packages.infra.market_data.cold_start import (
    ArchiveSource,
    ColdStartConfig,
    ColdStartProgress,
    ensure_market_data,
)
from packages.infra.market_data.store import ParquetBarStore


@pytest.fixture(scope="module")
def cold_started(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, JsonCatalog, list[ColdStartProgress], dict]:
    data_dir = tmp_path_factory.mktemp("market_data")
    catalog = JsonCatalog(data_dir / "catalog.json")
    events: list[ColdStartProgress] = []
    report = ensure_market_data(ColdStartConfig(data_dir), catalog=catalog, progress=events.append)
    return data_dir, catalog, events, report.to_dict()


def test_offline_cold_start_registers_real_packaged_data(cold_started: tuple) -> None:
    data_dir, catalog, events, report = cold_started
    assert report["ok"] and report["archives"][0]["status"] == "registered"
    entries = {(e.market, e.symbol, e.timeframe): e for e in catalog.list_datasets()}
    assert {("us_stocks", s, "1d") for s in ("AAPL", "MSFT", "IBM", "GOOG", "SPX", "IXIC")} | {
        ("forex", "EURUSD", "1h")
    } == set(entries)
    aapl = entries[("us_stocks", "AAPL", "1d")]
    assert aapl.row_count == 3270 and aapl.to_dict()["coverage_start"] == "2000-03-01T00:00:00Z"
    assert aapl.provenance["package"] == "bokeh-sampledata" and "public domain" in aapl.provenance["licence"]
    assert entries[("us_stocks", "SPX", "1d")].asset_class == "index"
    assert entries[("forex", "EURUSD", "1h")].provenance["file"] == "backtesting/test/EURUSD.csv"
    stages = [event.stage for event in events]
    assert stages[0] == "building_demo" and "extracting" in stages and stages[-1] == "done"
    assert (data_dir / "archives" / "minsy-demo-packaged.7z").exists()


def test_cold_started_store_serves_real_bars_for_every_timeframe(cold_started: tuple) -> None:
    data_dir = cold_started[0]
    store = ParquetBarStore(data_dir / "store")
    eurusd = store.read("forex", "EURUSD", "1h")
    assert len(eurusd) == 5000 and eurusd.close[0] == pytest.approx(1.07219)
    assert len(store.read("forex", "EURUSD", "4h")) > 1000
    assert len(store.read("us_stocks", "AAPL", "1w")) > 600
    close_2013 = store.read("us_stocks", "AAPL", "1d", start="2013-02-04", end="2013-02-05")
    assert close_2013.close.tolist() == [442.316]


def test_second_run_is_idempotent_and_repairs_an_empty_catalog(cold_started: tuple) -> None:
    data_dir, catalog, _, first = cold_started
    fresh_catalog = JsonCatalog(data_dir / "catalog-new.json")
    report = ensure_market_data(ColdStartConfig(data_dir), catalog=fresh_catalog).to_dict()
    assert [a["status"] for a in report["archives"]] == ["already_registered"]
    assert {e.checksum for e in fresh_catalog.list_datasets()} == {
        e.checksum for e in catalog.list_datasets()
    }
    assert report["inventory"] == first["inventory"]


def make_archive(directory: Path) -> bytes:
    """An archive without manifest, using the fallback <market>/<SYMBOL>_<tf>.csv layout (SYNTHETIC bars)."""
    ts = pd.date_range("2024-01-01", periods=48, freq="1h", tz="UTC")
    close = np.linspace(40000, 41000, 48)
    frame = pd.DataFrame(
        {
            "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "open": close,
            "high": close + 5,
            "low": close - 5,
            "close": close,
            "volume": 1.0,
        }
    )
    source = directory / "src" / "crypto"
    source.mkdir(parents=True)
    frame.to_csv(source / "SYNTH-BTCUSD_1h.csv", index=False)
    path = directory / "synthetic.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writeall(directory / "src", arcname="")
    return path.read_bytes()


def test_url_archive_is_downloaded_verified_and_registered(tmp_path: Path) -> None:
    payload = make_archive(tmp_path)
    digest = hashlib.sha256(payload).hexdigest()
    requests_seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests_seen.append(str(request.url))
        return httpx.Response(200, content=payload, headers={"content-length": str(len(payload))})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    config = ColdStartConfig(
        tmp_path / "data",
        archives=(ArchiveSource("synthetic", "https://archives.example/synthetic.7z", digest),),
        include_packaged_demo=False,
    )
    report = ensure_market_data(config, http_client=client)
    assert report.ok and report.archives[0].status == "registered"
    store = ParquetBarStore(config.store_dir)
    assert len(store.read("crypto", "SYNTH-BTCUSD", Timeframe.H4)) == 12
    again = ensure_market_data(config, http_client=client)
    assert again.archives[0].status == "already_registered" and len(requests_seen) == 1
    marker = json.loads((config.data_dir / "cold_start.json").read_text())
    assert marker["archives"]["synthetic"]["sha256"] == digest


def test_checksum_mismatch_and_offline_download_fail_without_raising(tmp_path: Path) -> None:
    payload = make_archive(tmp_path)

    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("network unreachable", request=request)

    config = ColdStartConfig(
        tmp_path / "data",
        archives=(
            ArchiveSource("tampered", str(tmp_path / "synthetic.7z"), "0" * 64),
            ArchiveSource("remote", "https://archives.example/x.7z", hashlib.sha256(payload).hexdigest()),
        ),
        include_packaged_demo=False,
    )
    report = ensure_market_data(config, http_client=httpx.Client(transport=httpx.MockTransport(offline)))
    assert not report.ok
    errors = {outcome.name: outcome.error or "" for outcome in report.archives}
    assert "sha256 mismatch" in errors["tampered"] and "ConnectError" in errors["remote"]
    assert report.inventory == []
