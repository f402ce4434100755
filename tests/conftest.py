"""Test session set-up: real PostgreSQL and Redis, a fresh database migrated with Alembic.

Environment is prepared in ``pytest_configure`` (before any application module reads settings):
the configured servers are used when reachable, otherwise embedded ones are started, exactly as
``make run`` does. Each run gets its own database and its own Redis database numbers, so a dev
stack or another run on the same machine is never disturbed.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import REPO_ROOT, Stack, celery_worker_args, free_port, wait_until

_RUN_ID = uuid.uuid4().hex[:8]
_state: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if "MINSY_TEST_PREPARED" in os.environ:
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.engine import make_url

    from packages.infra.embedded import ensure_database, resolve_postgres, resolve_redis
    from packages.shared_settings import reload_settings

    os.environ["MINSY_ENV_PROFILE"] = "dev"
    os.environ.pop("MINSY_SERVICE", None)
    base = reload_settings()
    embedded_dir = base.runtime.data_dir
    postgres = resolve_postgres(base.database.url, data_dir=embedded_dir, mode=base.runtime.embedded_services)
    redis = resolve_redis(base.redis.base_url, data_dir=embedded_dir, mode=base.runtime.embedded_services)
    database_url = (
        make_url(postgres.url).set(database=f"minsy_test_{_RUN_ID}").render_as_string(hide_password=False)
    )
    ensure_database(database_url, fresh=True)

    slot = _claim_redis_slot(redis.url)
    data_dir = Path(tempfile.mkdtemp(prefix=f"minsy-test-{_RUN_ID}-"))
    os.environ.update(
        {
            "MINSY_TEST_PREPARED": "1",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "REDIS_APP_DB": str(slot),
            "REDIS_BROKER_DB": str(slot + 1),
            "REDIS_RESULT_DB": str(slot + 2),
            "MINSY_DATA_DIR": str(data_dir),
            "LOG_JSON": "true",
            "BEAT_HEARTBEAT_S": "1",
            # Every test registers from the same address; the limiter itself is tested directly.
            "AUTH_ATTEMPTS_PER_MINUTE": "100000",
            # Sync jobs in worker subprocesses answer from recorded provider responses, never the network.
            "MARKET_DATA_PROVIDER_FACTORY": "tests.packages.core.market_data.recorded_providers:provider_for",
            # The MCP subprocess of this run listens here; the API's /status looks for it here.
            "MCP_PORT": str(free_port()),
        }
    )
    settings = reload_settings()
    _flush_test_redis(settings)

    alembic_cfg = AlembicConfig(str(REPO_ROOT / "alembic.ini"))
    alembic_cfg.attributes["database_url"] = database_url
    command.upgrade(alembic_cfg, "head")
    _state.update(postgres=postgres, redis=redis, database_url=database_url, data_dir=data_dir)


_SLOT_KEY = "minsy:test-run-owner"


def _claim_redis_slot(base_url: str) -> int:
    """Three Redis databases (app, broker, results) no other test run on this Redis is using.

    Celery queues have fixed names, so two runs sharing databases would steal each other's tasks.
    A run claims the app database of a triplet with SET NX (expiring, in case a run dies).
    """
    from packages.infra.redis_client import create_sync_redis

    for slot in (3, 6, 9, 12):
        client = create_sync_redis(f"{base_url}/{slot}")
        try:
            if client.set(_SLOT_KEY, _RUN_ID, nx=True, ex=3 * 3600):
                _state["redis_slot"] = slot
                return slot
        finally:
            client.close()
    raise RuntimeError(
        "every test Redis slot (3, 6, 9, 12) is taken by another test run; wait for one to end"
    )


def _release_redis_slot(base_url: str) -> None:
    from packages.infra.redis_client import create_sync_redis

    slot = _state.get("redis_slot")
    if slot is None:
        return
    client = create_sync_redis(f"{base_url}/{slot}")
    try:
        if client.get(_SLOT_KEY) == _RUN_ID:
            client.delete(_SLOT_KEY)
    finally:
        client.close()


def _flush_test_redis(settings: Any) -> None:
    from packages.infra.redis_client import create_sync_redis

    for db in (settings.redis.app_db, settings.redis.broker_db, settings.redis.result_db):
        client = create_sync_redis(settings.redis.url(db))
        for key in client.scan_iter(count=1000):
            if key != _SLOT_KEY:
                client.delete(key)
        client.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    database_url = _state.get("database_url")
    if not database_url:
        return
    import asyncio

    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)

    async def drop() -> None:
        conn = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
        )
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
    _release_redis_slot(_state["redis"].url)
    for service in ("postgres", "redis"):
        _state[service].release()


@pytest.fixture(scope="session")
def settings() -> Any:
    from packages.shared_settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def database_url() -> str:
    return str(_state["database_url"])


@pytest.fixture(scope="session")
async def api_app(settings: Any) -> AsyncIterator[Any]:
    from apps.api.main import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def api(api_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as client:
        yield client


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    services = Stack(log_dir=tmp_path_factory.mktemp("stack-logs"))
    yield services
    services.stop_all()


@pytest.fixture(scope="session")
def mcp_server(stack: Stack, settings: Any) -> str:
    """The real MCP app served by uvicorn in a subprocess; returns its base URL."""
    port = settings.mcp.port
    url = f"http://127.0.0.1:{port}"
    service = stack.spawn(
        "mcp",
        ["-m", "uvicorn", "apps.mcp.main:app", "--host", "127.0.0.1", "--port", str(port)],
        {"MINSY_SERVICE": "mcp"},
    )
    try:
        wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200,
            timeout=60,
            what="MCP server",
            process=service.process,
        )
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{service.log_tail()}") from exc
    return url


@pytest.fixture(scope="session")
def celery_workers(stack: Stack, settings: Any) -> dict[str, str]:
    """A real CPU worker and a real IO worker, each consuming its queues; returns node names."""
    from packages.infra.allocator import with_allocator_tuning
    from packages.infra.queue.celery_app import celery_app
    from packages.infra.queue.queues import WORKER_KINDS

    nodes = {kind: f"{kind}@test-{_RUN_ID}" for kind in WORKER_KINDS}
    for kind, queues in WORKER_KINDS.items():
        env = {"MINSY_SERVICE": f"worker_{kind}"}
        stack.spawn(
            f"worker-{kind}",
            celery_worker_args(kind, queues, nodes[kind]),
            with_allocator_tuning(env) if kind == "cpu" else env,
        )

    def all_answer() -> bool:
        replies = celery_app.control.ping(timeout=0.5)
        answered = {name for reply in replies for name in reply}
        return set(nodes.values()) <= answered

    try:
        wait_until(all_answer, timeout=90, what="Celery workers")
    except Exception as exc:
        logs = "\n".join(s.log_tail() for n, s in stack.processes.items() if n.startswith("worker"))
        raise RuntimeError(f"{exc}\n{logs}") from exc
    return nodes


@pytest.fixture(scope="session")
def second_cpu_worker(stack: Stack, celery_workers: dict[str, str]) -> Iterator[str]:
    """Another CPU worker process on the stress queue, under its own node name."""
    from packages.infra.queue.celery_app import celery_app

    node = "cpu2@" + celery_workers["cpu"].split("@", 1)[1]
    service = stack.spawn(
        "worker-cpu2", celery_worker_args("cpu", ("stress",), node), {"MINSY_SERVICE": "worker_cpu"}
    )

    def answers() -> bool:
        return any(node in reply for reply in celery_app.control.ping(timeout=0.5))

    wait_until(answers, timeout=60, what="second CPU worker", process=service.process)
    yield node
    service.stop()


@pytest.fixture(scope="session")
def beat(stack: Stack, settings: Any) -> None:
    schedule = Path(settings.runtime.data_dir) / "beat" / "schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    stack.spawn(
        "beat",
        ["-m", "celery", "-A", "apps.beat.main", "beat", "-s", str(schedule), "--loglevel", "INFO"],
        {"MINSY_SERVICE": "beat"},
    )


@pytest.fixture(scope="session")
async def market_data_ready(celery_workers: dict[str, str], api_app: Any) -> dict[str, Any]:
    """The store cold-started from packaged real data by the IO worker (enqueued on worker_ready)."""
    from tests.packages.core.market_data.helpers import wait_for_cold_start

    return dict(await wait_for_cold_start(api_app.state.resources))


class Account:
    def __init__(self, client: httpx.AsyncClient, email: str, password: str, payload: dict[str, Any]) -> None:
        self.client = client
        self.email = email
        self.password = password
        self.user_id: str = payload["user"]["id"]
        self.tokens: dict[str, Any] = payload["tokens"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}

    async def mcp_token(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/auth/mcp-token", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def make_account(api: httpx.AsyncClient) -> Any:
    async def create(password: str = "correct-horse-battery") -> Account:
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        response = await api.post("/auth/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        return Account(api, email, password, response.json())

    return create
