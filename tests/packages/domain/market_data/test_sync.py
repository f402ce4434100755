"""Sync planning and execution against in-memory providers and writers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from packages.domain.market_data.bars import NS_PER_HOUR, Bars, Market, Timeframe, merge_bars
from packages.domain.market_data.gaps import MissingRange, detect_missing_ranges
from packages.domain.market_data.sessions import CRYPTO_CALENDAR
from packages.domain.market_data.sync import ProviderError, ProviderUnavailable, plan_sync, run_sync
from packages.domain.market_data.timeconv import to_ns


def hourly_source(start: str, hours: int) -> Bars:
    """SYNTHETIC hourly bars (deterministic ramp) playing the remote provider's full history."""
    ts = to_ns(start) + np.arange(hours, dtype=np.int64) * NS_PER_HOUR
    close = 100 + np.arange(hours, dtype=np.float64)
    return Bars.from_columns(ts, close - 0.5, close + 1, close - 1, close, np.full(hours, 10.0))


class FakeProvider:
    name = "fake"

    def __init__(self, history: Bars, fail_chunks: set[int] | None = None, offline: bool = False) -> None:
        self.history = history
        self.calls: list[tuple[int, int]] = []
        self.fail_on_call = fail_chunks or set()
        self.offline = offline

    def supports(self, market: Market, timeframe: Timeframe) -> bool:
        return True

    def max_bars_per_request(self, timeframe: Timeframe) -> int:
        return 5

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars:
        self.calls.append((start_ns, end_ns))
        if self.offline:
            raise ProviderUnavailable("network unreachable")
        if len(self.calls) - 1 in self.fail_on_call:
            raise ProviderError("HTTP 400 bad request")
        return self.history.between(start_ns, end_ns)


class MemoryWriter:
    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.writes = 0

    def write(self, market: Any, symbol: str, timeframe: Any, data: Bars, **_: Any) -> None:
        self.writes += 1
        self.bars = merge_bars(self.bars, data)


def test_plan_splits_ranges_into_bounded_chunks() -> None:
    gap = MissingRange(start_ns=to_ns("2024-01-01"), end_ns=to_ns("2024-01-01") + 12 * NS_PER_HOUR, bars=12)
    plan = plan_sync(
        [gap],
        market=Market.CRYPTO,
        symbol="BTC/USDT",
        timeframe=Timeframe.H1,
        provider="fake",
        max_bars_per_chunk=5,
    )
    spans = [(c.end_ns - c.start_ns) // NS_PER_HOUR for c in plan.chunks]
    assert spans == [5, 5, 2]
    assert plan.chunks[0].start_ns == gap.start_ns and plan.chunks[-1].end_ns == gap.end_ns
    with pytest.raises(ValueError):
        plan_sync(
            [gap],
            market=Market.CRYPTO,
            symbol="X",
            timeframe=Timeframe.H1,
            provider="fake",
            max_bars_per_chunk=0,
        )


def test_run_sync_fills_planted_gap_and_is_idempotent() -> None:
    history = hourly_source("2024-01-01", 48)
    planted = np.r_[7:19, 30:33]
    writer = MemoryWriter(history.take(np.setdiff1d(np.arange(48), planted)))
    start, end = int(history.ts[0]), int(history.ts[-1]) + NS_PER_HOUR
    missing = detect_missing_ranges(CRYPTO_CALENDAR, Timeframe.H1, writer.bars.ts, start, end)
    plan = plan_sync(
        missing,
        market=Market.CRYPTO,
        symbol="SYNTH",
        timeframe=Timeframe.H1,
        provider="fake",
        max_bars_per_chunk=5,
    )
    progress: list[tuple[int, int]] = []
    report = run_sync(
        plan, FakeProvider(history), writer, lambda done, total, _: progress.append((done, total))
    )
    assert report.status == "succeeded"
    assert report.rows_written == len(planted)
    assert writer.bars.equals(history)
    assert progress == [(i, len(plan.chunks)) for i in range(1, len(plan.chunks) + 1)]
    again = run_sync(plan, FakeProvider(history), writer)
    assert writer.bars.equals(history) and again.rows_written == len(planted)
    assert detect_missing_ranges(CRYPTO_CALENDAR, Timeframe.H1, writer.bars.ts, start, end) == []


def test_failed_chunk_is_recorded_and_the_rest_continue() -> None:
    history = hourly_source("2024-01-01", 24)
    writer = MemoryWriter(Bars.empty())
    gap = MissingRange(int(history.ts[0]), int(history.ts[-1]) + NS_PER_HOUR, 24)
    plan = plan_sync(
        [gap],
        market=Market.CRYPTO,
        symbol="SYNTH",
        timeframe=Timeframe.H1,
        provider="fake",
        max_bars_per_chunk=6,
    )
    report = run_sync(plan, FakeProvider(history, fail_chunks={1}), writer)
    assert report.status == "partial"
    assert [r.status for r in report.results] == ["done", "failed", "done", "done"]
    assert "bad request" in (report.results[1].error or "")
    assert len(writer.bars) == 18
    resumed = run_sync(plan, FakeProvider(history), writer, skip_chunk_ids={0, 2, 3})
    assert [r.status for r in resumed.results] == ["skipped", "done", "skipped", "skipped"]
    assert writer.bars.equals(history)


def test_offline_provider_aborts_the_job() -> None:
    history = hourly_source("2024-01-01", 24)
    gap = MissingRange(int(history.ts[0]), int(history.ts[-1]) + NS_PER_HOUR, 24)
    plan = plan_sync(
        [gap],
        market=Market.CRYPTO,
        symbol="SYNTH",
        timeframe=Timeframe.H1,
        provider="fake",
        max_bars_per_chunk=6,
    )
    provider = FakeProvider(history, offline=True)
    report = run_sync(plan, provider, MemoryWriter(Bars.empty()))
    assert report.status == "aborted" and len(provider.calls) == 1
    assert report.to_dict()["chunks"][0]["error"].startswith("provider unavailable")
