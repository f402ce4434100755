from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from apps.api.deps import ResourcesDep
from packages.core.system.schemas import HealthOut, StatusOut
from packages.core.system.service import SystemService

router = APIRouter(tags=["system"])


@router.get(
    "/health",
    operation_id="system_health",
    summary="Process up, with database and Redis reachability (503 when either is down)",
    responses={503: {"model": HealthOut, "description": "database or Redis unreachable"}},
)
async def health(resources: ResourcesDep) -> JSONResponse:
    result = await SystemService(resources).health()
    return JSONResponse(result.model_dump(mode="json"), status_code=200 if result.status == "ok" else 503)


@router.get(
    "/status",
    operation_id="system_status",
    summary="Every service of the stack: database, Redis, workers, beat, MCP domains, versions, uptime",
)
async def status(resources: ResourcesDep) -> StatusOut:
    return await SystemService(resources).status()
