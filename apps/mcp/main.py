"""The MCP process: five tool domains at ``/{domain}/mcp`` over stateless streamable HTTP (port 8110).

``uvicorn apps.mcp.main:app``
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import AsyncIterator, Callable

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from apps.mcp.registry import tool_names
from packages.core.resources import Resources
from packages.infra.observability.logging import configure_logging
from packages.shared_settings import MCP_DOMAINS, Settings, get_settings

# Each domain's tools live in apps/mcp/domains/<domain>.py, whose ``build`` makes its server.
DOMAIN_BUILDERS: dict[str, Callable[[Resources], MCPServer]] = {
    name: importlib.import_module(f"apps.mcp.domains.{name}").build for name in MCP_DOMAINS
}


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    resources = Resources.open(settings)
    servers: dict[str, MCPServer] = {name: build(resources) for name, build in DOMAIN_BUILDERS.items()}
    security = TransportSecuritySettings(
        allowed_hosts=settings.mcp.allowed_hosts, allowed_origins=settings.mcp.allowed_origins
    )
    mounts = [
        Mount(
            f"/{name}",
            app=server.streamable_http_app(
                streamable_http_path="/mcp",
                stateless_http=True,
                json_response=True,
                transport_security=security,
                host=settings.mcp.host,
            ),
        )
        for name, server in servers.items()
    ]

    async def healthz(request: Request) -> JSONResponse:
        domains = {name: {"tools": len(await tool_names(server))} for name, server in servers.items()}
        return JSONResponse({"status": "ok", "domains": domains})

    async def protected_resource(request: Request) -> JSONResponse:
        # RFC 9728 metadata at the root path the 401 challenge advertises (the SDK serves it only
        # inside each mounted domain app).
        domain = request.path_params["domain"]
        if domain not in servers:
            return JSONResponse({"error": "unknown domain"}, status_code=404)
        return JSONResponse(
            {
                "resource": settings.mcp.domain_url(domain),
                "authorization_servers": [settings.api.public_url],
                "scopes_supported": [f"mcp:{domain}"],
                "bearer_methods_supported": ["header"],
                "resource_documentation": f"{settings.api.public_url}/api/v1/docs#/auth/auth_mcp_token",
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Mounted sub-apps' lifespans do not run: start each domain's session manager here.
        async with contextlib.AsyncExitStack() as stack:
            for server in servers.values():
                await stack.enter_async_context(server.session_manager.run())
            try:
                yield
            finally:
                await resources.close()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/.well-known/oauth-protected-resource/{domain}/mcp", protected_resource),
            *mounts,
        ],
        lifespan=lifespan,
    )
    app.state.servers = servers
    app.state.resources = resources
    return app


def _build_default_app() -> Starlette:
    os.environ.setdefault("MINSY_SERVICE", "mcp")
    settings = get_settings()
    configure_logging(settings.runtime.log_level, json_output=settings.runtime.log_json, service="mcp")
    return create_app(settings)


app = _build_default_app()
