"""Submit a background job and poll it, for every job kind's tests (REST, MCP or the database)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import httpx

TERMINAL = ("succeeded", "failed", "cancelled")


async def poll[T](
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within_s: float = 90.0,
    interval: float = 0.02,
    what: str = "job",
) -> T:
    """``read()`` again every ``interval`` seconds until ``done`` holds; fails after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = await read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} not done after {within_s} s: {value}"
        await asyncio.sleep(interval)


async def post_job(
    api: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    """POST a job with an Idempotency-Key (a fresh one unless ``key`` is given)."""
    return await api.post(path, json=body, headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


async def wait_for_status(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    statuses: Collection[str] = TERMINAL,
    *,
    within_s: float = 90.0,
    interval: float = 0.02,
) -> dict[str, Any]:
    """GET ``path`` until the job's status is one of ``statuses``; returns the job."""

    async def read() -> dict[str, Any]:
        response = await api.get(path, headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job

    return await poll(
        read, lambda job: job["status"] in statuses, within_s=within_s, interval=interval, what=path
    )
