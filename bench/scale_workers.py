"""Scale-out of one chunked stress job over CPU worker processes: 1, then 2, then N workers.

    python -m bench.scale_workers [--kind walk-forward|monte-carlo] [--max N] [--repeats R]
                                  [--folds F] [--trials T] [--trials-per-part P] [--json FILE] [--logs DIR]

What it starts, all its own and all stopped (or dropped) at the end:

- PostgreSQL and Redis resolved as the tests resolve them (the configured servers when they answer,
  else the embedded ones, ``packages.infra.embedded``), a fresh scratch database
  ``minsy_scale_<id>`` migrated with Alembic, and three Redis databases claimed with the test runs'
  own claim (``minsy:test-run-owner``), so neither a dev stack nor a test run is disturbed;
- a scratch data folder, loaded with the packaged REAL market data (the cold start, in process);
- the API app in this process (``httpx.ASGITransport``), one registered user;
- for each worker count k: k Celery worker processes on the ``stress`` queue (prefork, one pool
  process each, prefetch 1, the CPU worker's allocator settings), then one untimed warm-up job of
  the same kind (numba caches load, each process reads its bars once), then the timed job(s).

The job is submitted over REST exactly as a user submits it (``submit_stress_job``) and followed
with a progress bar; its time is the server's, from ``created_at`` to ``finished_at`` (queueing,
fan-out, every part, merge and storage). Speedup = time on 1 worker / time on k.

Jobs (the strategy: SMA 10/30 crossover on REAL S&P 500 daily bars 2000-2018, warm-up from 1999):

- ``walk-forward`` (default): ``--folds`` rolling folds (20, the product's cap), each optimising a
  2,000-combination grid (fast 2..41 x slow 50..246 step 4, the per-search cap) by Sharpe; one part
  per fold, about 40,000 backtests in all: the heaviest stress job the default caps allow.
- ``monte-carlo``: a block bootstrap of ``--trials`` trials (20,000, the default cap) cut into parts
  of ``--trials-per-part`` (250, the default); each trial is microseconds of work, so this one
  measures the job kit's per-part overhead as much as computation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]
# The test runs' claim on a triplet of Redis databases (tests/conftest.py): the same key and
# triplets, so a test run and this script never share queues.
REDIS_SLOT_KEY = "minsy:test-run-owner"
REDIS_SLOTS = (3, 6, 9, 12)
REDIS_CLAIM_S = 3 * 3600
FAST, SLOW = "/factors/0/params/period", "/factors/1/params/period"
RANGE = {"start": "2000-01-01", "end": "2019-01-01"}
KINDS = ("walk-forward", "monte-carlo")


# --- the one place that submits a job: the stress REST API ------------------------------------------------
async def submit_stress_job(api: Any, headers: dict[str, str], kind: str, body: dict[str, Any]) -> str:
    """POST /api/v1/stress-tests/{kind} as a user does; returns the stress test's id."""
    response = await api.post(
        f"/stress-tests/{kind}", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
    )
    if response.status_code != 201:
        raise RuntimeError(f"POST /stress-tests/{kind} answered {response.status_code}: {response.text}")
    return str(response.json()["id"])


def job_body(kind: str, args: argparse.Namespace, *, warm_up_parts: int | None = None) -> dict[str, Any]:
    """The request of the timed job, or with ``warm_up_parts`` a small one cut into that many parts."""
    from bench.workloads.stress import spx_document

    base = {"document": spx_document(), **RANGE}
    if kind == "monte-carlo":
        trials = args.trials if warm_up_parts is None else warm_up_parts * args.trials_per_part
        return {**base, "method": "block_bootstrap", "trials": trials, "seed": 7}
    small = warm_up_parts is not None
    return {
        **base,
        "folds": max(warm_up_parts or args.folds, 2),
        "optimisation": {
            "method": "grid",
            "dimensions": [
                {"pointer": FAST, "low": 2, "high": 6 if small else 41, "step": 1},
                {"pointer": SLOW, "low": 50, "high": 58 if small else 246, "step": 4},
            ],
            "objectives": [{"metric": "sharpe"}],
            "budget": 2000,
        },
    }


