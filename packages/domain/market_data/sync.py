"""Sync planning and execution: fetch missing ranges from a provider in chunks and store them.

``plan_sync`` splits missing ranges into chunks small enough for one provider request;
``run_sync`` executes them in order. Chunks are idempotent (the store upserts by timestamp), so a
job that is re-run, or resumed with ``skip_chunk_ids``, converges to the same data. A failing chunk
is recorded with its error and the job moves on; ``ProviderUnavailable`` stops the job early, since
every later chunk would fail the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from packages.domain.market_data.bars import Bars, Market, Timeframe
from packages.domain.market_data.gaps import MissingRange
from packages.domain.market_data.timeconv import iso


class ProviderError(RuntimeError):
    """A provider request failed for a reason retrying will not fix (bad symbol, bad request...)."""


class ProviderUnavailable(ProviderError):
    """The provider cannot be reached (offline, DNS, repeated timeouts or rate limiting)."""


class BarProvider(Protocol):
    @property
    def name(self) -> str: ...

    def supports(self, market: Market, timeframe: Timeframe) -> bool: ...

    def max_bars_per_request(self, timeframe: Timeframe) -> int: ...

    def fetch_bars(self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> Bars: ...


class BarWriter(Protocol):
    def write(
        self,
        market: Market | str,
        symbol: str,
        timeframe: Timeframe | str,
        data: Bars,
        *,
        namespace: str = ...,
        metadata: Mapping[str, Any] | None = ...,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class SyncChunk:
    chunk_id: int
    start_ns: int
    end_ns: int

    def to_dict(self) -> dict[str, Any]:
        return {"chunk_id": self.chunk_id, "start": iso(self.start_ns), "end": iso(self.end_ns)}


@dataclass(frozen=True, slots=True)
class SyncPlan:
    market: Market
    symbol: str
    timeframe: Timeframe
    provider: str
    chunks: tuple[SyncChunk, ...]
    namespace: str = "public"

    def to_dict(self) -> dict[str, Any]:
        return {
            "market": self.market.value,
            "symbol": self.symbol,
            "timeframe": self.timeframe.value,
            "provider": self.provider,
            "namespace": self.namespace,
            "chunks": [chunk.to_dict() for chunk in self.chunks],
        }


@dataclass(frozen=True, slots=True)
class ChunkResult:
    chunk_id: int
    status: str  # "done" | "failed" | "skipped"
    rows_fetched: int = 0
    rows_written: int = 0
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "status": self.status,
            "rows_fetched": self.rows_fetched,
            "rows_written": self.rows_written,
            "error": self.error,
            "seconds": round(self.seconds, 4),
        }


@dataclass(slots=True)
class SyncReport:
    plan: SyncPlan
    results: list[ChunkResult] = field(default_factory=list)
    aborted: str | None = None

    @property
    def rows_written(self) -> int:
        return sum(result.rows_written for result in self.results)

    @property
    def failed_chunks(self) -> list[ChunkResult]:
        return [result for result in self.results if result.status == "failed"]

    @property
    def status(self) -> str:
        if self.aborted is not None:
            return "aborted"
        return "partial" if self.failed_chunks else "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "aborted": self.aborted,
            "rows_written": self.rows_written,
            "plan": self.plan.to_dict(),
            "chunks": [result.to_dict() for result in self.results],
        }


SyncProgress = Callable[[int, int, ChunkResult], None]


def plan_sync(
    missing: list[MissingRange],
    *,
    market: Market,
    symbol: str,
    timeframe: Timeframe,
    provider: str,
    max_bars_per_chunk: int,
    namespace: str = "public",
) -> SyncPlan:
    """Split each missing range into chunks spanning at most ``max_bars_per_chunk`` bar lengths."""
    if max_bars_per_chunk < 1:
        raise ValueError("max_bars_per_chunk must be positive")
    span = max_bars_per_chunk * timeframe.nanos
    chunks: list[SyncChunk] = []
    for gap in missing:
        cursor = gap.start_ns
        while cursor < gap.end_ns:
            chunk_end = min(cursor + span, gap.end_ns)
            chunks.append(SyncChunk(chunk_id=len(chunks), start_ns=cursor, end_ns=chunk_end))
            cursor = chunk_end
    return SyncPlan(
        market=market,
        symbol=symbol,
        timeframe=timeframe,
        provider=provider,
        chunks=tuple(chunks),
        namespace=namespace,
    )


def run_sync(
    plan: SyncPlan,
    provider: BarProvider,
    store: BarWriter,
    progress: SyncProgress | None = None,
    *,
    skip_chunk_ids: Collection[int] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> SyncReport:
    """Fetch and store every chunk of ``plan``; ``progress(done, total, result)`` follows each chunk."""
    report = SyncReport(plan=plan)
    total = len(plan.chunks)
    metadata = {"source": "sync", "provenance": {"provider": provider.name}}
    for done, chunk in enumerate(plan.chunks, start=1):
        started = clock()
        if chunk.chunk_id in skip_chunk_ids:
            result = ChunkResult(chunk_id=chunk.chunk_id, status="skipped")
        else:
            try:
                bars = provider.fetch_bars(plan.symbol, plan.timeframe, chunk.start_ns, chunk.end_ns)
                inside = bars.between(chunk.start_ns, chunk.end_ns)
                if len(inside):
                    store.write(
                        plan.market,
                        plan.symbol,
                        plan.timeframe,
                        inside,
                        namespace=plan.namespace,
                        metadata=metadata,
                    )
                result = ChunkResult(
                    chunk_id=chunk.chunk_id,
                    status="done",
                    rows_fetched=len(bars),
                    rows_written=len(inside),
                    seconds=clock() - started,
                )
            except ProviderUnavailable as error:
                result = ChunkResult(chunk.chunk_id, "failed", error=f"provider unavailable: {error}")
                report.results.append(result)
                report.aborted = str(error)
                if progress is not None:
                    progress(done, total, result)
                break
            except Exception as error:  # one bad chunk must not lose the rest of the job
                result = ChunkResult(
                    chunk.chunk_id,
                    "failed",
                    error=f"{type(error).__name__}: {error}",
                    seconds=clock() - started,
                )
        report.results.append(result)
        if progress is not None:
            progress(done, total, result)
    return report
