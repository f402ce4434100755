"""Kill switches: a stop on new orders for one deployment, all of a user's, or everyone's.

A switch acts at once and needs no confirmation (it only makes things safer): it is stored, audited,
and the next cycle of every deployment it covers reads it (``KillSwitchRepository.
in_force_for_deployment``), halts trading and, with ``flatten``, closes every position. One switch is
in force per target; setting it again returns that one (asking to flatten upgrades it). Users set
and clear their deployment- and user-level switches; the global switch belongs to operators, who
set it with ``minsy trading kill-switch --global on|off`` (there is no admin role in the API, which
answers 403 to a user asking for the global scope).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from packages.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.trading.events import RiskEvent, record_event
from packages.core.trading.repository import AuditRepository, DeploymentRepository, KillSwitchRepository
from packages.core.trading.schemas import Actor, KillSwitchList, KillSwitchOut, KillSwitchRequest
from packages.core.trading.views import kill_switch_out
from packages.core.uow import UnitOfWork
from packages.infra.db.models import Deployment, KillSwitch

GLOBAL_REFUSED = (
    "Only an operator can set or clear the global kill switch (minsy trading kill-switch --global on|off); "
    "use scope 'user' to stop all of your deployments."
)


async def _announce(
    uow: UnitOfWork, deployments: list[Deployment], switch: KillSwitch, *, cleared: bool
) -> None:
    """A ``risk`` event on the live stream of each deployment the switch covers."""
    what = "cleared" if cleared else "set" + (" (positions will be closed)" if switch.flatten else "")
    for deployment in deployments:
        await record_event(
            uow,
            deployment,
            "risk",
            RiskEvent(
                rule="kill_switch",
                allowed=cleared,
                message=f"A {switch.scope} kill switch was {what}: {switch.reason}",
                compared={"scope": switch.scope, "kill_switch_id": str(switch.id), "flatten": switch.flatten},
            ),
        )


class KillSwitchService:
    def __init__(
        self, uow: UnitOfWork, principal: Principal, resources: Resources, *, actor: Actor = "user"
    ) -> None:
        self.uow = uow
        self.principal = principal
        self.actor = actor
        self.repo = KillSwitchRepository(uow.session)
        self.deployments = DeploymentRepository(uow.session, principal.user_id)
        self.audit = AuditRepository(uow.session)

    async def in_force(self) -> KillSwitchList:
        """Every switch in force over the caller's deployments (theirs and the global ones)."""
        switches = await self.repo.in_force_for_user(self.principal.user_id)
        return KillSwitchList(items=[kill_switch_out(s) for s in switches])

    async def set(self, body: KillSwitchRequest) -> tuple[KillSwitchOut, bool]:
        """The switch in force for the target: a new one (True) or the one already set (False)."""
        if body.scope == "global":
            raise Forbidden(GLOBAL_REFUSED)
        covered: list[Deployment]
        if body.scope == "deployment":
            if body.deployment_id is None:
                raise ValidationFailed(
                    "A deployment kill switch names the deployment.",
                    errors=[FieldError("missing", "/deployment_id", "required for scope 'deployment'")],
                )
            deployment = await self.deployments.get(body.deployment_id, for_update=True)
            covered = [deployment]
            target: tuple[uuid.UUID | None, uuid.UUID | None] = (self.principal.user_id, deployment.id)
        else:
            if body.deployment_id is not None:
                raise ValidationFailed(
                    "A user kill switch covers all your deployments; it names none.",
                    errors=[FieldError("not_allowed", "/deployment_id", "remove it for scope 'user'")],
                )
            covered = await self.deployments.running()
            target = (self.principal.user_id, None)
        await self.repo.lock()
        existing = await self.repo.in_force(body.scope, *target)
        details = {"flatten": body.flatten, "reason": body.reason, **self._session_detail()}
        if existing is not None:
            if body.flatten and not existing.flatten:
                existing.flatten = True
                await self.uow.session.flush()
                await self._audit(existing, "flatten", details)
                await _announce(self.uow, covered, existing, cleared=False)
            return kill_switch_out(existing), False
        switch = await self.repo.add(
            KillSwitch(
                scope=body.scope,
                user_id=target[0],
                deployment_id=target[1],
                flatten=body.flatten,
                reason=body.reason,
                set_by=self.actor,
            )
        )
        await self._audit(switch, "set", details)
        await _announce(self.uow, covered, switch, cleared=False)
        return kill_switch_out(switch), True

    async def clear(self, switch_id: uuid.UUID, reason: str | None) -> KillSwitchOut:
        await self.repo.lock()
        switch = await self.repo.visible(switch_id, self.principal.user_id, for_update=True)
        if switch is None:
            raise NotFound(f"No kill switch with id {switch_id}.")
        if switch.scope == "global":
            raise Forbidden(GLOBAL_REFUSED)
        if switch.cleared_at is None:
            switch.cleared_at = datetime.now(UTC)
            switch.cleared_by = self.actor
            await self.uow.session.flush()
            await self._audit(switch, "clear", {"reason": reason, **self._session_detail()})
            covered = (
                [await self.deployments.get(switch.deployment_id)]
                if switch.deployment_id is not None
                else await self.deployments.running()
            )
            await _announce(self.uow, covered, switch, cleared=True)
        return kill_switch_out(switch)

    def _session_detail(self) -> dict[str, Any]:
        session = self.principal.session_id
        return {} if session is None else {"chat_session_id": str(session)}

    async def _audit(self, switch: KillSwitch, action: str, details: dict[str, Any]) -> None:
        await self.audit.add(
            user_id=self.principal.user_id,
            actor=self.actor,
            subject="kill_switch",
            subject_id=switch.id,
            action=action,
            details={"scope": switch.scope, "deployment_id": str(switch.deployment_id), **details},
        )


