"""All of paper trading's SQL. Every owned query starts from the caller's rows: another user's
account, deployment, confirmation or order is simply not found (404)."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from packages.core.pagination import Keyset, Page, newest_first
from packages.core.repository import OwnedRepository
from packages.infra.db.models import (
    AuditRecord,
    BrokerAccount,
    Confirmation,
    Deployment,
    DeploymentEvent,
    DeploymentTransition,
    Fill,
    KillSwitch,
    LedgerEntry,
    ManualAction,
    Order,
    PnlSnapshot,
    Position,
    RiskDecision,
    SignalEvent,
)

NOT_STOPPED = ("pending", "active", "paused", "error")
OPEN_ORDER_STATUSES = ("new", "accepted", "partially_filled")

ACCOUNTS_NEWEST_FIRST = newest_first(BrokerAccount)
DEPLOYMENTS_NEWEST_FIRST = newest_first(Deployment)
ORDERS_NEWEST_FIRST = newest_first(Order)
SIGNALS_NEWEST_FIRST = newest_first(SignalEvent)
MANUAL_ACTIONS_NEWEST_FIRST = newest_first(ManualAction)
FILLS_NEWEST_FIRST: Keyset[Fill] = Keyset(
    scope="fills",
    columns=(Fill.filled_at, Fill.id),
    types=(datetime, uuid.UUID),
    key_of=lambda row: (row.filled_at, row.id),
)
POSITIONS_BY_SYMBOL: Keyset[Position] = Keyset(
    scope="positions",
    columns=(Position.symbol, Position.id),
    types=(str, uuid.UUID),
    key_of=lambda row: (row.symbol, row.id),
    descending=False,
)
RISK_NEWEST_FIRST: Keyset[RiskDecision] = Keyset(
    scope="risk_decisions", columns=(RiskDecision.id,), types=(int,), key_of=lambda row: (row.id,)
)
TRANSITIONS_NEWEST_FIRST: Keyset[DeploymentTransition] = Keyset(
    scope="deployment_transitions",
    columns=(DeploymentTransition.id,),
    types=(int,),
    key_of=lambda row: (row.id,),
)


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8")) & 0x7FFF_FFFF


async def advisory_lock(session: AsyncSession, space: str, key: uuid.UUID | None) -> None:
    """Serialise writers of ``space`` (for one user, or everyone's when ``key`` is None) until the
    transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"),
        {"space": _lock_key(space), "key": 0 if key is None else key.int & 0x7FFF_FFFF},
    )


class AccountRepository(OwnedRepository[BrokerAccount]):
    model = BrokerAccount
    noun = "broker account"

    async def lock_owner(self) -> None:
        """Serialise this user's account changes (default flag, caps, idempotency) until commit."""
        await advisory_lock(self.session, "broker_accounts", self.owner_id)

    async def page(self, *, limit: int, cursor: str | None) -> Page[BrokerAccount]:
        query = ACCOUNTS_NEWEST_FIRST.apply(self.base_query(), cursor=cursor, limit=limit)
        return ACCOUNTS_NEWEST_FIRST.page(list((await self.session.scalars(query)).all()), limit)

    async def by_idempotency_key(self, key: str) -> BrokerAccount | None:
        found: BrokerAccount | None = await self.session.scalar(
            self.base_query().where(BrokerAccount.idempotency_key == key)
        )
        return found

    async def default(self) -> BrokerAccount | None:
        found: BrokerAccount | None = await self.session.scalar(
            self.base_query().where(BrokerAccount.is_default.is_(True))
        )
        return found

    async def count_active(self) -> int:
        total = await self.session.scalar(
            select(func.count()).where(
                BrokerAccount.user_id == self.owner_id, BrokerAccount.status == "active"
            )
        )
        return int(total or 0)

    async def oldest_active_other_than(self, account_id: uuid.UUID) -> BrokerAccount | None:
        found: BrokerAccount | None = await self.session.scalar(
            self.base_query()
            .where(BrokerAccount.status == "active", BrokerAccount.id != account_id)
            .order_by(BrokerAccount.created_at, BrokerAccount.id)
            .limit(1)
        )
        return found

    async def clear_default(self) -> None:
        """No account of this user is the default (before another one becomes it: the unique
        index allows one at a time)."""
        await self.session.execute(
            update(BrokerAccount)
            .where(BrokerAccount.user_id == self.owner_id, BrokerAccount.is_default.is_(True))
            .values(is_default=False)
            .execution_options(synchronize_session="fetch")
        )

    async def save_changes(self, account: BrokerAccount) -> None:
        """Write pending changes and read back ``updated_at`` (set by the database on UPDATE)."""
        await self.session.flush()
        await self.session.refresh(account, attribute_names=["created_at", "updated_at", "is_default"])

    async def add_ledger_entry(self, entry: LedgerEntry) -> None:
        if entry.user_id != self.owner_id:
            raise ValueError("ledger entries belong to the account's owner")
        self.session.add(entry)
        await self.session.flush()

    async def ledger_entries(self, account_id: uuid.UUID) -> Sequence[LedgerEntry]:
        """The account's ledger, in the order it was written (the order it replays in)."""
        rows = await self.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id, LedgerEntry.user_id == self.owner_id)
            .order_by(LedgerEntry.id)
        )
        return rows.all()

    async def allocated_capital(
        self, account_id: uuid.UUID, *, excluding: uuid.UUID | None = None
    ) -> Decimal:
        """Capital of the account's deployments that are not stopped (optionally leaving one out)."""
        query = select(func.coalesce(func.sum(Deployment.capital), 0)).where(
            Deployment.account_id == account_id,
            Deployment.user_id == self.owner_id,
            Deployment.status.in_(NOT_STOPPED),
        )
        if excluding is not None:
            query = query.where(Deployment.id != excluding)
        return Decimal(await self.session.scalar(query) or 0)

    async def running_deployments(self, account_id: uuid.UUID) -> list[uuid.UUID]:
        """Deployments on the account that are not stopped."""
        rows = await self.session.scalars(
            select(Deployment.id).where(
                Deployment.account_id == account_id,
                Deployment.user_id == self.owner_id,
                Deployment.status.in_(NOT_STOPPED),
            )
        )
        return list(rows.all())


