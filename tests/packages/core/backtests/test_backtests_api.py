"""A backtest through the REST API on the real CPU worker, every result view, and its latency."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import pytest

from packages.core.backtests.schemas import ANALYSIS_VIEWS
from packages.core.market_data.access import market_store
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.examples import get_example
from packages.domain.strategy.vocabulary import DSL_VERSION
from tests.packages.core.backtests.helpers import one_year_body, submit, wait_for


def _store_bars(settings: Any, symbol: str, start: str, end: str) -> Any:
    return market_store(settings).read("us_stocks", symbol, "1d", start=start, end=end)


def _time(text: str) -> np.int64:
    return np.datetime64(text.rstrip("Z"), "ns").astype(np.int64)


async def test_rest_backtest_completes_on_the_cpu_worker_and_every_view_renders(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
    settings: Any,
) -> None:
    account = await make_account()
    document = get_example("sma_crossover_trend")
    saved = await api.post(
        "/strategies", json={"document": document, "confirm": True}, headers=account.headers
    )
    assert saved.status_code == 201, saved.text
    strategy_id = saved.json()["id"]

    body = {"strategy_id": strategy_id, "start": "2011-01-01", "end": "2012-01-01", "benchmark": "SPX"}
    created = await submit(api, account.headers, body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["strategy_version"] == 1
    assert job["assumptions"]["fee_bps"] == 10.0 and job["assumptions"]["slippage_bps"] == 5.0
    done = await wait_for(api, account.headers, job["id"])
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["progress"] == 1.0

    summary = done["summary"]
    provenance = summary["provenance"]
    assert provenance["dsl_version"] == DSL_VERSION and provenance["dsl_hash"] == document_hash(document)
    assert provenance["data_hash"].startswith("xxh3_128:") and provenance["order_hash"].startswith(
        "xxh3_128:"
    )
    assert summary["bars"] == 252 and summary["symbols"] == ["AAPL"]
    assert summary["start"] == "2011-01-03T00:00:00Z" and summary["end"] == "2011-12-30T00:00:00Z"
    metrics = done["metrics"]
    assert len(metrics) >= 30 and summary["trades"] == metrics["trades"] > 0
    # The benchmark is SPX bought and held over the range, read independently from the store.
    spx = _store_bars(settings, "SPX", "2011-01-01", "2012-01-01")
    key = summary["key_metrics"]
    assert key["benchmark_symbol"] == "SPX"
    assert key["benchmark_return"] == pytest.approx(spx.close[-1] / spx.close[0] - 1, rel=1e-9)
    # The full metrics say the same about the benchmark as the summary does.
    assert metrics["benchmark_symbol"] == "SPX"
    for name in ("benchmark_return", "alpha", "beta"):
        assert metrics[name] == key[name], name

    # Trades: paginated, entries fill at the next bar's open plus 5 bp slippage (the defaults).
    first_page = (await api.get(f"/backtests/{job['id']}/trades?limit=2", headers=account.headers)).json()
    assert first_page["total"] == summary["trades"] and len(first_page["items"]) == min(2, summary["trades"])
    rest = (
        await api.get(f"/backtests/{job['id']}/trades?offset=2&limit=500", headers=account.headers)
    ).json()
    trades = first_page["items"] + rest["items"]
    assert [t["number"] for t in trades] == list(range(summary["trades"]))
    aapl = _store_bars(settings, "AAPL", "2010-01-01", "2012-01-01")
    for trade in trades:
        row = int(np.searchsorted(aapl.ts, _time(trade["entry_time"])))
        assert aapl.ts[row - 1] == _time(trade["signal_time"])
        assert trade["entry_price"] == pytest.approx(aapl.open[row] * 1.0005, rel=1e-12)
    assert sum(t["pnl"] for t in trades) == pytest.approx(metrics["net_profit"], rel=1e-9)
    # Units: returns and excursions are fractions (0.0123 = 1.23%) like the metrics, none is a percent.
    assert not any(name.endswith("_pct") for name in [*trades[0], *metrics, *summary["key_metrics"]])
    for trade in trades:
        row, exit_row = (
            int(np.searchsorted(aapl.ts, _time(trade[f"{end}_time"]))) for end in ("entry", "exit")
        )
        price = trade["entry_price"]
        assert trade["trade_return"] == pytest.approx(trade["pnl"] / (trade["quantity"] * price), rel=1e-12)
        # Long trades: the excursions lie within the bars held, measured from the entry price.
        assert aapl.low[row : exit_row + 1].min() / price - 1 <= trade["mae"] <= 0.0 <= trade["mfe"]
        assert trade["mfe"] <= aapl.high[row : exit_row + 1].max() / price - 1
    closed = [t for t in trades if not t["is_open"]]
    assert metrics["avg_trade_return"] == pytest.approx(statistics.fmean(t["trade_return"] for t in closed))
    assert metrics["best_trade_return"] == pytest.approx(max(t["trade_return"] for t in closed))
    assert metrics["avg_mae"] == pytest.approx(statistics.fmean(t["mae"] for t in closed))

    orders = (await api.get(f"/backtests/{job['id']}/orders?limit=500", headers=account.headers)).json()
    assert orders["total"] == 2 * summary["trades"]  # every trade closed, at the latest at the end
    assert {o["side"] for o in orders["items"]} == {"buy", "sell"}

    equity = (await api.get(f"/backtests/{job['id']}/equity", headers=account.headers)).json()
    assert equity["initial_cash"] == 100_000.0 and len(equity["equity"]["value"]) == equity["points"] == 252
    assert equity["equity"]["value"][-1] == pytest.approx(metrics["final_equity"])
    assert max(equity["equity"]["value"]) == pytest.approx(metrics["peak_equity"])
    assert min(equity["drawdown"]["value"]) == pytest.approx(-abs(metrics["max_drawdown"]))

    for view in ANALYSIS_VIEWS:
        response = await api.get(f"/backtests/{job['id']}/analysis/{view}", headers=account.headers)
        assert response.status_code == 200, (view, response.text)
        assert response.json()["view"] == view and response.json()["data"] is not None
    monthly = (
        await api.get(f"/backtests/{job['id']}/analysis/monthly_returns", headers=account.headers)
    ).json()
    months = monthly["data"]["months"]
    assert len(months) == 12
    assert np.prod([1 + m["return"] for m in months]) - 1 == pytest.approx(metrics["total_return"], rel=1e-9)
    underwater = (
        await api.get(f"/backtests/{job['id']}/analysis/underwater", headers=account.headers)
    ).json()
    assert underwater["data"]["time"][0] == "2011-01-03T00:00:00Z"
    bad_view = await api.get(f"/backtests/{job['id']}/analysis/horoscope", headers=account.headers)
    assert bad_view.status_code == 422

    # Snapshot: bars around trade 0 with the SMAs, recomputed here from the stored closes.
    snapshot = (
        await api.get(
            f"/backtests/{job['id']}/trades/0/snapshot?bars_before=5&bars_after=3", headers=account.headers
        )
    ).json()
    assert snapshot["trade"]["number"] == 0
    marks = {mark: bar["time"] for bar in snapshot["bars"] for mark in bar["marks"]}
    assert marks["entry"] == trades[0]["entry_time"] and marks["entry_signal"] == trades[0]["signal_time"]
    assert marks["exit"] == trades[0]["exit_time"]
    for bar in snapshot["bars"]:
        row = int(np.searchsorted(aapl.ts, _time(bar["time"])))
        assert bar["close"] == aapl.close[row]
        assert bar["factors"]["sma_fast"] == pytest.approx(aapl.close[row - 9 : row + 1].mean(), rel=1e-12)
        assert bar["factors"]["sma_slow"] == pytest.approx(aapl.close[row - 29 : row + 1].mean(), rel=1e-12)
    leaves = {leaf["pointer"]: leaf for leaf in snapshot["leaves"]}
    assert leaves["/trade/long/entry/condition"]["at_entry_signal"] is True
    assert leaves["/trade/long/exits/0/condition"]["at_exit_signal"] is (
        trades[0]["exit_reason"] == "fast_below_slow"
    )
    missing = await api.get(
        f"/backtests/{job['id']}/trades/{summary['trades']}/snapshot", headers=account.headers
    )
    assert missing.status_code == 404

    listed = (await api.get("/backtests", headers=account.headers)).json()
    assert [item["id"] for item in listed["items"]] == [job["id"]]
    assert listed["items"][0]["total_return"] == pytest.approx(metrics["total_return"])


async def test_results_are_not_readable_before_success_and_lists_page_by_cursor(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    account = await make_account()
    ids = []
    for _ in range(3):
        response = await submit(api, account.headers, one_year_body())
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    page = (await api.get("/backtests?limit=2", headers=account.headers)).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2] and page["next_cursor"]
    tail = (await api.get(f"/backtests?limit=2&cursor={page['next_cursor']}", headers=account.headers)).json()
    assert [item["id"] for item in tail["items"]] == [ids[0]] and tail["next_cursor"] is None
    bad_cursor = await api.get("/backtests?cursor=bm90LWEtY3Vyc29y", headers=account.headers)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["errors"][0]["pointer"] == "/query/cursor"
    for job_id in ids:
        await wait_for(api, account.headers, job_id)
    succeeded = (await api.get("/backtests?status=succeeded", headers=account.headers)).json()
    assert len(succeeded["items"]) == 3


async def test_another_users_backtest_is_not_found_anywhere(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    owner, stranger = await make_account(), await make_account()
    job = (await submit(api, owner.headers, one_year_body())).json()
    await wait_for(api, owner.headers, job["id"])
    for path in (
        "",
        "/equity",
        "/trades",
        "/orders",
        "/analysis/monthly_returns",
        "/trades/0/snapshot",
    ):
        response = await api.get(f"/backtests/{job['id']}{path}", headers=stranger.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    cancel = await api.post(f"/backtests/{job['id']}/cancel", headers=stranger.headers)
    assert cancel.status_code == 404
    assert (await api.get("/backtests", headers=stranger.headers)).json()["items"] == []
    # Nor can a stranger backtest the owner's saved strategy.
    saved = await api.post(
        "/strategies", json={"document": get_example("rsi_mean_reversion")}, headers=owner.headers
    )
    borrowed = await submit(api, stranger.headers, {"strategy_id": saved.json()["id"]})
    assert borrowed.status_code == 422 and borrowed.json()["errors"][0]["pointer"] == "/strategy_id"
    assert (await api.get(f"/backtests/{uuid.uuid4()}", headers=owner.headers)).status_code == 404


async def test_one_year_daily_backtest_latency_from_post_to_result(
    api: httpx.AsyncClient,
    make_account: Any,
    celery_workers: dict[str, str],
    market_data_ready: dict[str, Any],
) -> None:
    """Measured, not asserted: POST -> succeeded (polling every 10 ms) for a one-year daily backtest."""
    account = await make_account()
    latencies, posts, waits, runs = [], [], [], []
    for _ in range(6):
        started = time.perf_counter()
        response = await submit(api, account.headers, one_year_body())
        posts.append(time.perf_counter() - started)
        job = await wait_for(api, account.headers, response.json()["id"], interval=0.01)
        latencies.append(time.perf_counter() - started)
        assert job["status"] == "succeeded"
        created, claimed, finished = (
            datetime.fromisoformat(job[name]) for name in ("created_at", "started_at", "finished_at")
        )
        waits.append((claimed - created).total_seconds())
        runs.append((finished - claimed).total_seconds())

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms"

    print(
        f"\nLATENCY one-year daily backtest POST->succeeded: first {latencies[0] * 1000:.0f} ms, then "
        f"median {ms(latencies[1:])} (min {min(latencies[1:]) * 1000:.0f}, max {max(latencies[1:]) * 1000:.0f}) "
        f"over {len(latencies) - 1} runs; medians: POST {ms(posts)}, row created->claimed {ms(waits)}, "
        f"claimed->finished {ms(runs)}"
    )
