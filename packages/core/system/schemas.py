from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

Health = Literal["ok", "degraded", "down"]


class ComponentStatus(BaseModel):
    status: Health
    latency_ms: float | None = None
    detail: str | None = None
    info: dict[str, Any] = {}


class HealthOut(BaseModel):
    status: Health
    database: ComponentStatus
    redis: ComponentStatus


class StatusOut(BaseModel):
    status: Health
    version: str
    profile: str
    uptime_s: float
    versions: dict[str, str]
    database: ComponentStatus
    redis: ComponentStatus
    workers: dict[str, ComponentStatus]
    beat: ComponentStatus
    mcp: dict[str, ComponentStatus]
    market_data: ComponentStatus | None = None
