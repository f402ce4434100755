from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep, idempotency_header
from apps.api.problems import problem_responses
from packages.core.errors import FieldError, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.core.trading.events import DeploymentEventOut, event_schemas
from packages.core.trading.schemas import (
    ConfirmationRequired,
    ConfirmedOut,
    CreateDeploymentRequest,
    DeploymentList,
    DeploymentOut,
    DeploymentStatus,
    FillPage,
    ManualActionOut,
    ManualActionPage,
    ManualActionRequest,
    OrderPage,
    PnlSeriesOut,
    PositionPage,
    ReadinessOut,
    RiskDecisionPage,
    RiskLimits,
    SignalPage,
    TransitionPage,
    TransitionRequest,
)
from packages.core.trading.service import DeploymentService
from packages.core.trading.stream import DeploymentStream

router = APIRouter(prefix="/deployments", tags=["deployments"])

READ = problem_responses(401, 404, 422)
WRITE = problem_responses(401, 404, 409, 422)
CONFIRMATION = {
    202: {"model": ConfirmationRequired, "description": "Nothing happened yet: confirm the preview"}
}

IdempotencyKeyHeader = Annotated[
    str | None,
    idempotency_header(
        "Optional, recommended: any unique string per intended deployment. Resending the same key and "
        "body returns the same confirmation (with a fresh token; the earlier one stops working) or, once "
        "confirmed, the deployment it created."
    ),
]
PageLimit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
# SSE ids are decimal sequence numbers; the largest a BIGINT holds.
_MAX_SEQ = 2**63 - 1


@router.get(
    "/events/schema",
    operation_id="deployments_event_schema",
    summary="JSON Schema of the live stream's events: the envelope and each type's payload",
    responses=problem_responses(401),
)
async def event_schema(principal: PrincipalDep) -> dict[str, Any]:
    return event_schemas()


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deployments_create",
    summary="Propose a deployment of a strategy revision to a paper account: returns a confirmation",
    description=(
        "Nothing is created yet: the answer (202) previews the exact deployment (strategy version "
        "pinned, default: current; account, default: your default account; capital; risk limits; "
        "clock) with a single-use confirmation token. POST /api/v1/confirmations/{token} with your API "
        "access token creates it, pending. 200 with the created deployment when the Idempotency-Key "
        "was already confirmed."
    ),
    responses={
        200: {"model": ConfirmedOut, "description": "What this Idempotency-Key's confirmed request created"},
        202: {"model": ConfirmationRequired, "description": "The preview and its confirmation token"},
        **problem_responses(401, 409, 413, 422, 429),
    },
)
async def create_deployment(
    body: CreateDeploymentRequest,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> ConfirmationRequired | ConfirmedOut:
    async with uow:
        outcome = await DeploymentService(uow, principal, resources).request_create(
            body, IdempotencyKey.header(idempotency_key)
        )
    if isinstance(outcome, ConfirmedOut):
        response.status_code = status.HTTP_200_OK
    return outcome


@router.get("", operation_id="deployments_list", summary="Your deployments, newest first", responses=READ)
async def list_deployments(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
    status_filter: Annotated[DeploymentStatus | None, Query(alias="status")] = None,
) -> DeploymentList:
    async with uow:
        return await DeploymentService(uow, principal, resources).list(
            limit=limit, cursor=cursor, status=status_filter
        )


@router.get(
    "/{deployment_id}",
    operation_id="deployments_get",
    summary="Status, trading state, last bar, cycles, PnL summary, kill switches in force",
    responses=READ,
)
async def get_deployment(
    deployment_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> DeploymentOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).get(deployment_id)


@router.get(
    "/{deployment_id}/readiness",
    operation_id="deployments_readiness",
    summary="Can it start? Every check, and what is missing in plain words",
    responses=READ,
)
async def readiness(
    deployment_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> ReadinessOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).readiness(deployment_id)


@router.post(
    "/{deployment_id}/start",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deployments_start",
    summary="Propose starting (or resuming) a deployment: returns a confirmation",
    description=(
        "pending or paused -> active once confirmed (POST /api/v1/confirmations/{token}). 409 with "
        "`problems` when the deployment is not ready (see /readiness)."
    ),
    responses={**CONFIRMATION, **WRITE},
)
async def start_deployment(
    deployment_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> ConfirmationRequired | ConfirmedOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).request_start(deployment_id)


@router.post(
    "/{deployment_id}/pause",
    operation_id="deployments_pause",
    summary="Pause at once (active -> paused): no cycle runs until it is started again",
    responses=WRITE,
)
async def pause_deployment(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    body: TransitionRequest | None = None,
) -> DeploymentOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).pause(
            deployment_id, None if body is None else body.reason
        )


@router.post(
    "/{deployment_id}/stop",
    operation_id="deployments_stop",
    summary="Stop for good, at once (pending manual actions are canceled)",
    responses=WRITE,
)
async def stop_deployment(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    body: TransitionRequest | None = None,
) -> DeploymentOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).stop(
            deployment_id, None if body is None else body.reason
        )


@router.put(
    "/{deployment_id}/risk-limits",
    operation_id="deployments_set_risk_limits",
    summary="Replace the risk limits: tighter ones apply at once (200), raising any needs confirmation (202)",
    responses={**CONFIRMATION, **WRITE},
)
async def set_risk_limits(
    deployment_id: uuid.UUID,
    body: RiskLimits,
    response: Response,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
) -> DeploymentOut | ConfirmationRequired | ConfirmedOut:
    async with uow:
        outcome = await DeploymentService(uow, principal, resources).update_risk_limits(deployment_id, body)
    if isinstance(outcome, ConfirmationRequired):
        response.status_code = status.HTTP_202_ACCEPTED
    return outcome


