"""The backtest job's computation in-process (``job_inputs`` then ``compute``), on the real data the
session's cold start stored, and the problems it answers when the pipeline refuses its inputs."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from packages.core.backtests.schemas import JobRequest
from packages.core.backtests.tasks import compile_document, compute, job_inputs, store
from packages.core.errors import ValidationFailed
from packages.core.jobs.runner import JobCancelled, JobControl
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.examples import get_example


def _request(slug: str, start: str | None, end: str | None, benchmark: str | None = None) -> JobRequest:
    document = get_example(slug)

    def moment(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)

    return JobRequest(
        document=document,
        document_hash=document_hash(document),
        market=document["universe"]["market"],
        symbols=document["universe"]["symbols"],
        timeframe=document["timeframe"],
        start=moment(start),
        end=moment(end),
        assumptions=ExecutionAssumptions(),
        benchmark=benchmark,
        estimated_bars=0,
    )


def test_a_job_reads_warm_up_history_before_its_range_and_simulates_the_range(
    settings: Any, market_data_ready: dict[str, Any]
) -> None:
    request = _request("sma_crossover_trend", "2011-01-01", "2012-01-01", benchmark="SPX")
    inputs = job_inputs(settings, uuid.uuid4(), request)
    assert inputs.first_row == inputs.strategy.warmup_bars == 30  # history read before the range
    assert inputs.benchmark is not None and inputs.benchmark.close.shape == (inputs.bars.n_bars,)
    packed = compute(inputs, JobControl())
    assert packed.summary["range"]["start"] == "2011-01-03T00:00:00Z"
    assert packed.summary["range"]["end"] == "2011-12-30T00:00:00Z"
    assert packed.summary["counts"]["bars"] == 252
    assert packed.summary["benchmark"]["symbol"] == "SPX"
    assert packed.summary["benchmark"]["missing_bars"] == 0
    assert not any("warm-up" in w for w in packed.summary["warnings"])
    assert store(packed) == {
        "summary": packed.summary,
        "artifacts": packed.artifacts,
        "result_hash": packed.result_hash,
    }


def test_too_many_bars_fail_the_run_with_a_pointer(settings: Any, market_data_ready: dict[str, Any]) -> None:
    inputs = job_inputs(settings, uuid.uuid4(), _request("sma_crossover_trend", "2011-01-01", "2012-01-01"))
    with pytest.raises(ValidationFailed) as caught:
        compute(dataclasses.replace(inputs, max_cells=100), JobControl())
    assert caught.value.errors[0].code == "too_many_bars" and caught.value.errors[0].pointer == "/start"
    assert "at most 100" in caught.value.detail


def test_a_cancelled_job_stops_before_it_simulates(settings: Any, market_data_ready: dict[str, Any]) -> None:
    inputs = job_inputs(settings, uuid.uuid4(), _request("sma_crossover_trend", None, None))
    control = JobControl()
    control.cancelled.set()
    with pytest.raises(JobCancelled):
        compute(inputs, control)


def test_an_invalid_document_points_into_the_request() -> None:
    document = get_example("sma_crossover_trend")
    document["factors"][1]["params"]["period"] = -3
    with pytest.raises(ValidationFailed) as caught:
        compile_document(document)
    assert caught.value.errors and all(
        e.pointer.startswith("/document/factors/1") for e in caught.value.errors
    )
