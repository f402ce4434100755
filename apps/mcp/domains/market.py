from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import new_domain_server
from packages.core.resources import Resources

SUMMARY = "Find symbols, coverage, candles and regime snapshots in the market-data store; fill data gaps."


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "market", SUMMARY)
    add_capabilities_tool(server, "market", SUMMARY)
    return server
