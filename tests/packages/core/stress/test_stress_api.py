"""Every stress method end to end over REST on the real CPU workers, owner-scoped, with clear 4xx
answers for bad input and caps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from packages.domain.strategy.examples import get_example
from tests.support.jobs import wait_for_status

FAST, SLOW = "/factors/0/params/period", "/factors/1/params/period"


def spx_document() -> dict[str, Any]:
    """The SMA crossover example on the S&P 500 index, real daily data 1999-2018 (arch)."""
    document = get_example("sma_crossover_trend")
    document["universe"] = {"market": "us_stocks", "symbols": ["SPX"]}
    return document


async def _finished(api: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    return await wait_for_status(api, headers, f"/stress-tests/{job_id}", within_s=120, interval=0.2)


async def _run(
    api: httpx.AsyncClient, headers: dict[str, str], method: str, body: dict[str, Any]
) -> dict[str, Any]:
    created = await api.post(f"/stress-tests/{method}", json=body, headers=headers)
    assert created.status_code == 201, created.text
    job = await _finished(api, headers, created.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["description"] and job["summary"] and job["items"] is not None
    return job


@pytest.mark.slow
async def test_every_method_runs_end_to_end(
    api: httpx.AsyncClient, make_account: Any, celery_workers: dict[str, str], market_data_ready: Any
) -> None:
    account = await make_account()
    h = account.headers
    base = {"document": spx_document(), "start": "2003-01-01", "end": "2013-01-01"}

    crisis = await _run(api, h, "crisis", {"document": spx_document()})
    windows = {
        w["window_id"]: w
        for w in (await api.get(f"/stress-tests/{crisis['id']}/items", headers=h)).json()["items"]
    }
    assert windows["financial_crisis_2008"]["coverage"] == "full"
    assert "crypto_winter_2018" not in windows  # crypto windows do not apply to US stocks
    assert windows["covid_crash_2020"]["coverage"] == "no_data"  # the packaged index data ends in 2018
    assert "2020" in windows["covid_crash_2020"]["needed_coverage"]["start"]

    monte = await _run(api, h, "monte-carlo", {**base, "trials": 600, "seed": 7})
    assert monte["summary"]["trials"] == 600 and len(monte["summary"]["fan_chart"]["p50"]) > 10
    again = await _run(api, h, "monte-carlo", {**base, "trials": 600, "seed": 7})
    assert again["summary"] == monte["summary"]  # seeded: reproducible

    scan = await _run(api, h, "sensitivity", {**base, "steps": 2, "pairs": [[FAST, SLOW]]})
    assert {p["pointer"] for p in scan["summary"]["parameters"]} >= {FAST, SLOW}

    search = {
        "dimensions": [
            {"pointer": FAST, "low": 5, "high": 25, "step": 5},
            {"pointer": SLOW, "low": 40, "high": 100, "step": 20},
        ]
    }
    optimised = await _run(
        api,
        h,
        "optimisation",
        {**base, **search, "objectives": [{"metric": "sharpe"}, {"metric": "max_drawdown"}]},
    )
    pareto = (await api.get(f"/stress-tests/{optimised['id']}/pareto", headers=h)).json()
    assert pareto["front"] and all(w["patch"] for w in pareto["front"])

    folds = await _run(api, h, "walk-forward", {**base, "folds": 3, "optimisation": search})
    assert folds["summary"]["folds"] == 3 and "stitched_out_of_sample" in folds["summary"]

    listed = (await api.get("/stress-tests?limit=3", headers=h)).json()
    assert len(listed["items"]) == 3 and listed["next_cursor"]
    rest = (await api.get(f"/stress-tests?limit=10&cursor={listed['next_cursor']}", headers=h)).json()
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None

    stranger = await make_account()
    for path in (
        f"/stress-tests/{monte['id']}",
        f"/stress-tests/{monte['id']}/items",
        f"/stress-tests/{optimised['id']}/pareto",
    ):
        assert (await api.get(path, headers=stranger.headers)).status_code == 404
    assert (
        await api.post(f"/stress-tests/{monte['id']}/cancel", headers=stranger.headers)
    ).status_code == 404
