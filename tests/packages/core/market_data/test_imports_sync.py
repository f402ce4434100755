"""Imports with a quality report, owned by their user; sync jobs on the real IO worker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from packages.core.errors import NotFound
from packages.core.market_data.service import read_bars
from packages.core.principal import Principal
from packages.infra.db.models import MarketDataSyncJob
from tests.packages.core.market_data.helpers import bars_frame, csv_bytes, get_bars, upload
from tests.packages.core.market_data.recorded_providers import recorded_chart
from tests.support.jobs import wait_for_status
from tests.support.workers import frozen_pool

TERMINAL = {"succeeded", "partial", "failed", "cancelled"}


async def wait_for_job(api: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    return await wait_for_status(api, headers, f"/market-data/sync-jobs/{job_id}", TERMINAL, interval=0.3)


async def test_import_with_planted_defects_names_each_one_and_stays_private(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    owner, stranger = await make_account(), await make_account()
    # Real EURUSD hourly bars for one trading week, written as a New York exporter would.
    real = bars_frame(
        await get_bars(
            api,
            owner.headers,
            market="forex",
            symbol="EURUSD",
            timeframe="1h",
            start="2017-11-06T00:00:00Z",
            end="2017-11-10T12:00:00Z",
        )
    )
    frame = pd.DataFrame(
        {
            "Time": real.index.tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M:%S"),
            "O": real["open"].to_numpy(),
            "H": real["high"].to_numpy(),
            "L": real["low"].to_numpy(),
            "C": real["close"].to_numpy(),
            "Vol": real["volume"].to_numpy() + 1,
        }
    ).astype({"C": object})
    gap_start = frame.loc[40, "Time"]
    frame = frame.drop(index=[40, 41, 42]).reset_index(drop=True)
    planted = {
        "zero_volume": 10,
        "high_below_low": 20,
        "close_above_high": 25,
        "outlier": 60,
        "unparseable": 70,
    }
    frame.loc[10, "Vol"] = 0
    frame.loc[20, ["H", "L"]] = frame.loc[20, ["L", "H"]].to_numpy()
    frame.loc[25, "C"] = float(frame.loc[25, "H"]) + 0.01
    frame.loc[60, ["O", "H", "L", "C"]] = frame.loc[60, ["O", "H", "L", "C"]].astype(float).to_numpy() * 1.5
    frame.loc[70, "C"] = "n/a"
    frame = pd.concat(
        [frame, frame.iloc[[30]], frame.iloc[[50]].assign(Time="2017-03-12 02:30:00")], ignore_index=True
    )
    planted |= {"duplicate": len(frame) - 2, "nonexistent": len(frame) - 1}
    frame.iloc[[80, 81]] = frame.iloc[[81, 80]].to_numpy()
    planted["non_monotonic"] = 81

    response = await upload(
        api,
        owner.headers,
        csv_bytes(frame),
        mapping={"ts": "Time", "open": "O", "high": "H", "low": "L", "close": "C", "volume": "Vol"},
        market="forex",
        symbol="MYFX",
        timeframe="1h",
        timezone="America/New_York",
        gap_policy="keep",
    )
    assert response.status_code == 201, response.text
    created = response.json()
    report = created["quality_report"]
    defects = report["defects"]
    assert set(created["defect_names"]) >= {
        "unparseable_rows",
        "nonexistent_local_time",
        "duplicate_timestamps",
        "non_monotonic",
        "zero_volume",
        "ohlc_inconsistent",
        "outlier_jump",
        "gaps",
    }

    def rows(name: str) -> set[int]:
        return {item["row"] for item in defects[name]["items"]}

    assert planted["unparseable"] in rows("unparseable_rows")
    assert rows("nonexistent_local_time") == {planted["nonexistent"]}
    assert planted["duplicate"] in rows("duplicate_timestamps")
    assert planted["non_monotonic"] in rows("non_monotonic")
    assert rows("zero_volume") == {planted["zero_volume"]}
    problems = {item["row"]: item["problems"] for item in defects["ohlc_inconsistent"]["items"]}
    assert "high<low" in problems[planted["high_below_low"]]
    assert "close outside [low, high]" in problems[planted["close_above_high"]]
    assert planted["outlier"] in rows("outlier_jump")
    gap_utc = pd.Timestamp(gap_start).tz_localize("America/New_York").tz_convert("UTC")
    assert any(pd.Timestamp(gap["start"]) == gap_utc for gap in defects["gaps"]["items"])
    assert created["dataset"]["scope"] == "private" and created["dataset"]["row_count"] == report["rows_out"]

    kept = (await api.get(f"/market-data/imports/{created['id']}", headers=owner.headers)).json()
    assert kept["quality_report"] == report and kept["status"] == "succeeded"
    listed = (await api.get("/market-data/imports", headers=owner.headers)).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    mine = (
        await api.get(
            "/market-data/bars",
            params={"market": "forex", "symbol": "MYFX", "timeframe": "1h", "limit": 5000},
            headers=owner.headers,
        )
    ).json()
    assert mine["scope"] == "private" and mine["count"] == report["rows_out"]
    # What a backtest of this user reads: the same private bars.
    owner_bars = await asyncio.to_thread(
        read_bars, Principal(uuid.UUID(owner.user_id)), "forex", "myfx", "1h", "2017-11-01", "2017-11-12"
    )
    assert [bar["close"] for bar in mine["bars"]] == owner_bars.close.tolist()
    with pytest.raises(NotFound):
        await asyncio.to_thread(read_bars, Principal(uuid.UUID(stranger.user_id)), "forex", "MYFX", "1h")

    # Another user: neither the import nor its dataset exists for them.
    assert (
        await api.get(f"/market-data/imports/{created['id']}", headers=stranger.headers)
    ).status_code == 404
    assert (await api.get("/market-data/imports", headers=stranger.headers)).json()["items"] == []
    assert (await api.get("/market-data/symbols/forex/MYFX", headers=stranger.headers)).status_code == 404
    assert (await api.get("/market-data/symbols", params={"q": "MYFX"}, headers=stranger.headers)).json()[
        "items"
    ] == []
    theirs = await api.get(
        "/market-data/bars",
        params={"market": "forex", "symbol": "MYFX", "timeframe": "1h"},
        headers=stranger.headers,
    )
    assert theirs.status_code == 404
    assert (await api.get(f"/market-data/imports/{uuid.uuid4()}", headers=owner.headers)).status_code == 404

    rejected = await upload(
        api,
        owner.headers,
        b"when,price\n2024-01-01,1\n",
        market="crypto",
        symbol="BAD",
        timeframe="1d",
        timezone="UTC",
    )
    assert rejected.status_code == 422 and "columns not found" in rejected.json()["detail"]
    record = (
        await api.get(f"/market-data/imports/{rejected.json()['import_id']}", headers=owner.headers)
    ).json()
    assert record["status"] == "rejected" and "columns not found" in record["error"]["message"]
    zone = await upload(
        api,
        owner.headers,
        csv_bytes(frame),
        market="forex",
        symbol="X",
        timeframe="1h",
        timezone="Mars/Olympus",
    )
    assert zone.status_code == 422


async def test_sync_job_fills_a_planted_gap_from_recorded_responses(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    owner, stranger = await make_account(), await make_account()
    window = {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1d"}
    shared = bars_frame(
        await get_bars(api, owner.headers, **window, start="2013-01-02T00:00:00Z", end="2013-03-01T00:00:00Z")
    )
    planted_gap = (shared.index >= "2013-02-04") & (shared.index < "2013-02-16")
    assert planted_gap.sum() == 10
    with_gap = shared.loc[~planted_gap].reset_index()
    with_gap["ts"] = with_gap["ts"].dt.strftime("%Y-%m-%d")
    imported = await upload(api, owner.headers, csv_bytes(with_gap), timezone="UTC", **window)
    assert imported.status_code == 201, imported.text
    assert imported.json()["quality_report"]["defects"]["gaps"]["missing_bars"] == 10

    range_ = {"start": "2013-01-02T00:00:00Z", "end": "2013-03-01T00:00:00Z"}
    gaps = (await api.get("/market-data/gaps", params={**window, **range_}, headers=owner.headers)).json()
    assert gaps["scope"] == "private" and gaps["missing_bars"] == 10
    assert [(g["start"][:10], g["end"][:10], g["missing_bars"]) for g in gaps["ranges"]] == [
        ("2013-02-04", "2013-02-16", 10)
    ]

    body = {**window, **range_}
    key = {"Idempotency-Key": f"fill-{uuid.uuid4()}"}
    created = await api.post("/market-data/sync-jobs", json=body, headers={**owner.headers, **key})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["chunks_total"] == 1 and job["scope"] == "private"
    again = await api.post("/market-data/sync-jobs", json=body, headers={**owner.headers, **key})
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    changed = await api.post(
        "/market-data/sync-jobs",
        json={**body, "end": "2013-02-28T00:00:00Z"},
        headers={**owner.headers, **key},
    )
    assert changed.status_code == 422
    assert changed.json()["errors"][0] == {
        "code": "idempotency_key_reused",
        "pointer": "/header/Idempotency-Key",
        "message": "use a new key for a different request",
    }

    done = await wait_for_job(api, owner.headers, job["id"])
    assert done["status"] == "succeeded", done
    assert done["rows_written"] == 10 and done["progress"] == 1.0
    assert done["chunks"][0]["status"] == "done" and done["chunks"][0]["rows_fetched"] == 10
    assert (await api.get(f"/market-data/sync-jobs/{job['id']}", headers=stranger.headers)).status_code == 404

    after = (await api.get("/market-data/gaps", params={**window, **range_}, headers=owner.headers)).json()
    assert after["missing_bars"] == 0
    filled = bars_frame(await get_bars(api, owner.headers, **window, start="2013-02-04", end="2013-02-16"))
    recorded = recorded_chart()["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    np.testing.assert_array_equal(filled["close"].to_numpy(), recorded)
    np.testing.assert_allclose(filled["close"].to_numpy(), shared.loc[planted_gap, "close"].to_numpy())
    detail = (await api.get("/market-data/symbols/us_stocks/AAPL", headers=owner.headers)).json()
    private = next(d for d in detail["datasets"] if d["scope"] == "private")
    assert private["row_count"] == len(shared) and private["source"] == "sync"


async def test_offline_sync_job_gives_a_clear_error_per_chunk(
    api: httpx.AsyncClient, api_app: Any, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    before = (await api.get("/market-data/symbols/us_stocks/MSFT", headers=account.headers)).json()
    body = {
        "market": "us_stocks",
        "symbol": "MSFT",
        "timeframe": "1d",
        "start": "2014-01-01T00:00:00Z",
        "end": "2014-03-01T00:00:00Z",
    }
    created = await api.post("/market-data/sync-jobs", json=body, headers=account.headers)
    assert created.status_code == 201, created.text
    done = await wait_for_job(api, account.headers, created.json()["id"])
    assert done["status"] == "failed" and done["rows_written"] == 0
    assert done["chunks"] and all(
        chunk["status"] == "failed" and "MARKET_DATA_NETWORK_ENABLED=false" in chunk["error"]
        for chunk in done["chunks"]
    )
    assert done["error"]["code"] == "chunks_failed"
    # The job row itself ended failed (the worker's log says so too), and the shared dataset it
    # would have filled is untouched.
    async with api_app.state.resources.session_factory() as session:
        row = await session.scalar(
            select(MarketDataSyncJob).where(MarketDataSyncJob.id == uuid.UUID(done["id"]))
        )
    assert row is not None and row.status == "failed"
    after = (await api.get("/market-data/symbols/us_stocks/MSFT", headers=account.headers)).json()
    assert after["datasets"] == before["datasets"]
    no_provider = await api.post(
        "/market-data/sync-jobs",
        json={**body, "market": "forex", "symbol": "EURUSD", "timeframe": "5m"},
        headers=account.headers,
    )
    assert no_provider.status_code == 422 and no_provider.json()["errors"][0]["code"] == "no_provider"


async def test_sync_jobs_are_listed_newest_first_and_a_queued_one_cancels_at_once(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    owner, stranger = await make_account(), await make_account()
    body = {
        "market": "us_stocks",
        "symbol": "MSFT",
        "timeframe": "1d",
        "start": "2014-01-01T00:00:00Z",
        "end": "2014-03-01T00:00:00Z",
    }
    with frozen_pool(celery_workers, "io"):
        first = (await api.post("/market-data/sync-jobs", json=body, headers=owner.headers)).json()
        second = (
            await api.post("/market-data/sync-jobs", json={**body, "symbol": "IBM"}, headers=owner.headers)
        ).json()
        assert (first["status"], second["status"]) == ("queued", "queued")
        assert first["cancel_requested"] is False
        assert (
            await api.post(f"/market-data/sync-jobs/{first['id']}/cancel", headers=stranger.headers)
        ).status_code == 404
        cancelled = await api.post(f"/market-data/sync-jobs/{first['id']}/cancel", headers=owner.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_requested"] is True
        assert cancelled.json()["message"] == "Cancelled before it started."
    # Resumed, the worker skips the cancelled job and runs the other one.
    assert (await wait_for_job(api, owner.headers, second["id"]))["status"] == "failed"  # offline
    kept = await wait_for_job(api, owner.headers, first["id"])
    assert kept["status"] == "cancelled" and kept["attempts"] == 0 and kept["rows_written"] == 0
    again = (await api.post(f"/market-data/sync-jobs/{first['id']}/cancel", headers=owner.headers)).json()
    assert again["status"] == "cancelled" and "nothing to cancel" in again["message"]

    listed = (await api.get("/market-data/sync-jobs", headers=owner.headers)).json()
    assert [job["id"] for job in listed["items"]] == [second["id"], first["id"]]
    assert listed["total"] == 2 and listed["items"][1]["status"] == "cancelled"
    assert listed["next_cursor"] is None
    head = (await api.get("/market-data/sync-jobs", params={"limit": 1}, headers=owner.headers)).json()
    assert [job["id"] for job in head["items"]] == [second["id"]] and head["next_cursor"]
    paged = (
        await api.get(
            "/market-data/sync-jobs",
            params={"limit": 1, "cursor": head["next_cursor"]},
            headers=owner.headers,
        )
    ).json()
    assert [job["id"] for job in paged["items"]] == [first["id"]] and paged["next_cursor"] is None
    # A cursor of another list (or made up) is refused with a pointer.
    foreign = await api.get(
        "/market-data/imports", params={"cursor": head["next_cursor"]}, headers=owner.headers
    )
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["pointer"] == "/query/cursor"
    assert (await api.get("/market-data/sync-jobs", headers=stranger.headers)).json()["total"] == 0
