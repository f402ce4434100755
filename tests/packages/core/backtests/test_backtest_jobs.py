"""Job mechanics on the real workers: idempotency, caps, cancellation, determinism, a killed worker,
and the stale-job sweep."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from packages.core.backtests.schemas import JobRequest
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.strategy.examples import get_example
from tests.packages.core.backtests.helpers import (
    TERMINAL,
    job_row,
    minute_document,
    one_year_body,
    submit,
    wait_for,
    write_synthetic_minutes,
)
from tests.support.workers import frozen_pool, pool_pids

# One million SYNTHETIC minute bars: a job that runs for seconds, long enough to cancel or kill.
BIG_JOB_MINUTES = 1_000_000


async def test_the_same_key_and_body_give_the_same_job_and_another_body_is_refused(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    account = await make_account()
    body = one_year_body()
    first = await submit(api, account.headers, body, key="run-2011")
    again = await submit(api, account.headers, body, key="run-2011")
    assert first.status_code == 201 and again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    changed = await submit(api, account.headers, {**body, "end": "2011-07-01"}, key="run-2011")
    assert changed.status_code == 422
    problem = changed.json()
    assert problem["errors"][0]["code"] == "idempotency_key_reused"
    assert problem["backtest_id"] == first.json()["id"]
    await wait_for(api, account.headers, first.json()["id"])
    replay = await submit(api, account.headers, body, key="run-2011")
    assert replay.status_code == 200 and replay.json()["status"] == "succeeded"
    assert len((await api.get("/backtests", headers=account.headers)).json()["items"]) == 1
    # The key is optional: without one every POST is a new job.
    unkeyed = [await api.post("/backtests", json=body, headers=account.headers) for _ in range(2)]
    assert [r.status_code for r in unkeyed] == [201, 201]
    assert len({r.json()["id"] for r in unkeyed} | {first.json()["id"]}) == 3


async def test_requests_are_checked_with_pointers_before_a_job_exists(
    api: httpx.AsyncClient, make_account: Any, market_data_ready: dict[str, Any]
) -> None:
    account = await make_account()
    unknown = get_example("sma_crossover_trend")
    unknown["universe"]["symbols"] = ["ZZZZ"]
    with_nul = get_example("sma_crossover_trend")
    with_nul["metadata"]["name"] = "SMA\x00"
    cases = [
        (one_year_body(with_nul), "nul_character", "/document/metadata/name"),
        (one_year_body(unknown), "no_market_data", "/document/universe/symbols/0"),
        (one_year_body(start="1990-01-01", end="1991-01-01"), "empty_range", "/start"),
        (one_year_body(benchmark="NOPE"), "no_market_data", "/benchmark"),
        ({**one_year_body(), "document": {"dsl_version": "1.0.0"}}, None, "/document"),
        ({**one_year_body(), "strategy_id": str(uuid.uuid4())}, None, None),
        (one_year_body(start="2012-01-01", end="2011-01-01"), None, None),
        (one_year_body(assumptions={"fee_bps": 1e9}), None, "/assumptions"),
    ]
    for body, code, pointer in cases:
        response = await submit(api, account.headers, body)
        assert response.status_code == 422, (body, response.text)
        errors = response.json().get("errors") or []
        if code is not None:
            assert errors[0]["code"] == code, response.text
        if pointer is not None:
            assert any(e["pointer"].startswith(pointer) for e in errors), response.text
    assert (await api.get("/backtests", headers=account.headers)).json()["items"] == []


async def test_bars_per_job_cap_answers_422_with_a_pointer(
    api: httpx.AsyncClient,
    make_account: Any,
    market_data_ready: dict[str, Any],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await make_account()
    monkeypatch.setattr(
        settings, "backtests", settings.backtests.model_copy(update={"max_bars_per_job": 200})
    )
    too_long = await submit(api, account.headers, one_year_body())  # ~252 bars
    assert too_long.status_code == 422, too_long.text
    error = too_long.json()["errors"][0]
    assert error["code"] == "too_many_bars" and error["pointer"] == "/start"
    half_year = await submit(api, account.headers, one_year_body(end="2011-07-01"))
    assert half_year.status_code == 201, half_year.text


async def test_concurrent_jobs_cap_answers_429_and_a_queued_job_cancels_at_once(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
    settings: Any,
    api_app: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await make_account()
    monkeypatch.setattr(
        settings, "backtests", settings.backtests.model_copy(update={"max_active_jobs_per_user": 2})
    )
    with frozen_pool(celery_workers, "cpu"):
        queued = [(await submit(api, account.headers, one_year_body())).json() for _ in range(2)]
        assert [job["status"] for job in queued] == ["queued", "queued"]
        refused = await submit(api, account.headers, one_year_body())
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == str(settings.backtests.retry_after_s)
        assert refused.json()["code"] == "rate_limited"
        cancelled = await api.post(f"/backtests/{queued[0]['id']}/cancel", headers=account.headers)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancel_requested"] is True
        admitted = await submit(api, account.headers, one_year_body())
        assert admitted.status_code == 201, admitted.text
    # Resumed, the worker skips the cancelled job and runs the others.
    for job_id in (queued[1]["id"], admitted.json()["id"]):
        assert (await wait_for(api, account.headers, job_id))["status"] == "succeeded"
    row = await job_row(api_app, queued[0]["id"])
    assert row.status == "cancelled" and row.attempts == 0 and row.summary is None
    assert row.progress_message == "cancelled before start"
    again = (await api.post(f"/backtests/{queued[0]['id']}/cancel", headers=account.headers)).json()
    assert again["status"] == "cancelled" and "nothing to cancel" in again["message"]
    result = await api.get(f"/backtests/{queued[0]['id']}/equity", headers=account.headers)
    assert result.status_code == 409


async def test_a_running_job_stops_when_cancelled(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
    settings: Any,
    api_app: Any,
) -> None:
    account = await make_account()
    await asyncio.to_thread(write_synthetic_minutes, settings, account.user_id, "SYNCAN", BIG_JOB_MINUTES)
    job = (await submit(api, account.headers, {"document": minute_document("SYNCAN")})).json()
    assert job["status"] == "queued", job
    running = await wait_for(api, account.headers, job["id"], ("running", *TERMINAL), interval=0.005)
    assert running["status"] == "running", running
    response = (await api.post(f"/backtests/{job['id']}/cancel", headers=account.headers)).json()
    assert response["cancel_requested"] is True and response["status"] == "running"
    finished = await wait_for(api, account.headers, job["id"])
    assert finished["status"] == "cancelled", finished
    row = await job_row(api_app, job["id"])
    assert row.summary is None and row.artifacts is None and row.progress_message == "cancelled"


async def test_identical_jobs_give_the_same_result_hash(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    account = await make_account()
    body = one_year_body(get_example("index_macd_long_short"), start="2005-01-01", end="2009-01-01")
    ids = [(await submit(api, account.headers, body)).json()["id"] for _ in range(2)]
    jobs = [await wait_for(api, account.headers, job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"]
    assert jobs[0]["result_hash"] == jobs[1]["result_hash"] and jobs[0]["result_hash"]
    assert jobs[0]["metrics"] == jobs[1]["metrics"]
    assert jobs[0]["summary"]["provenance"] == jobs[1]["summary"]["provenance"]


async def test_a_job_killed_with_its_worker_is_picked_up_again_and_finishes_once(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
    settings: Any,
    api_app: Any,
) -> None:
    account = await make_account()
    await asyncio.to_thread(write_synthetic_minutes, settings, account.user_id, "SYNKILL", BIG_JOB_MINUTES)
    job = (await submit(api, account.headers, {"document": minute_document("SYNKILL")}, key="kill")).json()
    running = await wait_for(api, account.headers, job["id"], ("running", *TERMINAL), interval=0.005)
    assert running["status"] == "running" and running["attempts"] == 1, running
    row = await job_row(api_app, job["id"])
    pid = int(row.worker.rsplit(":", 1)[1])
    assert pid in pool_pids(celery_workers, "cpu")
    os.kill(pid, signal.SIGKILL)

    finished = await wait_for(api, account.headers, job["id"], within_s=120)
    assert finished["status"] == "succeeded", finished
    assert finished["attempts"] == 2 and finished["result_hash"]
    row = await job_row(api_app, job["id"])
    assert int(row.worker.rsplit(":", 1)[1]) != pid and row.artifacts is not None
    # One job, one result: the killed attempt left nothing behind and a replay returns the same job.
    listed = (await api.get("/backtests", headers=account.headers)).json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]
    replay = await submit(api, account.headers, {"document": minute_document("SYNKILL")}, key="kill")
    assert replay.status_code == 200 and replay.json()["result_hash"] == finished["result_hash"]
    assert finished["summary"]["bars"] == BIG_JOB_MINUTES


async def test_the_stale_sweep_fails_a_job_whose_attempts_are_exhausted(
    api: httpx.AsyncClient, make_account: Any, celery_workers: dict[str, str], api_app: Any, settings: Any
) -> None:
    from packages.infra.db.models import BacktestJob
    from packages.infra.queue.celery_app import celery_app

    account = await make_account()
    document = get_example("sma_crossover_trend")
    request = JobRequest(
        document=document,
        document_hash="0" * 64,
        market="us_stocks",
        symbols=["AAPL"],
        timeframe="1d",
        start=None,
        end=None,
        assumptions=ExecutionAssumptions(),
        benchmark=None,
        estimated_bars=252,
    )
    # A job whose every attempt started and then fell silent an hour ago (its workers died).
    stale_id = uuid.uuid4()
    async with api_app.state.resources.unit_of_work() as uow:
        stale = BacktestJob(
            id=stale_id,
            user_id=uuid.UUID(account.user_id),
            status="running",
            request=request.model_dump(mode="json"),
            attempts=settings.celery.job_max_attempts,
            worker="gone:1",
            started_at=datetime.now(UTC) - timedelta(hours=1),
            heartbeat_at=datetime.now(UTC) - timedelta(hours=1),
        )
        uow.session.add(stale)
    # The task beat schedules, run by the real IO worker.
    counts = await asyncio.to_thread(celery_app.send_task("maintenance.reap_stale_jobs").get, timeout=30)
    assert counts["failed"] >= 1
    failed = (await api.get(f"/backtests/{stale_id}", headers=account.headers)).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "worker_lost"
    assert str(settings.celery.job_max_attempts) in failed["error"]["message"]
