from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import new_domain_server
from packages.core.resources import Resources

SUMMARY = "Deploy strategies to paper trading, watch and control deployments, orders, positions and PnL."


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "trading", SUMMARY)
    add_capabilities_tool(server, "trading", SUMMARY)
    return server
