from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep
from apps.api.problems import problem_responses
from packages.core.trading.kill_switch import KillSwitchService
from packages.core.trading.schemas import KillSwitchList, KillSwitchOut, KillSwitchRequest, QueryReason

router = APIRouter(prefix="/kill-switch", tags=["kill-switch"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="kill_switch_set",
    summary="Stop new orders at once: one deployment or all of yours (optionally closing positions)",
    description=(
        "Acts without confirmation: the next cycle of every deployment it covers halts trading and, with "
        "flatten, closes every position. 200 with the switch already in force for the same target. The "
        "global scope is for operators (`minsy trading kill-switch --global on`): 403 here."
    ),
    responses={
        200: {"model": KillSwitchOut, "description": "The switch already in force for this target"},
        **problem_responses(401, 403, 404, 422),
    },
)
async def set_kill_switch(
    body: KillSwitchRequest, response: Response, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> KillSwitchOut:
    async with uow:
        switch, created = await KillSwitchService(uow, principal, resources).set(body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return switch


@router.get(
    "",
    operation_id="kill_switch_list",
    summary="The kill switches in force over your deployments (yours and the global one)",
    responses=problem_responses(401),
)
async def list_kill_switches(principal: PrincipalDep, uow: UowDep, resources: ResourcesDep) -> KillSwitchList:
    async with uow:
        return await KillSwitchService(uow, principal, resources).in_force()


@router.delete(
    "/{switch_id}",
    operation_id="kill_switch_clear",
    summary="Clear one of your kill switches (trading resumes at the next cycle)",
    responses=problem_responses(401, 403, 404, 422),
)
async def clear_kill_switch(
    switch_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    reason: Annotated[QueryReason | None, Query(description="Why it is cleared (audited)")] = None,
) -> KillSwitchOut:
    async with uow:
        return await KillSwitchService(uow, principal, resources).clear(switch_id, reason)
