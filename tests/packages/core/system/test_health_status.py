from __future__ import annotations

import asyncio
from typing import Any

import httpx


async def test_health_reports_database_and_redis(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["info"]["migration"]


async def test_status_sees_every_service(
    api: httpx.AsyncClient, mcp_server: str, celery_workers: dict[str, str], beat: None
) -> None:
    body: dict[str, Any] = {}
    for _ in range(60):
        body = (await api.get("/status")).json()
        if body["status"] == "ok":
            break
        await asyncio.sleep(0.5)
    assert body["status"] == "ok", body
    assert set(body["mcp"]) == {"strategy", "backtest", "market", "stress", "trading"}
    assert all(d["info"]["tools"] >= 1 for d in body["mcp"].values())
    assert celery_workers["cpu"] in body["workers"]["cpu"]["info"]["nodes"]
    assert celery_workers["io"] in body["workers"]["io"]["info"]["nodes"]
    assert body["beat"]["info"]["last_heartbeat_age_s"] < 5
    assert body["versions"]["python"].startswith("3.12")
    assert body["uptime_s"] >= 0