def describe_job(kind: str, args: argparse.Namespace) -> str:
    if kind == "monte-carlo":
        parts = -(-args.trials // args.trials_per_part)
        return (
            f"Monte Carlo block bootstrap, {args.trials:,} trials in {parts} parts of {args.trials_per_part}, "
            "SMA 10/30 on REAL S&P 500 daily bars 2000-2018"
        )
    return (
        f"walk-forward, {args.folds} rolling folds (one part each) x 2,000-combination grid by Sharpe, "
        "SMA 10/30 on REAL S&P 500 daily bars 2000-2018"
    )


# --- scratch services -------------------------------------------------------------------------------------
def _claim_redis_slot(base_url: str) -> int:
    from packages.infra.redis_client import create_sync_redis

    for slot in REDIS_SLOTS:
        client = create_sync_redis(f"{base_url}/{slot}")
        try:
            if client.set(REDIS_SLOT_KEY, f"scale-workers-{RUN_ID}", nx=True, ex=REDIS_CLAIM_S):
                return slot
        finally:
            client.close()
    raise RuntimeError(f"every Redis triplet {REDIS_SLOTS} is claimed by a test run; try again when one ends")


def _flush_slot(base_url: str, slot: int, *, release: bool) -> None:
    from packages.infra.redis_client import create_sync_redis

    for db in (slot, slot + 1, slot + 2):
        client = create_sync_redis(f"{base_url}/{db}")
        try:
            for key in client.scan_iter(count=1000):
                if key != REDIS_SLOT_KEY:
                    client.delete(key)
            if release and db == slot and client.get(REDIS_SLOT_KEY) == f"scale-workers-{RUN_ID}":
                client.delete(REDIS_SLOT_KEY)
        finally:
            client.close()


@contextlib.contextmanager
def scratch_stack(extra_env: dict[str, str]) -> Iterator[Path]:
    """Servers, a fresh migrated database, Redis databases and a data folder for this run only; the
    environment points every later import and every worker at them."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.engine import make_url

    from packages.infra.embedded import ensure_database, resolve_postgres, resolve_redis
    from packages.shared_settings import reload_settings

    os.environ["MINSY_ENV_PROFILE"] = "dev"
    os.environ.pop("MINSY_SERVICE", None)
    base = reload_settings()
    mode, embedded_dir = base.runtime.embedded_services, base.runtime.data_dir
    with contextlib.ExitStack() as cleanup:  # undone in reverse order, whatever step fails
        postgres = resolve_postgres(base.database.url, data_dir=embedded_dir, mode=mode)
        cleanup.callback(postgres.release)
        redis = resolve_redis(base.redis.base_url, data_dir=embedded_dir, mode=mode)
        cleanup.callback(redis.release)
        database_url = (
            make_url(postgres.url).set(database=f"minsy_scale_{RUN_ID}").render_as_string(hide_password=False)
        )
        ensure_database(database_url, fresh=True)
        cleanup.callback(_drop_database, database_url)
        slot = _claim_redis_slot(redis.url)
        cleanup.callback(_flush_slot, redis.url, slot, release=True)
        data_dir = Path(tempfile.mkdtemp(prefix=f"minsy-scale-{RUN_ID}-"))
        cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
        os.environ.update(
            {
                "DATABASE_URL": database_url,
                "REDIS_URL": redis.url,
                "REDIS_APP_DB": str(slot),
                "REDIS_BROKER_DB": str(slot + 1),
                "REDIS_RESULT_DB": str(slot + 2),
                "MINSY_DATA_DIR": str(data_dir),
                "MINSY_EMBEDDED_SERVICES": "never",
                "LOG_JSON": "true",
                # The in-process API logs to stdout: only what goes wrong (workers log at INFO).
                "LOG_LEVEL": "WARNING",
                "ACCESS_TOKEN_MINUTES": "600",
                **extra_env,
            }
        )
        reload_settings()
        _flush_slot(redis.url, slot, release=False)
        config = Config(str(REPO_ROOT / "alembic.ini"))
        config.attributes["database_url"] = database_url
        command.upgrade(config, "head")
        yield data_dir


def _drop_database(database_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)

    async def drop() -> None:
        connection = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
        )
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


# --- worker processes -------------------------------------------------------------------------------------
def worker_argv(node: str) -> list[str]:
    """A CPU worker on the stress queue as `minsy up` runs one, with a single pool process."""
    return [
        sys.executable, "-m", "celery", "-A", "apps.worker.main", "worker",
        "-Q", "stress", "-n", node, "--pool", "prefork", "--concurrency", "1",
        "--prefetch-multiplier", "1", "--without-mingle", "--without-gossip", "--loglevel", "INFO",
    ]  # fmt: skip


@dataclass
class WorkerPool:
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, count: int) -> list[str]:
        """``count`` CPU worker processes on the stress queue; returns their node names once all answer."""
        from packages.infra.allocator import with_allocator_tuning
        from packages.infra.queue.celery_app import celery_app

        env = with_allocator_tuning({**os.environ, "MINSY_SERVICE": "worker_cpu", "LOG_LEVEL": "INFO"})
        for index in range(count):
            node = f"stress{index}.{count}@scale-{RUN_ID}"
            with (self.log_dir / f"worker-{count}-{index}.log").open("wb") as log:
                self.processes[node] = subprocess.Popen(
                    worker_argv(node),
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Own process group: the pool process is stopped with its worker.
                    start_new_session=True,
                )
        deadline = time.monotonic() + 120
        while True:
            for node, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {node} exited with {process.returncode}; see {self.log_dir}")
            answered = {name for reply in celery_app.control.ping(timeout=0.5) for name in reply}
            if set(self.processes) <= answered:
                return list(self.processes)
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not answering after 120 s; see {self.log_dir}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the workers and their pool processes (each worker's session)."""
        sessions = {process.pid for process in self.processes.values()}
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # Fields after the parenthesised command: state ppid pgrp session ... utime(12) stime(13).
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[3]) in sessions:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        self.processes.clear()


