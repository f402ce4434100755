"""A stress job cut into many parts over two CPU worker processes (different node names) gives the
result of one unsplit computation, and bad requests are refused before any job exists."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from packages.core.backtests.schemas import JobRequest
from packages.core.backtests.tasks import job_inputs
from packages.domain.backtest.pipeline import Backtester
from packages.domain.backtest.serialization import to_jsonable
from packages.domain.stress import methods
from packages.domain.stress.monte_carlo import MonteCarloSpec
from packages.infra.db.models import JobChild, StressJob
from tests.packages.core.stress.test_stress_api import FAST, SLOW, spx_document
from tests.support.jobs import wait_for_status


async def _rows(api_app: Any, job_id: str) -> tuple[StressJob, list[JobChild]]:
    async with api_app.state.resources.session_factory() as session:
        job = await session.scalar(select(StressJob).where(StressJob.id == uuid.UUID(job_id)))
        parts = list(
            await session.scalars(
                select(JobChild).where(JobChild.parent_id == uuid.UUID(job_id)).order_by(JobChild.position)
            )
        )
    assert job is not None
    return job, parts


@pytest.mark.slow
async def test_many_parts_on_two_workers_equal_one_unsplit_run(
    api: httpx.AsyncClient,
    api_app: Any,
    make_account: Any,
    settings: Any,
    celery_workers: dict[str, str],
    second_cpu_worker: str,
    market_data_ready: Any,
) -> None:
    account = await make_account()
    body = {
        "document": spx_document(),
        "start": "2002-01-01",
        "end": "2014-01-01",
        "trials": 1000,
        "seed": 21,
    }
    created = await api.post("/stress-tests/monte-carlo", json=body, headers=account.headers)
    assert created.status_code == 201, created.text
    done = await wait_for_status(
        api, account.headers, f"/stress-tests/{created.json()['id']}", within_s=120, interval=0.2
    )
    assert done["status"] == "succeeded", done["error"]
    job, parts = await _rows(api_app, done["id"])
    assert len(parts) == 20  # 1000 trials, 50 per part (conftest)
    assert {p.worker.rsplit(":", 1)[0] for p in parts} == {celery_workers["cpu"], second_cpu_worker}

    # The same seeded computation unsplit, in this process, from the bars read the same way.
    run = JobRequest.model_validate(job.request["run"])
    inputs = job_inputs(settings, job.user_id, run)
    context = methods.StressContext(
        Backtester(inputs.strategy, inputs.bars, inputs.assumptions), inputs.first_row, inputs.bars.n_bars
    )
    spec = MonteCarloSpec(method="block_bootstrap", trials=1000, seed=21)
    [whole] = methods.monte_carlo_plan(context, spec, chunk_size=1000)
    merged = methods.monte_carlo_merge(
        context, spec, whole["block_length"], [methods.monte_carlo_part(context, spec, whole)]
    )
    assert job.summary == to_jsonable({**merged["summary"], "description": merged["description"]})
    assert job.items == to_jsonable(merged["items"])


@pytest.mark.parametrize(
    ("method", "extra", "pointer", "words"),
    [
        ("monte-carlo", {"trials": 30_000}, "/trials", "STRESS_MAX_TRIALS"),
        ("monte-carlo", {"method": "iid_bootstrap", "block_length": 4}, "", "block_length"),
        (
            "sensitivity",
            {"parameters": ["/factors/7/params/period"]},
            "/parameters/0",
            "get_tunable_parameters",
        ),
        ("sensitivity", {"pairs": [[FAST, "/nope"]]}, "/pairs/0/1", "not a tunable"),
        (
            "optimisation",
            {
                "dimensions": [
                    {"pointer": FAST, "low": 2, "high": 200, "step": 1},
                    {"pointer": SLOW, "low": 2, "high": 300, "step": 1},
                ]
            },
            "/budget",
            "grid_points",
        ),
        (
            "optimisation",
            {"dimensions": [{"pointer": FAST, "low": 0, "high": 10}]},
            "/dimensions/0/low",
            "keep low and high inside",
        ),
        (
            "optimisation",
            {"dimensions": [{"pointer": FAST, "low": 5, "high": 10}], "budget": 5000},
            "/budget",
            "STRESS_MAX_POINTS",
        ),
        (
            "walk-forward",
            {"folds": 50, "optimisation": {"dimensions": [{"pointer": FAST, "low": 5, "high": 10}]}},
            "/folds",
            "STRESS_MAX_FOLDS",
        ),
        (
            "walk-forward",
            {
                "folds": 10,
                "start": "2011-06-01",
                "optimisation": {"dimensions": [{"pointer": FAST, "low": 5, "high": 10}]},
            },
            "/folds",
            "range has",
        ),
        (
            "walk-forward",
            {"optimisation": {"dimensions": [{"pointer": "/nope", "low": 5, "high": 10}]}},
            "/optimisation/dimensions/0/pointer",
            "not a tunable",
        ),
        ("crisis", {"windows": ["moon_landing_1969"]}, "/windows/0", "crisis-windows"),
        ("crisis", {"start": "2008-01-01"}, "/start", "own ranges"),
    ],
)
async def test_bad_requests_are_refused_with_a_pointer_and_store_nothing(
    api: httpx.AsyncClient,
    api_app: Any,
    make_account: Any,
    market_data_ready: Any,
    method: str,
    extra: dict[str, Any],
    pointer: str,
    words: str,
) -> None:
    account = await make_account()
    base: dict[str, Any] = {"document": spx_document()}
    if method != "crisis":
        base |= {"start": "2010-01-01", "end": "2012-01-01"}
    response = await api.post(f"/stress-tests/{method}", json={**base, **extra}, headers=account.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["pointer"] == pointer, problem
    assert words in response.text
    listed = await api.get("/stress-tests", headers=account.headers)
    assert listed.json()["items"] == []
