"""Faults between a committed job and its publication: the job still runs, exactly once.

1. The process that committed the job dies before it publishes (killed between commit and send).
2. Redis is down while the job is submitted: the POST answers as usual, the job runs once Redis is
   back. This one runs its own API, CPU worker and beat against a Redis the test can stop.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from packages.infra.db.models import BacktestJob, OutboxMessage
from tests.packages.core.backtests.helpers import one_year_body
from tests.support.stack import REPO_ROOT, Stack, celery_worker_args, free_port, wait_until

_DIES_AFTER_COMMIT = textwrap.dedent(
    """
    import asyncio, json, os, sys, uuid

    from packages.core.events.outbox import OutboxRelay

    async def die_before_publishing(self, messages):
        os._exit(17)  # the commit is done; the process dies before anything is sent

    OutboxRelay.publish_committed = die_before_publishing

    from packages.core.backtests.schemas import CreateBacktestRequest
    from packages.core.backtests.service import BacktestService
    from packages.core.principal import Principal
    from packages.core.resources import Resources
    from packages.shared_settings import get_settings

    async def main():
        user_id, body = uuid.UUID(sys.argv[1]), json.loads(sys.argv[2])
        resources = Resources.open(get_settings())
        async with resources.unit_of_work() as uow:
            job, _ = await BacktestService(uow, Principal(user_id), resources).create(
                CreateBacktestRequest.model_validate(body), None
            )
            print(job.id, flush=True)

    asyncio.run(main())
    """
)


async def _job_and_messages(api_app: Any, job_id: uuid.UUID) -> tuple[BacktestJob, list[OutboxMessage]]:
    async with api_app.state.resources.session_factory() as session:
        job = await session.scalar(select(BacktestJob).where(BacktestJob.id == job_id))
        messages = list(
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.payload["args"][0].astext == str(job_id))
            )
        )
    assert job is not None
    return job, messages


async def _wait_terminal(api_app: Any, job_id: uuid.UUID, within_s: float) -> BacktestJob:
    deadline = time.monotonic() + within_s
    while True:
        job, _ = await _job_and_messages(api_app, job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job.status} after {within_s} s"
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_a_job_whose_submitter_died_after_commit_runs_once(
    api_app: Any, make_account: Any, celery_workers: dict[str, str], beat: None, market_data_ready: Any
) -> None:
    account = await make_account()
    submitted = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _DIES_AFTER_COMMIT, account.user_id, json.dumps(one_year_body())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 17, submitted.stderr[-3000:]
    job_id = uuid.UUID(submitted.stdout.split()[0])
    job, [message] = await _job_and_messages(api_app, job_id)
    assert job.status == "queued" and message.published_at is None  # committed, never sent

    job = await _wait_terminal(api_app, job_id, within_s=60)
    assert job.status == "succeeded", job.error
    assert job.attempts == 1  # claimed and run exactly once
    _, [message] = await _job_and_messages(api_app, job_id)
    assert message.published_at is not None


@pytest.mark.slow
async def test_a_job_submitted_while_redis_is_down_runs_once_it_is_back(
    api_app: Any, make_account: Any, market_data_ready: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from packages.infra.embedded.redis_server import EmbeddedRedis

    # Not pytest's tmp_path for the server folder: it must outlive a stop and a restart as-is.
    redis = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="minsy-outbox-redis-")), preferred_port=free_port())
    redis.start()
    port = free_port()
    env = {
        "REDIS_URL": redis.url,
        "REDIS_APP_DB": "0",
        "REDIS_BROKER_DB": "1",
        "REDIS_RESULT_DB": "2",
        "API_PORT": str(port),
        "OUTBOX_RELAY_INTERVAL_S": "0.2",
    }
    stack = Stack(log_dir=tmp_path_factory.mktemp("outbox-redis-down"))
    node = f"cpu@outbox-{uuid.uuid4().hex[:6]}"
    schedule = tmp_path_factory.mktemp("outbox-beat") / "schedule"
    try:
        api = stack.spawn(
            "api",
            ["-m", "uvicorn", "apps.api.main:app", "--host", "127.0.0.1", "--port", str(port)],
            {**env, "MINSY_SERVICE": "api"},
        )
        stack.spawn(
            "worker-cpu",
            celery_worker_args("cpu", ("backtest",), node),
            {**env, "MINSY_SERVICE": "worker_cpu"},
        )
        stack.spawn(
            "beat",
            ["-m", "celery", "-A", "apps.beat.main", "beat", "-s", str(schedule), "--loglevel", "INFO"],
            {**env, "MINSY_SERVICE": "beat"},
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        wait_until(
            lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200,
            timeout=60,
            what="API",
            process=api.process,
        )
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            headers = (await make_account()).headers  # tokens are checked against the database

            redis.stop()
            started = time.monotonic()
            response = await client.post("/backtests", json=one_year_body(), headers=headers)
            post_seconds = time.monotonic() - started
            assert response.status_code == 201, response.text
            job_id = uuid.UUID(response.json()["id"])
            job, [message] = await _job_and_messages(api_app, job_id)
            assert job.status == "queued" and message.published_at is None and message.attempts >= 1

            await asyncio.sleep(3)  # the relay keeps trying meanwhile, and backs off
            redis.start()
            try:
                job = await _wait_terminal(api_app, job_id, within_s=90)
            except AssertionError as exc:
                _, messages = await _job_and_messages(api_app, job_id)
                logs = "\n".join(f"--- {n}\n{p.log_tail(60)}" for n, p in stack.processes.items())
                state = [(m.published_at, m.attempts, m.last_error) for m in messages]
                raise AssertionError(f"{exc}\noutbox: {state}\n{logs}") from exc
        assert job.status == "succeeded", (job.error, stack.processes["worker-cpu"].log_tail())
        assert job.attempts == 1
        _, [message] = await _job_and_messages(api_app, job_id)
        assert message.published_at is not None
        assert post_seconds < 5, f"the POST waited {post_seconds:.1f} s on the missing broker"
    finally:
        stack.stop_all()
        redis.stop()