class DeploymentRepository(OwnedRepository[Deployment]):
    model = Deployment
    noun = "deployment"

    async def lock_owner(self) -> None:
        """Serialise this user's deployment creations (the cap) until commit."""
        await advisory_lock(self.session, "deployments", self.owner_id)

    async def page(self, *, limit: int, cursor: str | None, status: str | None) -> Page[Deployment]:
        query = self.base_query()
        if status is not None:
            query = query.where(Deployment.status == status)
        rows = await self.session.scalars(DEPLOYMENTS_NEWEST_FIRST.apply(query, cursor=cursor, limit=limit))
        return DEPLOYMENTS_NEWEST_FIRST.page(list(rows.all()), limit)

    async def running(self) -> list[Deployment]:
        """The user's deployments that are not stopped."""
        rows = await self.session.scalars(
            self.base_query().where(Deployment.status != "stopped").order_by(Deployment.created_at)
        )
        return list(rows.all())

    async def count_not_stopped(self) -> int:
        total = await self.session.scalar(
            select(func.count()).where(Deployment.user_id == self.owner_id, Deployment.status != "stopped")
        )
        return int(total or 0)

    async def save_changes(self, deployment: Deployment) -> None:
        await self.session.flush()
        await self.session.refresh(deployment, attribute_names=["updated_at", "created_at"])

    async def latest_pnl(self, deployment_id: uuid.UUID) -> PnlSnapshot | None:
        found: PnlSnapshot | None = await self.session.scalar(
            select(PnlSnapshot)
            .where(PnlSnapshot.deployment_id == deployment_id, PnlSnapshot.user_id == self.owner_id)
            .order_by(PnlSnapshot.bar_at.desc())
            .limit(1)
        )
        return found

    async def pnl_series(
        self, deployment_id: uuid.UUID, start: datetime | None, end: datetime | None
    ) -> list[tuple[datetime, Decimal, float]]:
        """(bar_at, equity, drawdown) of every snapshot in [start, end), oldest first."""
        query = select(PnlSnapshot.bar_at, PnlSnapshot.equity, PnlSnapshot.drawdown).where(
            PnlSnapshot.deployment_id == deployment_id, PnlSnapshot.user_id == self.owner_id
        )
        if start is not None:
            query = query.where(PnlSnapshot.bar_at >= start)
        if end is not None:
            query = query.where(PnlSnapshot.bar_at < end)
        rows = (await self.session.execute(query.order_by(PnlSnapshot.bar_at))).all()
        return [(bar_at, Decimal(equity), float(drawdown)) for bar_at, equity, drawdown in rows]

    def _owned[RowT](self, model: type[RowT], deployment_id: uuid.UUID) -> Any:
        table: Any = model
        return select(model).where(table.deployment_id == deployment_id, table.user_id == self.owner_id)

    async def _page[RowT](
        self, keyset: Keyset[RowT], query: Any, cursor: str | None, limit: int
    ) -> Page[RowT]:
        rows = await self.session.scalars(keyset.apply(query, cursor=cursor, limit=limit))
        return keyset.page(list(rows.all()), limit)

    async def orders(
        self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int, status: str | None
    ) -> Page[Order]:
        query = self._owned(Order, deployment_id)
        if status is not None:
            query = query.where(Order.status == status)
        return await self._page(ORDERS_NEWEST_FIRST, query, cursor, limit)

    async def fills(self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int) -> Page[Fill]:
        return await self._page(FILLS_NEWEST_FIRST, self._owned(Fill, deployment_id), cursor, limit)

    async def positions(
        self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int, open_only: bool
    ) -> Page[Position]:
        query = self._owned(Position, deployment_id)
        if open_only:
            query = query.where(Position.quantity != 0)
        return await self._page(POSITIONS_BY_SYMBOL, query, cursor, limit)

    async def signals(self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int) -> Page[SignalEvent]:
        return await self._page(SIGNALS_NEWEST_FIRST, self._owned(SignalEvent, deployment_id), cursor, limit)

    async def risk_log(
        self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int
    ) -> Page[RiskDecision]:
        return await self._page(RISK_NEWEST_FIRST, self._owned(RiskDecision, deployment_id), cursor, limit)

    async def transitions(
        self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int
    ) -> Page[DeploymentTransition]:
        query = self._owned(DeploymentTransition, deployment_id)
        return await self._page(TRANSITIONS_NEWEST_FIRST, query, cursor, limit)

    async def manual_actions(
        self, deployment_id: uuid.UUID, *, cursor: str | None, limit: int
    ) -> Page[ManualAction]:
        query = self._owned(ManualAction, deployment_id)
        return await self._page(MANUAL_ACTIONS_NEWEST_FIRST, query, cursor, limit)

    async def position(self, deployment_id: uuid.UUID, symbol: str) -> Position | None:
        found: Position | None = await self.session.scalar(
            self._owned(Position, deployment_id).where(Position.symbol == symbol)
        )
        return found

    async def has_open_position(self, deployment_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(func.count()).where(
                Position.deployment_id == deployment_id,
                Position.user_id == self.owner_id,
                Position.quantity != 0,
            )
        )
        return bool(found)

    async def order(self, deployment_id: uuid.UUID, order_id: uuid.UUID) -> Order | None:
        found: Order | None = await self.session.scalar(
            self._owned(Order, deployment_id).where(Order.id == order_id)
        )
        return found

    async def add_manual_action(self, action: ManualAction) -> ManualAction:
        if action.user_id != self.owner_id:
            raise ValueError("manual actions belong to the deployment's owner")
        self.session.add(action)
        await self.session.flush()
        await self.session.refresh(action, attribute_names=["created_at"])
        return action

    async def count_pending_manual_actions(self, deployment_id: uuid.UUID) -> int:
        total = await self.session.scalar(
            select(func.count()).where(
                ManualAction.deployment_id == deployment_id,
                ManualAction.user_id == self.owner_id,
                ManualAction.status == "pending",
            )
        )
        return int(total or 0)

    async def cancel_pending_manual_actions(self, deployment_id: uuid.UUID, reason: str) -> int:
        """Pending manual actions of a deployment that will run no more cycles: canceled."""
        result = await self.session.execute(
            update(ManualAction)
            .where(
                ManualAction.deployment_id == deployment_id,
                ManualAction.user_id == self.owner_id,
                ManualAction.status == "pending",
            )
            .values(status="canceled", processed_at=func.now(), result={"canceled": reason})
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class ConfirmationRepository(OwnedRepository[Confirmation]):
    model = Confirmation
    noun = "confirmation"

    async def lock_owner(self) -> None:
        await advisory_lock(self.session, "confirmations", self.owner_id)

    async def by_token_hash(self, token_hash: str, *, for_update: bool = False) -> Confirmation | None:
        query = self.base_query().where(Confirmation.token_hash == token_hash)
        if for_update:
            query = query.with_for_update()
        found: Confirmation | None = await self.session.scalar(query)
        return found

    async def by_idempotency_key(self, action: str, key: str) -> Confirmation | None:
        found: Confirmation | None = await self.session.scalar(
            self.base_query()
            .where(Confirmation.action == action, Confirmation.idempotency_key == key)
            .with_for_update()
        )
        return found

    async def count_pending(self, now: datetime) -> int:
        total = await self.session.scalar(
            select(func.count()).where(
                Confirmation.user_id == self.owner_id,
                Confirmation.status == "pending",
                Confirmation.expires_at > now,
            )
        )
        return int(total or 0)


class KillSwitchRepository:
    """Kill switches a user may see: their own (user scope), their deployments', and global ones."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self) -> None:
        """Serialise kill-switch changes (one switch in force per target) until commit."""
        await advisory_lock(self.session, "kill_switches", None)

    async def in_force(
        self, scope: str, user_id: uuid.UUID | None, deployment_id: uuid.UUID | None
    ) -> KillSwitch | None:
        query = select(KillSwitch).where(KillSwitch.scope == scope, KillSwitch.cleared_at.is_(None))
        query = query.where(KillSwitch.user_id == user_id if user_id else KillSwitch.user_id.is_(None))
        query = query.where(
            KillSwitch.deployment_id == deployment_id if deployment_id else KillSwitch.deployment_id.is_(None)
        )
        found: KillSwitch | None = await self.session.scalar(query.limit(1))
        return found

    async def in_force_for_user(self, user_id: uuid.UUID) -> list[KillSwitch]:
        """Every switch in force that stops any of ``user_id``'s deployments."""
        rows = await self.session.scalars(
            select(KillSwitch)
            .where(
                KillSwitch.cleared_at.is_(None),
                or_(KillSwitch.scope == "global", KillSwitch.user_id == user_id),
            )
            .order_by(KillSwitch.set_at, KillSwitch.id)
        )
        return list(rows.all())

    async def in_force_for_deployment(self, deployment: Deployment) -> list[KillSwitch]:
        """The switches in force over one deployment: global, its user's, its own (the cycle's question)."""
        rows = await self.session.scalars(
            select(KillSwitch)
            .where(
                KillSwitch.cleared_at.is_(None),
                or_(
                    KillSwitch.scope == "global",
                    and_(KillSwitch.scope == "user", KillSwitch.user_id == deployment.user_id),
                    and_(KillSwitch.scope == "deployment", KillSwitch.deployment_id == deployment.id),
                ),
            )
            .order_by(KillSwitch.set_at, KillSwitch.id)
        )
        return list(rows.all())

    async def visible(
        self, switch_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
    ) -> KillSwitch | None:
        """A switch ``user_id`` may see (their own, or a global one)."""
        query = select(KillSwitch).where(
            KillSwitch.id == switch_id,
            or_(KillSwitch.scope == "global", KillSwitch.user_id == user_id),
        )
        if for_update:
            query = query.with_for_update()
        found: KillSwitch | None = await self.session.scalar(query)
        return found

    async def global_in_force(self) -> list[KillSwitch]:
        rows = await self.session.scalars(
            select(KillSwitch)
            .where(KillSwitch.scope == "global", KillSwitch.cleared_at.is_(None))
            .order_by(KillSwitch.set_at)
        )
        return list(rows.all())

    async def add(self, switch: KillSwitch) -> KillSwitch:
        self.session.add(switch)
        await self.session.flush()
        await self.session.refresh(switch, attribute_names=["set_at"])
        return switch


class EventRepository:
    """A deployment's stored events, read by the stream (whose caller was checked to own it)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def after(self, deployment_id: uuid.UUID, seq: int, limit: int) -> Sequence[DeploymentEvent]:
        rows = await self.session.scalars(
            select(DeploymentEvent)
            .where(DeploymentEvent.deployment_id == deployment_id, DeploymentEvent.seq > seq)
            .order_by(DeploymentEvent.seq)
            .limit(limit)
        )
        return rows.all()


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        user_id: uuid.UUID | None,
        actor: str,
        subject: str,
        subject_id: uuid.UUID | str,
        action: str,
        details: dict[str, Any],
    ) -> None:
        self.session.add(
            AuditRecord(
                user_id=user_id,
                actor=actor[:64],
                subject=subject,
                subject_id=str(subject_id),
                action=action,
                details=details,
            )
        )
        await self.session.flush()
