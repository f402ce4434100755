"""A small real fan-out job kind for the job kit's tests; every test worker loads it (``--include``).

Its parent rows live in ``stress_jobs`` (``kind`` = KIND). The job sums a SYNTHETIC series of
integers in parts: each part sums its slice (and squares, and a histogram), sleeping in steps so it
runs long enough to be watched, cancelled or killed. Integer sums are exact, so the merged result
of any split must equal the unsplit computation bit for bit.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.fanout import FanOutJobKind, ParentLifecycle
from packages.core.jobs.repository import JobRepository, job_for_worker
from packages.core.jobs.runner import JobControl
from packages.core.jobs.submit import ActiveCap, Submission, submit_job
from packages.core.jobs.tasks import register_job_task
from packages.core.resources import Resources
from packages.infra.db.models import StressJob

KIND = "kit_sums"
TASK = "stress.kit_sums"
BINS = 16
MAX_ACTIVE = 3
RETRY_AFTER_S = 7


class SumsRequest(BaseModel):
    n: int = Field(ge=0, le=10_000_000)
    parts: int = Field(ge=1, le=64)
    seed: int = 0
    part_seconds: float = Field(default=0.0, ge=0, le=120)
    fail_part: int | None = None


@dataclass(frozen=True)
class SumsInputs:
    request: SumsRequest
    values: np.ndarray[Any, np.dtype[np.int64]]
    # How many times this process had loaded this parent's inputs when these were loaded.
    load_number: int


LOADS: Counter[uuid.UUID] = Counter()


def synthetic_values(request: SumsRequest) -> np.ndarray[Any, np.dtype[np.int64]]:
    """SYNTHETIC integers, the same for the same request."""
    return np.random.default_rng(request.seed).integers(-1000, 1000, request.n, dtype=np.int64)


def unsplit(request: SumsRequest) -> dict[str, Any]:
    """The whole computation at once, as the merged result must come out."""
    values = synthetic_values(request)
    return {
        "count": int(values.size),
        "sum": int(values.sum()),
        "sum_sq": int((values * values).sum()),
        "histogram": np.bincount(values % BINS, minlength=BINS).tolist(),
    }


async def load(resources: Resources, job_id: uuid.UUID) -> SumsInputs:
    async with resources.unit_of_work() as uow:
        job = await job_for_worker(uow.session, StressJob, job_id)
    assert job is not None
    request = SumsRequest.model_validate(job.request)
    LOADS[job_id] += 1
    return SumsInputs(request, synthetic_values(request), LOADS[job_id])


def plan(inputs: SumsInputs) -> list[dict[str, Any]]:
    bounds = np.linspace(0, inputs.request.n, inputs.request.parts + 1).astype(int)
    return [{"start": int(a), "stop": int(b)} for a, b in itertools.pairwise(bounds)]


def run_child(inputs: SumsInputs, spec: dict[str, Any], control: JobControl) -> dict[str, Any]:
    steps = 20
    for step in range(steps):
        time.sleep(inputs.request.part_seconds / steps)
        control.progress((step + 1) / steps)
        control.check_cancelled()
    if (
        inputs.request.fail_part is not None
        and spec["start"] == plan(inputs)[inputs.request.fail_part]["start"]
    ):
        raise ValueError("this part was asked to fail")
    chunk = inputs.values[spec["start"] : spec["stop"]]
    return {
        "sum": int(chunk.sum()),
        "sum_sq": int((chunk * chunk).sum()),
        "histogram": np.bincount(chunk % BINS, minlength=BINS),
        "pid": os.getpid(),
        "load_number": inputs.load_number,
    }


def merge(inputs: SumsInputs, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": int(inputs.values.size),
        "sum": sum(part["sum"] for part in parts),
        "sum_sq": sum(part["sum_sq"] for part in parts),
        "histogram": np.sum([part["histogram"] for part in parts], axis=0, dtype=np.int64).tolist()
        if parts
        else [0] * BINS,
        "loads": [[part["pid"], part["load_number"]] for part in parts],
    }


def store(result: dict[str, Any]) -> dict[str, Any]:
    return {"summary": result}


LIFECYCLE = ParentLifecycle(StressJob, kind=KIND, rows_of_kind=KIND)
SUMS_JOB = FanOutJobKind(
    name=KIND, lifecycle=LIFECYCLE, load=load, plan=plan, run_child=run_child, merge=merge, store=store
)
register_job_task(SUMS_JOB, TASK)


class SumsJobs(JobRepository[StressJob]):
    model = StressJob
    noun = "sums job"


SUBMISSION = Submission(
    task_name=TASK, plural="sums jobs", id_field="job_id", cap=ActiveCap(MAX_ACTIVE, RETRY_AFTER_S)
)


async def submit_sums(
    resources: Resources, user_id: uuid.UUID, request: SumsRequest, key: IdempotencyKey | None = None
) -> tuple[StressJob, bool]:
    """The kit's one submit path, as a feature service calls it."""

    async def build() -> StressJob:
        return StressJob(user_id=user_id, kind=KIND, status="queued", request=request.model_dump(mode="json"))

    async with resources.unit_of_work() as uow:
        return await submit_job(uow, SumsJobs(uow.session, user_id), SUBMISSION, request, key, build)
