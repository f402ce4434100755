from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import new_domain_server
from packages.core.resources import Resources

SUMMARY = "Write, validate and version trading strategies in the Minsy JSON DSL."


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "strategy", SUMMARY)
    add_capabilities_tool(server, "strategy", SUMMARY)
    return server
