"""Names the whole stack shares, declared once."""

from __future__ import annotations

from typing import Final

# The MCP tool domains, each served at /{domain}/mcp by the one MCP process.
MCP_DOMAINS: Final = ("strategy", "backtest", "market", "stress", "trading")
