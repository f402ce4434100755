"""A deployment's lifecycle: which status follows which, and the one way a status or trading state
changes (recorded with who and why, announced as a ``status`` event in the same transaction).

    pending -> active -> paused -> active ...; any of them -> stopped; pending, active, paused -> error

``error`` is set by the runtime (with the reason in ``deployments.error``); from there only ``stopped``
follows. Trading states (``active``, ``reducing``, ``halted``) move freely: the risk gate decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from packages.core.errors import Conflict
from packages.core.trading.events import StatusEvent, record_event
from packages.core.uow import UnitOfWork
from packages.infra.db.models import Deployment, DeploymentTransition

TransitionField = Literal["status", "trading_state"]
Actor = Literal["user", "model", "system"]

STATUS_MOVES: dict[str, frozenset[str]] = {
    "pending": frozenset({"active", "stopped", "error"}),
    "active": frozenset({"paused", "stopped", "error"}),
    "paused": frozenset({"active", "stopped", "error"}),
    "error": frozenset({"stopped"}),
    "stopped": frozenset(),
}
TRADING_STATES = frozenset({"active", "reducing", "halted"})
# Reasons are stored in a VARCHAR(500).
_REASON_LIMIT = 500


def can_move(status: str, to_status: str) -> bool:
    return to_status in STATUS_MOVES.get(status, frozenset())


async def record_transition(
    uow: UnitOfWork,
    deployment: Deployment,
    field: TransitionField,
    to_value: str,
    *,
    actor: Actor,
    reason: str,
) -> DeploymentTransition | None:
    """Move ``deployment``'s ``field`` to ``to_value``, record the transition and emit its status
    event; nothing (None) when it already has that value. Raises ``Conflict`` for a status move the
    lifecycle does not allow. The caller holds the deployment (ideally locked FOR UPDATE)."""
    from_value = getattr(deployment, field)
    if from_value == to_value:
        return None
    if field == "status" and not can_move(from_value, to_value):
        raise Conflict(
            f"A deployment cannot go from {from_value} to {to_value}.",
            extra={"status": from_value},
        )
    if field == "trading_state" and to_value not in TRADING_STATES:
        raise ValueError(f"unknown trading state {to_value!r}")
    setattr(deployment, field, to_value)
    now = datetime.now(UTC)
    if field == "status" and to_value == "active" and deployment.started_at is None:
        deployment.started_at = now
    if field == "status" and to_value == "stopped":
        deployment.stopped_at = now
    return await _record(uow, deployment, field, from_value, to_value, actor, reason)


async def record_creation(uow: UnitOfWork, deployment: Deployment, *, actor: Actor, reason: str) -> None:
    """The first transition of a new deployment (none -> its status), with its status event."""
    await _record(uow, deployment, "status", None, deployment.status, actor, reason)


async def _record(
    uow: UnitOfWork,
    deployment: Deployment,
    field: TransitionField,
    from_value: str | None,
    to_value: str,
    actor: Actor,
    reason: str,
) -> DeploymentTransition:
    reason = reason[:_REASON_LIMIT]
    transition = DeploymentTransition(
        user_id=deployment.user_id,
        deployment_id=deployment.id,
        field=field,
        from_value=from_value,
        to_value=to_value,
        actor=actor,
        reason=reason,
    )
    uow.session.add(transition)
    await record_event(
        uow,
        deployment,
        "status",
        StatusEvent(
            field=field,
            from_value=from_value,
            to_value=to_value,
            status=deployment.status,
            trading_state=deployment.trading_state,
            actor=actor,
            reason=reason,
        ),
    )
    return transition
