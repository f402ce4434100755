from __future__ import annotations

from fastapi import APIRouter, Request, status

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep, client_host
from apps.api.problems import problem_responses
from packages.core.auth.limits import limit_attempts
from packages.core.auth.schemas import (
    AuthResponse,
    LoginRequest,
    McpTokenRequest,
    McpTokenResponse,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserOut,
)
from packages.core.auth.service import AuthService

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    operation_id="auth_register",
    summary="Create an account and log in",
    responses=problem_responses(409, 413, 422, 429),
)
async def register(
    body: RegisterRequest, request: Request, uow: UowDep, resources: ResourcesDep
) -> AuthResponse:
    await limit_attempts(resources, "register", client_host(request), email=body.email)
    async with uow:
        return await AuthService(uow, resources.settings).register(
            body.email, body.password, body.display_name
        )


@router.post(
    "/login",
    operation_id="auth_login",
    summary="Exchange email and password for an access and a refresh token",
    responses=problem_responses(401, 413, 422, 429),
)
async def login(body: LoginRequest, request: Request, uow: UowDep, resources: ResourcesDep) -> AuthResponse:
    await limit_attempts(resources, "login", client_host(request), email=body.email)
    async with uow:
        return await AuthService(uow, resources.settings).login(body.email, body.password)


@router.post(
    "/refresh",
    operation_id="auth_refresh",
    summary="Rotate a refresh token: returns a new pair; the old refresh token stops working",
    responses=problem_responses(401, 413, 422, 429),
)
async def refresh(body: RefreshRequest, request: Request, uow: UowDep, resources: ResourcesDep) -> TokenPair:
    await limit_attempts(resources, "refresh", client_host(request))
    async with uow:
        return await AuthService(uow, resources.settings).refresh(body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="auth_logout",
    summary="Revoke every refresh token of this login",
    responses=problem_responses(413, 422),
)
async def logout(body: RefreshRequest, uow: UowDep, resources: ResourcesDep) -> None:
    async with uow:
        await AuthService(uow, resources.settings).logout(body.refresh_token)


@router.get("/me", operation_id="auth_me", summary="The logged-in user", responses=problem_responses(401))
async def me(principal: PrincipalDep, uow: UowDep, resources: ResourcesDep) -> UserOut:
    async with uow:
        return await AuthService(uow, resources.settings).me(principal)


@router.post(
    "/mcp-token",
    status_code=status.HTTP_201_CREATED,
    operation_id="auth_mcp_token",
    summary="Issue a short-lived token for the MCP servers (optionally bound to a chat session)",
    description=(
        "Use the token as 'Authorization: Bearer <token>' with any MCP client (for example a desktop "
        "assistant) against the returned server URLs. Tools then act as you, and only on your objects."
    ),
    responses=problem_responses(401, 404, 413, 422),
)
async def mcp_token(
    principal: PrincipalDep, uow: UowDep, resources: ResourcesDep, body: McpTokenRequest | None = None
) -> McpTokenResponse:
    body = body or McpTokenRequest()
    async with uow:
        return await AuthService(uow, resources.settings).issue_mcp_token(
            principal, body.session_id, body.domains, body.ttl_minutes
        )