@router.post(
    "/{deployment_id}/actions",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deployments_manual_action",
    summary="A manual action: close, reduce, flatten, cancel_order at once; open needs confirmation",
    description=(
        "close, reduce, flatten and cancel_order are recorded at once and carried out by the next "
        "cycle through the risk gate (see /actions for their outcome). open (or increase) answers a "
        "confirmation preview first."
    ),
    responses=WRITE,
)
async def manual_action(
    deployment_id: uuid.UUID,
    body: ManualActionRequest,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
) -> ManualActionOut | ConfirmationRequired | ConfirmedOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).manual_action(deployment_id, body)


@router.get(
    "/{deployment_id}/actions",
    operation_id="deployments_manual_actions",
    summary="Manual actions of a deployment, newest first, with what the cycle did with them",
    responses=READ,
)
async def list_manual_actions(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> ManualActionPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).manual_actions(
            deployment_id, limit=limit, cursor=cursor
        )


@router.get(
    "/{deployment_id}/orders",
    operation_id="deployments_orders",
    summary="Orders, newest first",
    responses=READ,
)
async def list_orders(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
    status_filter: Annotated[
        str | None,
        Query(alias="status", pattern="^(new|accepted|partially_filled|filled|canceled|rejected|expired)$"),
    ] = None,
) -> OrderPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).orders(
            deployment_id, limit=limit, cursor=cursor, status=status_filter
        )


@router.get(
    "/{deployment_id}/fills", operation_id="deployments_fills", summary="Fills, newest first", responses=READ
)
async def list_fills(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> FillPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).fills(
            deployment_id, limit=limit, cursor=cursor
        )


@router.get(
    "/{deployment_id}/positions",
    operation_id="deployments_positions",
    summary="Positions by symbol (open ones only unless open_only=false)",
    responses=READ,
)
async def list_positions(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
    open_only: bool = True,
) -> PositionPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).positions(
            deployment_id, limit=limit, cursor=cursor, open_only=open_only
        )


@router.get(
    "/{deployment_id}/pnl",
    operation_id="deployments_pnl",
    summary="Equity and drawdown for a chart (times and arrays, downsampled keeping extremes)",
    responses=READ,
)
async def pnl(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    start: Annotated[datetime | None, Query(description="Bars from (UTC)")] = None,
    end: Annotated[datetime | None, Query(description="Bars before (UTC)")] = None,
    points: Annotated[int | None, Query(ge=10, le=20_000)] = None,
) -> PnlSeriesOut:
    async with uow:
        return await DeploymentService(uow, principal, resources).pnl(
            deployment_id, start=start, end=end, points=points
        )


@router.get(
    "/{deployment_id}/signals",
    operation_id="deployments_signals",
    summary="Signals, newest first",
    responses=READ,
)
async def list_signals(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> SignalPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).signals(
            deployment_id, limit=limit, cursor=cursor
        )


@router.get(
    "/{deployment_id}/risk-log",
    operation_id="deployments_risk_log",
    summary="Every risk decision: the rule that decided and the numbers it compared, newest first",
    responses=READ,
)
async def risk_log(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> RiskDecisionPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).risk_log(
            deployment_id, limit=limit, cursor=cursor
        )


@router.get(
    "/{deployment_id}/transitions",
    operation_id="deployments_transitions",
    summary="Every status and trading-state change with who made it and why, newest first",
    responses=READ,
)
async def list_transitions(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> TransitionPage:
    async with uow:
        return await DeploymentService(uow, principal, resources).transitions(
            deployment_id, limit=limit, cursor=cursor
        )


def _last_event_id(header: str | None, query: int | None) -> int:
    """Where the stream resumes: the ``Last-Event-ID`` header (an EventSource reconnecting), else
    ``?last_event_id=``, else the beginning."""
    if header is None:
        return query or 0
    value = header.strip()
    if not value.isdigit() or int(value) > _MAX_SEQ:
        raise ValidationFailed(
            "Last-Event-ID must be the id of an event of this stream (a whole number).",
            errors=[FieldError("invalid_last_event_id", "/header/Last-Event-ID", "a whole number")],
        )
    return int(value)


async def _open_stream(
    deployment_id: uuid.UUID,
    principal: PrincipalDep,
    resources: ResourcesDep,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
    last_event_id: Annotated[int | None, Query(ge=0, le=_MAX_SEQ)] = None,
) -> AsyncIterator[DeploymentStream]:
    """The stream, subscribed, before the response starts: another user's deployment is a 404."""
    stream = DeploymentStream(
        resources, principal, deployment_id, _last_event_id(last_event_id_header, last_event_id)
    )
    await stream.open()
    try:
        yield stream
    finally:
        await stream.close()


@router.get(
    "/{deployment_id}/stream",
    response_class=EventSourceResponse,
    operation_id="deployments_stream",
    summary="Live events (SSE): everything after Last-Event-ID, then as it happens",
    description=(
        "Server-sent events: `id` is the event's seq, `event` its type (status, signal, order, fill, "
        "position, pnl, risk), `data` the JSON envelope (schemas: /deployments/events/schema). On "
        "connect every stored event after `Last-Event-ID` (header; or ?last_event_id=) is sent in order, "
        "then live ones, each exactly once. A comment line is sent as a heartbeat when idle."
    ),
    responses=READ,
)
async def stream_events(
    stream: Annotated[DeploymentStream, Depends(_open_stream)],
) -> AsyncIterator[ServerSentEvent]:
    async for event in stream.events():
        if event is None:
            yield ServerSentEvent(comment="heartbeat")
        else:
            yield _sse(event)


def _sse(event: DeploymentEventOut) -> ServerSentEvent:
    return ServerSentEvent(id=str(event.seq), event=event.type, data=event)
