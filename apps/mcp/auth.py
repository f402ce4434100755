"""Every MCP call carries a short-lived signed token bound to a user (and maybe a chat session).

The token arrives as ``Authorization: Bearer``; the SDK's bearer middleware asks this verifier and
answers 401 (with RFC 9728 protected-resource metadata) when it returns nothing. There is no
fallback to ids supplied by the caller.
"""

from __future__ import annotations

import uuid

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from packages.core.auth.repository import UserRepository
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.infra.security.tokens import InvalidToken, decode_mcp_token

CLIENT_ID = "minsy-mcp-token"


class McpTokenVerifier:
    def __init__(self, resources: Resources, domain: str) -> None:
        self.resources = resources
        self.domain = domain

    async def verify_token(self, token: str) -> AccessToken | None:
        auth = self.resources.settings.auth
        try:
            claims = decode_mcp_token(
                token, secret=auth.mcp_token_secret.get_secret_value(), issuer=auth.issuer
            )
        except InvalidToken:
            return None
        if self.domain not in claims.domains:
            return None
        async with self.resources.session_factory() as session:
            user = await UserRepository(session).by_id(claims.user_id)
        if user is None or not user.is_active:
            return None
        return AccessToken(
            token=token,
            client_id=CLIENT_ID,
            scopes=[f"mcp:{d}" for d in claims.domains],
            expires_at=int(claims.expires_at.timestamp()),
            subject=str(claims.user_id),
            claims={"sid": str(claims.session_id) if claims.session_id else None, "jti": claims.token_id},
        )


def principal_of(ctx: Context) -> Principal:
    """The caller of the current tool call, from the verified token."""
    token = get_access_token()
    if token is None:
        request = ctx.request_context.request
        user = getattr(request, "scope", {}).get("user") if request is not None else None
        token = getattr(user, "access_token", None)
    if token is None or token.subject is None:
        raise ToolError("Not authenticated: call with 'Authorization: Bearer <MCP token>'.")
    session = (token.claims or {}).get("sid")
    return Principal(user_id=uuid.UUID(token.subject), session_id=uuid.UUID(session) if session else None)
