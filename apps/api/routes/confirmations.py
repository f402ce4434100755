from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from apps.api.deps import ResourcesDep, UowDep, UserPrincipalDep
from apps.api.problems import problem_responses
from packages.core.trading.confirmations import ConfirmationBook
from packages.core.trading.schemas import ConfirmationOut, ConfirmedOut, ConfirmRequest
from packages.core.trading.service import DeploymentService

router = APIRouter(prefix="/confirmations", tags=["confirmations"])

Token = Annotated[
    str,
    Path(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$", description="The token of a preview"),
]


@router.get(
    "/{token}",
    operation_id="confirmations_get",
    summary="The action a confirmation token waits for (preview, status, expiry)",
    description="With your API access token only: an MCP token answers 403.",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_confirmation(
    token: Token, principal: UserPrincipalDep, uow: UowDep, resources: ResourcesDep
) -> ConfirmationOut:
    async with uow:
        return await ConfirmationBook(uow, principal, resources.settings, actor="user").show(token)


@router.post(
    "/{token}",
    operation_id="confirmations_confirm",
    summary="Confirm a money-moving action: it runs now, once",
    description=(
        "Runs the exact action previewed when the token was issued (creating or starting a deployment, "
        "a manual open, raising risk limits). Only with your API access token: an MCP token answers "
        "403, so a model holding tool access cannot confirm for you. 409 when the token was used, has "
        "expired, the state the action was computed from has changed (ask for a new confirmation), "
        "or action_hash names another action than the token's."
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def confirm(
    token: Token,
    principal: UserPrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    body: ConfirmRequest | None = None,
) -> ConfirmedOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).confirm(
            token, None if body is None else body.action_hash
        )
