"""Helpers shared by the market-data API tests."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd


async def get_bars(api: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every bar of a query, following next_cursor page by page."""
    bars: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/market-data/bars", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        bars.extend(page["bars"])
        cursor = page["next_cursor"]
        if cursor is None:
            return bars


def bars_frame(bars: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(bars)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.set_index("ts")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


async def upload(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    *,
    mapping: dict[str, Any] | None = None,
    **fields: str,
) -> httpx.Response:
    form = dict(fields)
    if mapping is not None:
        form["mapping"] = json.dumps(mapping)
    return await api.post(
        "/market-data/imports",
        data=form,
        files={"file": ("bars.csv", data, "text/csv")},
        headers=headers,
    )


def synthetic_minutes(start: str, minutes: int, seed: int = 11) -> pd.DataFrame:
    """SYNTHETIC one-minute bars (a random walk), for resampling checks only."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, minutes)))
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = rng.uniform(0, 5e-4, minutes)
    return pd.DataFrame(
        {
            "time": pd.date_range(start, periods=minutes, freq="1min").strftime("%Y-%m-%d %H:%M:%S"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.integers(1, 1000, minutes).astype(float),
        }
    )


PACKAGED_DATASETS = 7
COLD_START_TIMEOUT_S = 240


async def wait_for_cold_start(resources: Any) -> dict[str, Any]:
    """Wait until the IO worker's cold start has filled *this* session's catalog.

    The Redis state alone is not enough: concurrent test sessions may share Redis database numbers,
    so a state (or the task itself) can come from another session; the catalog lives in this
    session's own database. A task consumed elsewhere is sent again.
    """
    from packages.core.market_data.cold_start import market_data_status
    from packages.core.market_data.tasks import ENSURE_TASK

    deadline = time.monotonic() + COLD_START_TIMEOUT_S
    finished_without_data_since: float | None = None
    while time.monotonic() < deadline:
        status = await market_data_status(resources)
        info = status.info
        if info.get("state") == "done" and info["inventory"]["datasets"] >= PACKAGED_DATASETS:
            return dict(info)
        if info.get("state") in ("done", "failed"):
            finished_without_data_since = finished_without_data_since or time.monotonic()
            if time.monotonic() - finished_without_data_since > 10:
                resources.celery.send_task(ENSURE_TASK)
                finished_without_data_since = None
        await asyncio.sleep(0.5)
    raise AssertionError(f"market-data cold start did not finish: {info}")