# --- running jobs -----------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def api_client() -> AsyncIterator[tuple[Any, dict[str, str]]]:
    """The API app in this process and a freshly registered user's headers."""
    import httpx

    from apps.api.main import create_app
    from packages.shared_settings import get_settings

    app = create_app(get_settings())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://scale-workers/api/v1", timeout=60
        ) as api,
    ):
        email = f"scale-{RUN_ID}@example.com"
        response = await api.post("/auth/register", json={"email": email, "password": uuid.uuid4().hex})
        if response.status_code != 201:
            raise RuntimeError(f"registering the benchmark user failed: {response.text}")
        yield api, {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def load_market_data() -> None:
    """The cold start into the scratch data folder: the packaged real bars, registered in the catalog."""
    from packages.core.market_data import admin
    from packages.core.resources import Resources
    from packages.shared_settings import get_settings

    resources = Resources.open(get_settings(), pooled=False)
    try:
        state = await admin.ensure(resources, lambda line: None)
    finally:
        await resources.close()
    if state.get("state") != "done":
        raise RuntimeError(f"market-data cold start ended {state}")


def _seconds(job: dict[str, Any]) -> float:
    started = datetime.fromisoformat(job["created_at"])
    return (datetime.fromisoformat(job["finished_at"]) - started).total_seconds()


async def run_job(
    api: Any, headers: dict[str, str], kind: str, body: dict[str, Any], label: str | None
) -> float:
    """Submit, follow (with a progress bar when ``label`` is given) and return the server's job time."""
    from tqdm import tqdm

    job_id = await submit_stress_job(api, headers, kind, body)
    bar = tqdm(total=100, desc=label, unit="%", disable=label is None, leave=True, file=sys.stderr)
    try:
        while True:
            response = await api.get(f"/stress-tests/{job_id}", headers=headers)
            job = response.json()
            bar.update(round(100 * float(job["progress"])) - bar.n)
            if job["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"the stress test {job['status']}: {job['error']}")
            if job["status"] == "succeeded":
                bar.update(100 - bar.n)
                return _seconds(job)
            await asyncio.sleep(0.1)
    finally:
        bar.close()


@dataclass
class Timing:
    """One timed job: the server's job time, the CPU time the workers spent meanwhile, and the
    machine's 1-minute load average just before it (others' work competes for the same CPUs)."""

    seconds: float
    worker_cpu_s: float
    load_before: float


async def measure(args: argparse.Namespace, counts: list[int], log_dir: Path) -> dict[int, list[Timing]]:
    await load_market_data()
    timings: dict[int, list[Timing]] = {}
    async with api_client() as (api, headers):
        for count in counts:
            pool = WorkerPool(log_dir)
            try:
                await asyncio.to_thread(pool.start, count)
                warm_up = job_body(args.kind, args, warm_up_parts=2 * count)
                await run_job(api, headers, args.kind, warm_up, None)
                timings[count] = []
                for repeat in range(args.repeats):
                    load, cpu = os.getloadavg()[0], pool.cpu_seconds()
                    label = f"{count} worker{'s' if count > 1 else ''}, run {repeat + 1}/{args.repeats}"
                    seconds = await run_job(api, headers, args.kind, job_body(args.kind, args), label)
                    timings[count].append(Timing(seconds, pool.cpu_seconds() - cpu, load))
            finally:
                await asyncio.to_thread(pool.stop)
    return timings


def report(kind: str, args: argparse.Namespace, timings: dict[int, list[Timing]]) -> str:
    """The table: median job time per worker count, speedup over one worker, and how many CPUs the
    workers actually got (their CPU seconds over the job's seconds) beside the load before."""
    medians = {count: statistics.median(t.seconds for t in runs) for count, runs in timings.items()}
    baseline = medians[min(medians)]
    lines = [
        f"stress job: {describe_job(kind, args)}",
        f"machine: {os.cpu_count()} CPUs; each worker is one Celery process with one pool process; job s = the "
        f"server's created_at to finished_at, median of {args.repeats}; CPUs used = worker CPU s / job s",
        "",
        f"{'workers':>7} | {'job s':>7} | {'speedup':>7} | {'per worker':>10} | {'CPUs used':>9} | "
        f"{'load before':>11} | runs s",
        "--------+---------+---------+------------+-----------+-------------+-------",
    ]
    for count, runs in timings.items():
        speedup = baseline / medians[count]
        used = statistics.median(t.worker_cpu_s / t.seconds for t in runs)
        load = statistics.median(t.load_before for t in runs)
        each = ", ".join(f"{t.seconds:.2f}" for t in runs)
        lines.append(
            f"{count:>7} | {medians[count]:>7.2f} | {speedup:>6.2f}x | {speedup / count:>10.0%} | "
            f"{used:>9.2f} | {load:>11.2f} | {each}"
        )
    return "\n".join(lines)


def worker_counts(maximum: int) -> list[int]:
    return sorted({1, min(2, maximum), maximum})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, default="walk-forward")
    parser.add_argument("--max", type=int, default=os.cpu_count() or 1, help="most workers (default: CPUs)")
    parser.add_argument("--repeats", type=int, default=1, help="timed jobs per worker count")
    parser.add_argument("--folds", type=int, default=20, help="walk-forward folds (parts)")
    parser.add_argument("--trials", type=int, default=20_000, help="Monte Carlo trials")
    parser.add_argument("--trials-per-part", type=int, default=250, help="Monte Carlo trials per part")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    parser.add_argument(
        "--logs", type=Path, help="keep the worker logs in this folder (default: only on failure)"
    )
    args = parser.parse_args(argv)
    if args.max < 1 or args.repeats < 1:
        parser.error("--max and --repeats must be at least 1")
    counts = worker_counts(args.max)
    caps = {
        "STRESS_MAX_TRIALS": str(max(args.trials, 20_000)),
        "STRESS_TRIALS_PER_PART": str(args.trials_per_part),
        "STRESS_MAX_FOLDS": str(max(args.folds, 20)),
    }
    print(f"scale_workers {RUN_ID}: {describe_job(args.kind, args)}; workers {counts}", file=sys.stderr)
    with scratch_stack(caps) as data_dir:
        log_dir = args.logs or data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            timings = asyncio.run(measure(args, counts, log_dir))
        except BaseException:
            if args.logs:
                raise
            kept = Path(tempfile.mkdtemp(prefix=f"minsy-scale-{RUN_ID}-logs-"))
            shutil.copytree(log_dir, kept, dirs_exist_ok=True)
            print(f"worker logs kept in {kept}", file=sys.stderr)
            raise
    text = report(args.kind, args, timings)
    print(text)
    if args.json:
        runs = {count: [dataclasses.asdict(t) for t in timed] for count, timed in timings.items()}
        payload = {"kind": args.kind, "job": describe_job(args.kind, args), "runs": runs}
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
