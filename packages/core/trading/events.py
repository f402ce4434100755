"""A deployment's live view: numbered events written with the change they report, then published.

``record_event`` takes the deployment's next sequence number (``deployments.events``, incremented
under the row's lock, so numbers are gap-free and committed in order: when event ``n`` is visible,
so is every event before it), stores the event and writes an outbox message of kind ``event`` for
the Redis channel ``deployment:{id}`` in the same transaction. Subscribers (the SSE stream) receive
it after the commit; one who missed it reads it from ``deployment_events`` by its ``seq``.

Every type has a payload model; ``event_schemas()`` is the JSON Schema of each (served at
``GET /api/v1/deployments/events/schema``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from packages.core.uow import UnitOfWork
from packages.infra.db.models import (
    Deployment,
    DeploymentEvent,
    Fill,
    Order,
    PnlSnapshot,
    Position,
    RiskDecision,
    SignalEvent,
)

EventType = Literal["status", "signal", "order", "fill", "position", "pnl", "risk"]


def channel(deployment_id: uuid.UUID) -> str:
    """The Redis pub/sub channel of a deployment's events."""
    return f"deployment:{deployment_id}"


class StatusEvent(BaseModel):
    """The deployment's status or trading state changed."""

    field: Literal["status", "trading_state"]
    from_value: str | None
    to_value: str
    status: str = Field(description="The deployment's status after the change.")
    trading_state: str = Field(description="Its trading state after the change.")
    actor: Literal["user", "model", "system"]
    reason: str


class SignalEventPayload(BaseModel):
    """The strategy signalled on a closed bar."""

    signal_id: uuid.UUID | None = None
    symbol: str
    kind: str = Field(description="entry, exit, ... as the cycle names it.")
    side: str | None = None
    bar_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)


class OrderEvent(BaseModel):
    """An order was created or changed state (new, accepted, partially_filled, filled, canceled,
    rejected, expired)."""

    order_id: uuid.UUID
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    purpose: str
    status: str
    quantity: float | None
    filled_quantity: float
    average_fill_price: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    reason: str | None = None
    bar_at: datetime


class FillEvent(BaseModel):
    fill_id: uuid.UUID
    order_id: uuid.UUID
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    slippage: float
    filled_at: datetime


class PositionEvent(BaseModel):
    """A position after a fill (quantity 0: closed)."""

    symbol: str
    quantity: float
    average_price: float | None
    realized_pnl: float


class PnlEvent(BaseModel):
    bar_at: datetime
    equity: float
    cash: float
    realized_pnl: float
    unrealized_pnl: float
    positions_value: float
    drawdown: float = Field(description="Fraction below the equity peak (<= 0).")


class RiskEvent(BaseModel):
    """A risk decision worth showing: an order refused, a trading-state change, a kill switch."""

    rule: str
    allowed: bool
    message: str
    compared: dict[str, Any] = Field(default_factory=dict, description="The numbers the rule compared.")
    client_order_id: str | None = None
    bar_at: datetime | None = None


EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    "status": StatusEvent,
    "signal": SignalEventPayload,
    "order": OrderEvent,
    "fill": FillEvent,
    "position": PositionEvent,
    "pnl": PnlEvent,
    "risk": RiskEvent,
}


class DeploymentEventOut(BaseModel):
    """One event as the stream sends it (the SSE ``data``; its ``id`` is ``seq``, its ``event`` the type)."""

    deployment_id: uuid.UUID
    seq: int = Field(description="1, 2, 3... per deployment, with no gaps: resume after the last one seen.")
    type: EventType
    at: datetime = Field(description="When the event was recorded (UTC).")
    payload: dict[str, Any] = Field(description="The type's payload (see the schema of each type).")


def event_schemas() -> dict[str, Any]:
    """The envelope's JSON Schema and each type's payload schema."""
    return {
        "envelope": DeploymentEventOut.model_json_schema(),
        "types": {name: model.model_json_schema() for name, model in EVENT_PAYLOADS.items()},
    }


def event_out(row: DeploymentEvent) -> DeploymentEventOut:
    return DeploymentEventOut(
        deployment_id=row.deployment_id,
        seq=row.seq,
        type=row.type,
        at=row.created_at,
        payload=row.payload,
    )


async def record_event(
    uow: UnitOfWork,
    deployment: Deployment,
    type: EventType,
    payload: BaseModel | Mapping[str, Any],
) -> DeploymentEvent:
    """Store the deployment's next event and publish it on ``deployment:{id}`` after the commit.

    Takes the row lock of the deployment until the transaction ends (the sequence number is taken
    with an UPDATE), so call it after the changes it reports, late in the transaction."""
    model = EVENT_PAYLOADS[type]
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else dict(payload)
    body = model.model_validate(data).model_dump(mode="json")
    seq = await uow.session.scalar(
        update(Deployment)
        .where(Deployment.id == deployment.id)
        .values(events=Deployment.events + 1)
        .returning(Deployment.events)
        .execution_options(synchronize_session=False)
    )
    if seq is None:
        raise LookupError(f"deployment {deployment.id} does not exist")
    set_committed_value(deployment, "events", seq)
    at = datetime.now(UTC)
    event = DeploymentEvent(
        user_id=deployment.user_id,
        deployment_id=deployment.id,
        seq=seq,
        type=type,
        payload=body,
        created_at=at,
    )
    uow.session.add(event)
    uow.publish_event(channel(deployment.id), event_out(event).model_dump(mode="json"))
    return event


# --- payloads from the rows the cycle writes --------------------------------------------------------


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def order_event(order: Order) -> OrderEvent:
    return OrderEvent(
        order_id=order.id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        purpose=order.purpose,
        status=order.status,
        quantity=_number(order.quantity),
        filled_quantity=float(order.filled_quantity or 0),
        average_fill_price=_number(order.average_fill_price),
        limit_price=_number(order.limit_price),
        stop_price=_number(order.stop_price),
        reason=order.reason,
        bar_at=order.bar_at,
    )


def fill_event(fill: Fill) -> FillEvent:
    return FillEvent(
        fill_id=fill.id,
        order_id=fill.order_id,
        symbol=fill.symbol,
        side=fill.side,
        quantity=float(fill.quantity),
        price=float(fill.price),
        fee=float(fill.fee or 0),
        slippage=float(fill.slippage or 0),
        filled_at=fill.filled_at,
    )


def position_event(position: Position) -> PositionEvent:
    return PositionEvent(
        symbol=position.symbol,
        quantity=float(position.quantity or 0),
        average_price=_number(position.average_price),
        realized_pnl=float(position.realized_pnl or 0),
    )


def pnl_event(snapshot: PnlSnapshot) -> PnlEvent:
    return PnlEvent(
        bar_at=snapshot.bar_at,
        equity=float(snapshot.equity),
        cash=float(snapshot.cash),
        realized_pnl=float(snapshot.realized_pnl),
        unrealized_pnl=float(snapshot.unrealized_pnl),
        positions_value=float(snapshot.positions_value),
        drawdown=float(snapshot.drawdown),
    )


def risk_event(decision: RiskDecision) -> RiskEvent:
    return RiskEvent(
        rule=decision.rule,
        allowed=decision.allowed,
        message=decision.message,
        compared=decision.compared,
        client_order_id=decision.client_order_id,
        bar_at=decision.bar_at,
    )


def signal_event(signal: SignalEvent) -> SignalEventPayload:
    return SignalEventPayload(
        signal_id=signal.id,
        symbol=signal.symbol,
        kind=signal.kind,
        side=signal.side,
        bar_at=signal.bar_at,
        details=signal.payload,
    )
