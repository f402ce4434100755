"""Helpers shared by the backtest tests (REST and MCP)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np

from tests.support.jobs import TERMINAL, post_job, wait_for_status


def one_year_body(document: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A one-year daily backtest (2011) of the example strategy or ``document``."""
    from packages.domain.strategy.examples import get_example

    return {
        "document": document or get_example("sma_crossover_trend"),
        "start": "2011-01-01",
        "end": "2012-01-01",
        **extra,
    }


async def submit(
    api: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await post_job(api, headers, "/backtests", body, key)


async def wait_for(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    job_id: str,
    statuses: tuple[str, ...] = TERMINAL,
    within_s: float = 90.0,
    interval: float = 0.02,
) -> dict[str, Any]:
    return await wait_for_status(
        api, headers, f"/backtests/{job_id}", statuses, within_s=within_s, interval=interval
    )


def write_synthetic_minutes(settings: Any, user_id: str, symbol: str, minutes: int, seed: int = 5) -> None:
    """SYNTHETIC one-minute crypto bars (a random walk) in the user's private namespace: big enough
    that a job runs for seconds, which real packaged data (at most 5,000 bars) cannot do."""
    from packages.core.market_data.access import market_store
    from packages.domain.market_data.bars import Bars, Timeframe

    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, minutes)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = rng.uniform(0, 5e-4, minutes)
    start = np.datetime64("2022-01-03T00:00", "ns").astype(np.int64)
    bars = Bars.from_columns(
        start + np.arange(minutes, dtype=np.int64) * 60_000_000_000,
        open_,
        np.maximum(open_, close) * (1 + spread),
        np.minimum(open_, close) * (1 - spread),
        close,
        rng.uniform(1, 1000, minutes),
    )
    market_store(settings).write(
        "crypto",
        symbol,
        Timeframe.M1,
        bars,
        namespace=f"user-{user_id}",
        metadata={"source": "synthetic-test"},
    )


def minute_document(symbol: str) -> dict[str, Any]:
    from packages.domain.strategy.examples import get_example

    document = get_example("sma_crossover_trend")
    document["metadata"]["name"] = f"SMA crossover on synthetic {symbol} minutes"
    document["universe"] = {"market": "crypto", "symbols": [symbol]}
    document["timeframe"] = "1m"
    return document


async def job_row(api_app: Any, job_id: str) -> Any:
    from sqlalchemy import select

    from packages.infra.db.models import BacktestJob

    async with api_app.state.resources.session_factory() as session:
        return await session.scalar(select(BacktestJob).where(BacktestJob.id == uuid.UUID(job_id)))
