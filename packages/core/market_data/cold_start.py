"""Cold start in the background: make the store hold data, register it in the PostgreSQL catalog,
and keep its progress in Redis for ``/api/v1/status`` and ``minsy market-data status``.

The IO worker enqueues ``market_data.ensure`` once it is ready; a Redis lock makes a second run
(another worker, a restart, the CLI) wait its turn instead of extracting the same archives twice.
The underlying ``ensure_market_data`` is idempotent, so a run after a finished one only re-announces
the datasets to the catalog.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from packages.core.market_data.access import market_store
from packages.core.market_data.catalog import PostgresCatalog
from packages.core.market_data.repository import DatasetRepository
from packages.core.resources import Resources
from packages.core.system.schemas import ComponentStatus
from packages.infra.market_data.cold_start import (
    DEMO_ARCHIVE_NAME,
    ArchiveSource,
    ColdStartConfig,
    ColdStartProgress,
    ensure_market_data,
)
from packages.infra.market_data.store import PUBLIC_NAMESPACE
from packages.infra.redis_client import create_sync_redis
from packages.shared_settings import Settings

log = logging.getLogger("minsy.market_data.cold_start")

STATE_KEY = "minsy:market_data:cold_start"
LOCK_KEY = "minsy:market_data:cold_start:lock"
LOCK_TTL_S = 30 * 60
STATE_TTL_S = 30 * 24 * 3600
# States during which the data is on its way: the stack is healthy, just not fully stocked yet.
PENDING_STATES = ("queued", "running")


def cold_start_config(settings: Settings) -> ColdStartConfig:
    config = settings.market_data
    return ColdStartConfig(
        data_dir=config.root,
        archives=tuple(
            ArchiveSource(archive.name, archive.location, archive.sha256) for archive in config.archives
        ),
        include_packaged_demo=config.include_demo_archive,
        download_timeout_s=config.download_timeout_s,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _ProgressRecorder:
    """Turns the cold start's progress events into one JSON state in Redis (called from its thread)."""

    def __init__(self, settings: Settings, archive_names: list[str], started_at: str) -> None:
        self._redis = create_sync_redis(settings.redis.app_url)
        self._archives = archive_names
        self._started_at = started_at

    def write(self, state: dict[str, Any]) -> None:
        self._redis.set(STATE_KEY, json.dumps(state), ex=STATE_TTL_S)

    def __call__(self, event: ColdStartProgress) -> None:
        done = self._archives.index(event.archive) if event.archive in self._archives else 0
        within = event.current / event.total if event.total else 0.0
        fraction = 1.0 if event.stage == "done" else (done + min(within, 1.0)) / max(len(self._archives), 1)
        self.write(
            {
                "state": "running",
                "stage": event.stage,
                "archive": event.archive,
                "message": event.message,
                "progress": round(min(fraction, 0.99), 4),
                "started_at": self._started_at,
            }
        )

    def close(self) -> None:
        self._redis.close()


def mark_queued(settings: Settings) -> None:
    """Record that a cold start was requested, unless one is already on its way (sync: for signals)."""
    redis = create_sync_redis(settings.redis.app_url)
    try:
        raw = redis.get(STATE_KEY)
        current = json.loads(raw) if raw else {}
        if current.get("state") not in PENDING_STATES:
            redis.set(STATE_KEY, json.dumps({"state": "queued", "queued_at": _now()}), ex=STATE_TTL_S)
    finally:
        redis.close()


async def read_state(resources: Resources) -> dict[str, Any] | None:
    raw = await resources.redis.get(STATE_KEY)
    return None if raw is None else dict(json.loads(raw))


