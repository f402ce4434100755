from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep, idempotency_header
from apps.api.problems import problem_responses
from packages.core.idempotency import IdempotencyKey
from packages.core.trading.accounts import AccountService
from packages.core.trading.schemas import (
    AccountDetail,
    AccountList,
    CreateAccountRequest,
    DeactivateAccountRequest,
)

router = APIRouter(prefix="/broker-accounts", tags=["broker-accounts"])

READ = problem_responses(401, 404, 422)
WRITE = problem_responses(401, 404, 409, 422)

IdempotencyKeyHeader = Annotated[
    str | None,
    idempotency_header(
        "Optional, recommended: any unique string per intended account. Resending the same key and body "
        "returns the same account instead of opening a second one."
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="broker_accounts_create",
    summary="Open a paper account on the built-in simulated broker (the first becomes your default)",
    description=(
        "The starting cash is deposited as the first ledger entry. cost_models sets fees, slippage and "
        "spread per market with the backtest's assumption names (fee_bps, fee_fixed, slippage_bps, "
        "spread_bps, ...). Only paper accounts exist for now: kind 'live', an endpoint or credentials "
        "answer 422. 200 with the same account when the Idempotency-Key and body were sent before."
    ),
    responses={
        200: {"model": AccountDetail, "description": "The account this Idempotency-Key already opened"},
        **problem_responses(401, 409, 413, 422),
    },
)
async def create_account(
    body: CreateAccountRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> AccountDetail:
    async with uow:
        account, created = await AccountService(uow, principal, resources).create(
            body, IdempotencyKey.header(idempotency_key)
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return account


@router.get(
    "", operation_id="broker_accounts_list", summary="Your broker accounts, newest first", responses=READ
)
async def list_accounts(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AccountList:
    async with uow:
        return await AccountService(uow, principal, resources).list(limit=limit, cursor=cursor)


@router.get(
    "/{account_id}",
    operation_id="broker_accounts_get",
    summary="One account with its balances, computed from its ledger",
    responses=READ,
)
async def get_account(
    account_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> AccountDetail:
    async with uow:
        return await AccountService(uow, principal, resources).get(account_id)


@router.post(
    "/{account_id}/default",
    operation_id="broker_accounts_set_default",
    summary="Make an active account your default (deployments use it when they name none)",
    responses=WRITE,
)
async def set_default_account(
    account_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> AccountDetail:
    async with uow:
        return await AccountService(uow, principal, resources).set_default(account_id)


@router.post(
    "/{account_id}/deactivate",
    operation_id="broker_accounts_deactivate",
    summary="Deactivate an account (409 while a deployment on it is not stopped)",
    responses=WRITE,
)
async def deactivate_account(
    account_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    body: DeactivateAccountRequest | None = None,
) -> AccountDetail:
    async with uow:
        return await AccountService(uow, principal, resources).deactivate(
            account_id, None if body is None else body.reason
        )