async def set_global(
    uow: UnitOfWork, operator: str, reason: str, *, flatten: bool
) -> tuple[KillSwitchOut, bool]:
    """The operator's global switch: everyone's deployments stop trading at their next cycle."""
    repo = KillSwitchRepository(uow.session)
    await repo.lock()
    existing = await repo.in_force("global", None, None)
    audit = AuditRepository(uow.session)
    if existing is not None:
        if flatten and not existing.flatten:
            existing.flatten = True
            await uow.session.flush()
            await audit.add(
                user_id=None,
                actor=operator,
                subject="kill_switch",
                subject_id=existing.id,
                action="flatten",
                details={"scope": "global", "reason": reason},
            )
        return kill_switch_out(existing), False
    switch = await repo.add(KillSwitch(scope="global", flatten=flatten, reason=reason, set_by=operator))
    await audit.add(
        user_id=None,
        actor=operator,
        subject="kill_switch",
        subject_id=switch.id,
        action="set",
        details={"scope": "global", "reason": reason, "flatten": flatten},
    )
    return kill_switch_out(switch), True


async def clear_global(uow: UnitOfWork, operator: str, reason: str | None) -> list[KillSwitchOut]:
    """Clear the global switch; returns what was cleared (nothing when none was in force)."""
    repo = KillSwitchRepository(uow.session)
    await repo.lock()
    audit = AuditRepository(uow.session)
    cleared = []
    for switch in await repo.global_in_force():
        switch.cleared_at = datetime.now(UTC)
        switch.cleared_by = operator
        await uow.session.flush()
        await audit.add(
            user_id=None,
            actor=operator,
            subject="kill_switch",
            subject_id=switch.id,
            action="clear",
            details={"scope": "global", "reason": reason},
        )
        cleared.append(kill_switch_out(switch))
    return cleared


async def global_switches(uow: UnitOfWork) -> list[KillSwitchOut]:
    return [kill_switch_out(s) for s in await KillSwitchRepository(uow.session).global_in_force()]
