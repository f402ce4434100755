"""Health (is this process and its stores reachable) and status (is the whole stack working)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import platform
import time
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import text

from packages.core.market_data.cold_start import market_data_status
from packages.core.resources import Resources
from packages.core.system.schemas import ComponentStatus, Health, HealthOut, StatusOut
from packages.infra.queue.queues import WORKER_KINDS
from packages.infra.redis_client import BEAT_HEARTBEAT_KEY
from packages.shared_settings import MCP_DOMAINS

APP_VERSION = importlib.metadata.version("minsy")
PROBE_TIMEOUT_S = 2.0
PROCESS_STARTED = time.monotonic()


async def _timed(check: Callable[[], Awaitable[dict[str, object] | None]]) -> ComponentStatus:
    started = time.perf_counter()
    try:
        info = await asyncio.wait_for(check(), PROBE_TIMEOUT_S)
    except Exception as exc:
        return ComponentStatus(status="down", detail=f"{type(exc).__name__}: {exc}"[:300])
    return ComponentStatus(
        status="ok", latency_ms=round((time.perf_counter() - started) * 1000, 2), info=info or {}
    )


def _overall(components: list[ComponentStatus]) -> Health:
    states = {c.status for c in components}
    if states == {"ok"}:
        return "ok"
    return "down" if states == {"down"} else "degraded"


class SystemService:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    async def _database(self) -> dict[str, object]:
        async with self.resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        return {"migration": revision}

    async def _redis(self) -> dict[str, object]:
        await self.resources.redis.ping()
        return {}

    async def health(self) -> HealthOut:
        database, redis = await asyncio.gather(_timed(self._database), _timed(self._redis))
        return HealthOut(status=_overall([database, redis]), database=database, redis=redis)

    async def _workers(self) -> dict[str, ComponentStatus]:
        control = self.resources.celery.control
        try:
            replies = await asyncio.to_thread(control.ping, timeout=1.0)
        except Exception as exc:
            return {kind: ComponentStatus(status="down", detail=str(exc)[:200]) for kind in WORKER_KINDS}
        answered = [name for reply in replies for name in reply]
        result = {}
        for kind, queues in WORKER_KINDS.items():
            names = sorted(name for name in answered if name.startswith(f"{kind}@"))
            result[kind] = ComponentStatus(
                status="ok" if names else "down",
                detail=None if names else f"no '{kind}@' worker answered a ping",
                info={"nodes": names, "queues": list(queues)},
            )
        return result

    async def _beat(self) -> ComponentStatus:
        raw = await self.resources.redis.get(BEAT_HEARTBEAT_KEY)
        if raw is None:
            return ComponentStatus(status="down", detail="no heartbeat from beat yet")
        age = time.time() - float(raw)
        limit = self.resources.settings.celery.beat_heartbeat_s * 3
        return ComponentStatus(
            status="ok" if age <= limit else "down",
            detail=None if age <= limit else f"last heartbeat {age:.0f} s ago",
            info={"last_heartbeat_age_s": round(age, 1)},
        )

    async def _mcp(self) -> dict[str, ComponentStatus]:
        settings = self.resources.settings.mcp
        url = settings.internal_url.rstrip("/") + "/healthz"
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
                response = await client.get(url)
                response.raise_for_status()
                domains = response.json()["domains"]
        except Exception as exc:
            detail = f"MCP process unreachable at {url}: {type(exc).__name__}"
            return {d: ComponentStatus(status="down", detail=detail) for d in MCP_DOMAINS}
        return {
            d: ComponentStatus(status="ok", info=domains[d])
            if d in domains
            else ComponentStatus(status="down", detail="domain not served")
            for d in MCP_DOMAINS
        }

    async def status(self) -> StatusOut:
        database, redis, workers, beat, mcp, market_data = await asyncio.gather(
            _timed(self._database),
            _timed(self._redis),
            self._workers(),
            self._beat(),
            self._mcp(),
            market_data_status(self.resources),
        )
        components = [database, redis, beat, *workers.values(), *mcp.values(), market_data]
        return StatusOut(
            status=_overall(components),
            version=APP_VERSION,
            profile=self.resources.settings.runtime.profile,
            uptime_s=round(time.monotonic() - PROCESS_STARTED, 1),
            versions={
                "minsy": APP_VERSION,
                "python": platform.python_version(),
                **{
                    pkg: importlib.metadata.version(pkg) for pkg in ("fastapi", "mcp", "celery", "sqlalchemy")
                },
            },
            database=database,
            redis=redis,
            workers=workers,
            beat=beat,
            mcp=mcp,
            market_data=market_data,
        )
