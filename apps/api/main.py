"""The HTTP API: ``uvicorn apps.api.main:app`` (port 8000, prefix /api/v1)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from fastapi_offline import FastAPIOffline

from apps.api.errors import install_problem_handlers
from apps.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from apps.api.routes.auth import router as auth_router
from apps.api.routes.backtests import router as backtests_router
from apps.api.routes.broker_accounts import router as broker_accounts_router
from apps.api.routes.confirmations import router as confirmations_router
from apps.api.routes.deployments import router as deployments_router
from apps.api.routes.kill_switch import router as kill_switch_router
from apps.api.routes.market_data import router as market_data_router
from apps.api.routes.market_data import udf_router as market_data_udf_router
from apps.api.routes.strategies import router as strategies_router
from apps.api.routes.stress import router as stress_router
from apps.api.routes.system import router as system_router
from packages.core.resources import Resources
from packages.core.system.service import APP_VERSION
from packages.infra.observability.logging import configure_logging
from packages.infra.observability.metrics import render_latest
from packages.shared_settings import Settings, get_settings

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.open(settings)
        app.state.resources = resources
        try:
            yield
        finally:
            await resources.close()

    # Swagger UI is served from assets installed with the package, not a CDN, so the
    # docs work offline.
    app = FastAPIOffline(
        title="Minsy API",
        version=APP_VERSION,
        summary="AI-driven quantitative-strategy platform: chat, strategies, backtests, stress tests, paper trading.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        static_url=f"{API_PREFIX}/docs-assets",
        swagger_ui_oauth2_redirect_url=f"{API_PREFIX}/docs/oauth2-redirect",
    )
    install_problem_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        overrides={f"{API_PREFIX}/market-data/imports": settings.api.upload_max_bytes},
    )
    app.add_middleware(RequestContextMiddleware)

    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(system_router)
    v1.include_router(auth_router)
    v1.include_router(market_data_router)
    v1.include_router(market_data_udf_router)
    v1.include_router(strategies_router)
    v1.include_router(backtests_router)
    v1.include_router(stress_router)
    v1.include_router(broker_accounts_router)
    v1.include_router(deployments_router)
    v1.include_router(kill_switch_router)
    v1.include_router(confirmations_router)
    app.include_router(v1)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, media_type = render_latest()
        return Response(body, media_type=media_type)

    return app


def _build_default_app() -> FastAPI:
    os.environ.setdefault("MINSY_SERVICE", "api")
    settings = get_settings()
    configure_logging(settings.runtime.log_level, json_output=settings.runtime.log_json, service="api")
    return create_app(settings)


app = _build_default_app()
