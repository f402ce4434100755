from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import new_domain_server
from packages.core.resources import Resources

SUMMARY = "Stress-test strategies: crisis windows, Monte Carlo, parameter sensitivity, optimisation and walk-forward."


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "stress", SUMMARY)
    add_capabilities_tool(server, "stress", SUMMARY)
    return server
