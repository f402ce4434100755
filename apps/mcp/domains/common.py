"""What every domain server offers besides its own tools."""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from apps.mcp.auth import principal_of
from apps.mcp.registry import tool_names


class Capabilities(BaseModel):
    domain: str
    summary: str
    tools: list[str] = Field(description="Every tool this domain offers.")
    user_id: str = Field(description="The user the presented token acts for.")
    session_id: str | None = Field(description="The chat session the token is bound to, if any.")


def add_capabilities_tool(server: MCPServer, domain: str, summary: str) -> None:
    @server.tool(
        name="capabilities",
        description=f"Describe the {domain} domain: what it is for and which tools it offers. Call it first when unsure.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False),
    )
    async def capabilities(ctx: Context) -> Capabilities:
        principal = principal_of(ctx)
        return Capabilities(
            domain=domain,
            summary=summary,
            tools=await tool_names(server),
            user_id=str(principal.user_id),
            session_id=str(principal.session_id) if principal.session_id else None,
        )
