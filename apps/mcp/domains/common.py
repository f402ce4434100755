"""What every domain server offers besides its own tools."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from apps.mcp.auth import principal_of
from apps.mcp.registry import tool_names
from packages.core.errors import FieldError, ValidationFailed


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


def _pointer(error: Any) -> str:
    """The error's location as a JSON pointer; a model-level check (unstorable text) names the value
    inside the model in its context."""
    parts = "".join(f"/{part}" for part in error["loc"])
    return parts + str((error.get("ctx") or {}).get("pointer", ""))


def validated[ModelT: BaseModel](model: type[ModelT], noun: str, **fields: Any) -> ModelT:
    """A request model from a tool's arguments (None: not given); problems as ``ValidationFailed``
    with a pointer to each argument, which ``domain_errors`` turns into the tool's error message."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise ValidationFailed(
            f"The {noun} request is not valid.",
            errors=[
                FieldError(error["type"], _pointer(error) or "/", error["msg"]) for error in exc.errors()
            ],
        ) from exc
