"""Builds the MCP server of each domain with the shared auth settings and error translation."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from apps.mcp.auth import McpTokenVerifier
from packages.core.errors import AppError
from packages.core.resources import Resources
from packages.core.system.service import APP_VERSION


def new_domain_server(resources: Resources, domain: str, instructions: str) -> MCPServer:
    settings = resources.settings
    return MCPServer(
        name=f"minsy-{domain}",
        version=APP_VERSION,
        instructions=instructions,
        token_verifier=McpTokenVerifier(resources, domain),
        auth=AuthSettings(
            issuer_url=settings.api.public_url,  # type: ignore[arg-type]
            resource_server_url=settings.mcp.domain_url(domain),  # type: ignore[arg-type]
            required_scopes=[f"mcp:{domain}"],
            # The verifier itself checks that the token names this domain.
            validate_token_resource=False,
        ),
    )


def domain_errors[**P, R](fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Domain failures become ``isError`` results with a message the model can act on."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AppError as exc:
            details = "; ".join(f"{e.pointer or '/'}: {e.message} [{e.code}]" for e in exc.errors)
            raise ToolError(f"{exc.code}: {exc.detail}" + (f" ({details})" if details else "")) from exc

    # Resolve string annotations now, against the tool module: the SDK would look in this module.
    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper


async def tool_names(server: MCPServer) -> list[str]:
    return sorted(tool.name for tool in await server.list_tools())
