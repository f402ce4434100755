from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import new_domain_server
from packages.core.resources import Resources

SUMMARY = "Run backtests of your strategies on stored market data and read their results and analysis views."


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "backtest", SUMMARY)
    add_capabilities_tool(server, "backtest", SUMMARY)
    return server
