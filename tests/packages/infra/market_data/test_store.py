"""Parquet store: round trips, upsert idempotency, partitioning, namespaces, resampled reads and cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from packages.domain.market_data.bars import NS_PER_MINUTE, Bars, Timeframe
from packages.domain.market_data.resample import TimeframeNotServable, resample
from packages.domain.market_data.sessions import CRYPTO_CALENDAR, FOREX_CALENDAR
from packages.infra.market_data.store import DatasetNotFound, ParquetBarStore
from tests.support.forking import assert_forked_child_agrees


def synthetic_minutes(start: str, minutes: int, seed: int = 1) -> Bars:
    """SYNTHETIC 1m bars (seeded random walk)."""
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp(start, tz="UTC").value + np.arange(minutes, dtype=np.int64) * NS_PER_MINUTE
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, minutes)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return Bars.from_columns(
        ts,
        open_,
        np.maximum(open_, close) + 0.01,
        np.minimum(open_, close) - 0.01,
        close,
        rng.random(minutes),
    )


@pytest.fixture()
def store(tmp_path: Path) -> ParquetBarStore:
    return ParquetBarStore(tmp_path / "store")


def test_roundtrip_partitions_by_year_with_utc_timestamps(store: ParquetBarStore) -> None:
    bars = synthetic_minutes("2023-12-31 22:00", 6 * 60)
    result = store.write("crypto", "BTC/USDT", "1m", bars)
    assert sorted(result.partitions_written) == ["2023", "2024"]
    assert store.read_base("crypto", "BTC/USDT", "1m").equals(bars)
    directory = store.dataset_dir("crypto", "BTC/USDT", "1m", "public")
    assert directory.relative_to(store.root).as_posix() == "public/crypto/BTC%2FUSDT/1m"
    schema = pq.read_schema(directory / "2024.parquet")
    assert str(schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    info = store.dataset("crypto", "BTC/USDT", "1m")
    assert info is not None and info.rows == len(bars)
    assert (info.start_ns, info.end_ns) == (int(bars.ts[0]), int(bars.ts[-1]))
    assert store.list_symbols() == [("crypto", "BTC/USDT")]


def test_upsert_is_idempotent_and_incoming_rows_win(store: ParquetBarStore) -> None:
    bars = synthetic_minutes("2024-01-01", 600)
    first = store.write("crypto", "ETH/USDT", "1m", bars)
    again = store.write("crypto", "ETH/USDT", "1m", bars)
    assert first.changed and not again.changed
    assert again.dataset.checksum == first.dataset.checksum
    corrected = bars.take(slice(100, 110))
    corrected = Bars.from_columns(
        corrected.ts, corrected.open, corrected.high + 1, corrected.low, corrected.close, corrected.volume
    )
    extra = synthetic_minutes("2024-01-01 10:00", 60, seed=2)
    store.write("crypto", "ETH/USDT", "1m", corrected)
    store.write("crypto", "ETH/USDT", "1m", extra)
    stored = store.read_base("crypto", "ETH/USDT", "1m")
    assert len(stored) == 660
    np.testing.assert_array_equal(stored.high[100:110], bars.high[100:110] + 1)
    assert store.dataset("crypto", "ETH/USDT", "1m").checksum != first.dataset.checksum  # type: ignore[union-attr]


def test_resampled_reads_match_domain_resample_with_and_without_cache(store: ParquetBarStore) -> None:
    bars = synthetic_minutes("2023-12-25", 60 * 24 * 14)
    store.write("crypto", "SYNTH", "1m", bars)
    for target in (Timeframe.M5, Timeframe.H4, Timeframe.D1, Timeframe.W1):
        expected = resample(bars, Timeframe.M1, target, CRYPTO_CALENDAR)
        assert store.read("crypto", "SYNTH", target).equals(expected)
        assert store.read("crypto", "SYNTH", target, use_cache=False).equals(expected)
    window = store.read(
        "crypto", "SYNTH", "1h", start="2024-01-02T00:00:00Z", end="2024-01-03T00:00:00Z", use_cache=False
    )
    assert len(window) == 24 and pd.Timestamp(window.ts[0], tz="UTC") == pd.Timestamp("2024-01-02", tz="UTC")
    latest = store.read("crypto", "SYNTH", "1h", limit=5)
    assert latest.ts.tolist() == expected_hours_tail(bars, 5)


def expected_hours_tail(bars: Bars, count: int) -> list[int]:
    return resample(bars, Timeframe.M1, Timeframe.H1, CRYPTO_CALENDAR).ts[-count:].tolist()


def test_cache_is_invalidated_when_base_data_changes(store: ParquetBarStore) -> None:
    bars = synthetic_minutes("2024-01-01", 240)
    store.write("crypto", "SYNTH", "1m", bars)
    before = store.read("crypto", "SYNTH", "1h")
    bumped = bars.take(slice(0, 1))
    store.write(
        "crypto",
        "SYNTH",
        "1m",
        Bars.from_columns(bumped.ts, bumped.open, bumped.high + 50, bumped.low, bumped.close, bumped.volume),
    )
    after = store.read("crypto", "SYNTH", "1h")
    assert before.high[0] < bars.high[0] + 50 == after.high[0]
    other_process = ParquetBarStore(store.root).read("crypto", "SYNTH", "1h")
    assert other_process.equals(after)


def test_forex_hourly_serves_daily_and_refuses_finer(store: ParquetBarStore, tmp_path: Path) -> None:
    ts = pd.date_range("2024-03-03 21:00", "2024-03-16 00:00", freq="1h", tz="UTC")
    ts = ts[
        (ts.tz_convert("America/New_York").day_of_week < 5) | (ts.tz_convert("America/New_York").hour >= 17)
    ]
    hourly = synthetic_minutes("2024-01-01", len(ts))
    hourly = Bars.from_columns(
        ts.as_unit("ns").asi8, hourly.open, hourly.high, hourly.low, hourly.close, hourly.volume
    )
    store.write("forex", "EURUSD", "1h", hourly)
    daily = store.read("forex", "EURUSD", "1d", start="2024-03-05", end="2024-03-09", use_cache=False)
    expected = resample(hourly, Timeframe.H1, Timeframe.D1, FOREX_CALENDAR).between(
        pd.Timestamp("2024-03-05", tz="UTC").value, pd.Timestamp("2024-03-09", tz="UTC").value
    )
    assert daily.equals(expected) and len(daily) == 4
    with pytest.raises(TimeframeNotServable):
        store.read("forex", "EURUSD", "15m")
    with pytest.raises(DatasetNotFound):
        store.read("forex", "GBPUSD", "1h")


def test_namespaces_isolate_private_datasets(store: ParquetBarStore) -> None:
    bars = synthetic_minutes("2024-01-01", 100)
    store.write("us_stocks", "MYDATA", "1m", bars, namespace="user-1", metadata={"source": "import"})
    assert store.list_symbols() == []
    assert store.list_symbols(namespace="user-1") == [("us_stocks", "MYDATA")]
    with pytest.raises(DatasetNotFound):
        store.read_base("us_stocks", "MYDATA", "1m", namespace="user-2")
    assert store.delete("us_stocks", "MYDATA", "1m", namespace="user-1")
    assert store.list_symbols(namespace="user-1") == []


def test_a_forked_child_reads_partitions_after_its_parent_did(store: ParquetBarStore) -> None:
    # Partitions are read on shared threads: a prefork worker that read in its parent (warm-up)
    # must not leave its children waiting on threads they did not inherit.
    store.write("crypto", "BTC/USDT", "1m", synthetic_minutes("2023-12-31 22:00", 6 * 60))
    assert_forked_child_agrees(
        "from packages.infra.market_data.store import ParquetBarStore",
        'ParquetBarStore(sys.argv[1]).read("crypto", "BTC/USDT", "1h", use_cache=False).close.tolist()',
        str(store.root),
        timeout_s=120,
    )