async def reconcile_shared_catalog(resources: Resources, catalog: PostgresCatalog) -> dict[str, int]:
    """Make the catalog's shared entries equal the store's (repairs entries lost on either side)."""
    store = market_store(resources.settings)
    stored = {
        info.catalog_entry().key: info
        for info in await asyncio.to_thread(store.list_datasets, namespace=PUBLIC_NAMESPACE)
    }
    listed = {entry.key: entry for entry in await catalog.alist((PUBLIC_NAMESPACE,))}
    upserted = removed = 0
    for key, info in stored.items():
        entry = listed.get(key)
        if entry is None or entry.checksum != info.checksum:
            await catalog.aupsert(info.catalog_entry())
            upserted += 1
    for key in listed.keys() - stored.keys():
        await catalog.aremove(*key)
        removed += 1
    return {"upserted": upserted, "removed": removed, "datasets": len(stored)}


async def run_cold_start(
    resources: Resources, *, on_progress: Callable[[ColdStartProgress], None] | None = None
) -> dict[str, Any]:
    """Run the cold start unless another run holds the lock; returns the final state."""
    token = uuid.uuid4().hex
    if not await resources.redis.set(LOCK_KEY, token, nx=True, ex=LOCK_TTL_S):
        return {"state": "already_running", **(await read_state(resources) or {})}
    settings = resources.settings
    config = cold_start_config(settings)
    names = ([DEMO_ARCHIVE_NAME] if config.include_packaged_demo else []) + [a.name for a in config.archives]
    started_at = _now()
    recorder = _ProgressRecorder(settings, names, started_at)

    def progress(event: ColdStartProgress) -> None:
        recorder(event)
        if on_progress is not None:
            on_progress(event)

    catalog = PostgresCatalog(resources.session_factory, loop=asyncio.get_running_loop())
    try:
        recorder.write({"state": "running", "stage": "starting", "progress": 0.0, "started_at": started_at})
        report = await asyncio.to_thread(
            ensure_market_data,
            config,
            store=market_store(settings),
            catalog=catalog,
            progress=progress,
        )
        repaired = await reconcile_shared_catalog(resources, catalog)
        state = {
            "state": "done" if report.ok else "failed",
            "stage": "done",
            "progress": 1.0,
            "started_at": started_at,
            "finished_at": _now(),
            "message": f"{len(report.inventory)} shared datasets available",
            "archives": [
                {
                    "name": outcome.name,
                    "status": outcome.status,
                    "datasets": len(outcome.datasets),
                    "error": outcome.error,
                }
                for outcome in report.archives
            ],
            "catalog": repaired,
        }
    except Exception as error:
        log.exception("market-data cold start failed")
        state = {
            "state": "failed",
            "stage": "failed",
            "progress": 0.0,
            "started_at": started_at,
            "finished_at": _now(),
            "message": f"{type(error).__name__}: {error}"[:500],
        }
    finally:
        recorder.close()
        if await resources.redis.get(LOCK_KEY) == token:
            await resources.redis.delete(LOCK_KEY)
    await resources.redis.set(STATE_KEY, json.dumps(state), ex=STATE_TTL_S)
    log.info("market-data cold start finished", extra={"state": state["state"]})
    return state


async def market_data_status(resources: Resources) -> ComponentStatus:
    """The ``market_data`` component of /status: cold-start state, progress and shared inventory."""
    try:
        state = await read_state(resources)
        async with resources.session_factory() as session:
            inventory = await DatasetRepository(session).inventory(PUBLIC_NAMESPACE)
    except Exception as error:
        return ComponentStatus(status="down", detail=f"{type(error).__name__}: {error}"[:300])
    phase = (state or {}).get("state")
    info = {
        "state": phase or "not_started",
        "stage": (state or {}).get("stage"),
        "progress": (state or {}).get("progress"),
        "message": (state or {}).get("message"),
        "started_at": (state or {}).get("started_at"),
        "finished_at": (state or {}).get("finished_at"),
        "archives": (state or {}).get("archives", []),
        "inventory": inventory,
        "network_enabled": resources.settings.providers.network_enabled,
    }
    if phase == "failed":
        return ComponentStatus(status="degraded", detail=info["message"] or "cold start failed", info=info)
    if inventory["datasets"] == 0 and phase not in PENDING_STATES:
        return ComponentStatus(
            status="degraded",
            detail="no market data yet: start the IO worker or run `minsy market-data ensure`",
            info=info,
        )
    return ComponentStatus(status="ok", info=info)
