"""FastAPI dependencies shared by every feature's routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from packages.core.auth.repository import UserRepository
from packages.core.errors import Forbidden, Unauthorized
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.uow import UnitOfWork
from packages.infra.observability.logging import user_id_var
from packages.infra.security.tokens import InvalidToken, decode_access_token, decode_mcp_token

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/login")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="minsy"'}


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def client_host(request: Request) -> str:
    """The TCP peer, or the client a trusted proxy forwarded (uvicorn resolves API_TRUSTED_PROXIES)."""
    return request.client.host if request.client else ""


def get_uow(resources: Annotated[Resources, Depends(get_resources)]) -> UnitOfWork:
    return resources.unit_of_work()


async def get_principal(
    resources: Annotated[Resources, Depends(get_resources)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send 'Authorization: Bearer <access token>'.", headers=_CHALLENGE)
    auth = resources.settings.auth
    try:
        claims = decode_access_token(
            credentials.credentials, secret=auth.secret_key.get_secret_value(), issuer=auth.issuer
        )
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired; refresh it.", headers=_CHALLENGE) from exc
    async with resources.session_factory() as session:
        user = await UserRepository(session).by_id(claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("The account no longer exists or is disabled.", headers=_CHALLENGE)
    user_id_var.set(str(user.id))
    return Principal(user_id=user.id)


async def get_user_principal(
    resources: Annotated[Resources, Depends(get_resources)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The signed-in user, for what only a person may do (confirm a money-moving action): an MCP
    token (what a model holds) is refused outright with 403, not just as an invalid access token."""
    if credentials is not None:
        auth = resources.settings.auth
        try:
            decode_mcp_token(
                credentials.credentials, secret=auth.mcp_token_secret.get_secret_value(), issuer=auth.issuer
            )
        except InvalidToken:
            pass
        else:
            raise Forbidden(
                "An MCP token cannot confirm actions: the user confirms in the app, signed in with their own "
                "API access token."
            )
    return await get_principal(resources, credentials)


ResourcesDep = Annotated[Resources, Depends(get_resources)]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserPrincipalDep = Annotated[Principal, Depends(get_user_principal)]


def idempotency_header(description: str) -> Any:
    """An optional ``Idempotency-Key`` header (printable ASCII, at most 200 characters)."""
    return Header(
        alias="Idempotency-Key",
        description=description,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
    )
