"""Paper-trading chain: broker accounts and their ledger, deployments and everything their cycles
produce (signals, orders, fills, positions, PnL snapshots, risk decisions, events), kill switches and
the confirmations money-moving actions wait for."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from packages.infra.db.base import Base, Timestamps, UUIDPrimaryKey

# Prices and quantities: exact decimals, wide enough for crypto satoshis and index levels.
Quantity = Numeric(28, 10)
Money = Numeric(28, 10)


def _owner() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )


def _deployment() -> Mapped[uuid.UUID]:
    return mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True
    )


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class BrokerAccount(UUIDPrimaryKey, Timestamps, Base):
    """A paper or live account. Paper accounts hold no credentials and no endpoint, by constraint:
    nothing stored for one can reach a live broker."""

    __tablename__ = "broker_accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('paper', 'live')", name="kind"),
        CheckConstraint(
            "kind = 'live' OR (credentials_encrypted IS NULL AND endpoint IS NULL)",
            name="paper_has_no_endpoint",
        ),
        Index(
            "uq_broker_accounts_one_default_per_user",
            "user_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        Index(
            "uq_broker_accounts_user_id_idempotency_key",
            "user_id",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = _owner()
    kind: Mapped[str] = mapped_column(String(8), nullable=False, default="paper", server_default="paper")
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    currency: Mapped[str] = mapped_column(String(8), nullable=False, default="USD", server_default="USD")
    starting_cash: Mapped[Decimal] = mapped_column(Money, nullable=False, default=0, server_default="0")
    endpoint: Mapped[str | None] = mapped_column(String(300))
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Cost model per asset class (fee/slippage/spread, as the backtest's assumptions name them).
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    # A create request's Idempotency-Key and the SHA-256 of its body: a retry returns this account.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))


class LedgerEntry(Base):
    """One movement of an account's cash or positions; the account's state is the replay of these."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = _owner()
    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("broker_accounts.id", ondelete="CASCADE"), nullable=False
    )
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # deposit, fill, adjustment
    symbol: Mapped[str | None] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False, default=0, server_default="0")
    price: Mapped[Decimal | None] = mapped_column(Money)
    cash: Mapped[Decimal] = mapped_column(Money, nullable=False)  # the cash change, fees included
    fee: Mapped[Decimal] = mapped_column(Money, nullable=False, default=0, server_default="0")
    fill_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    note: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _created()


class Deployment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "deployments"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'active', 'paused', 'stopped', 'error')", name="status"),
        CheckConstraint("trading_state IN ('active', 'reducing', 'halted')", name="trading_state"),
        Index("ix_deployments_status", "status"),
    )

    user_id: Mapped[uuid.UUID] = _owner()
    strategy_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("strategies.id", ondelete="SET NULL"), index=True
    )
    strategy_version: Mapped[int] = mapped_column(Integer, nullable=False)
    # The pinned revision's document, copied: the deployment runs exactly what was confirmed.
    document: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("broker_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    market: Mapped[str] = mapped_column(String(16), nullable=False)
    symbols: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    capital: Mapped[Decimal] = mapped_column(Money, nullable=False)
    risk_limits: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default="{}"
    )
    # "realtime": cycles follow the market-data feed; "replay": a private clock from replay_start.
    clock: Mapped[str] = mapped_column(
        String(16), nullable=False, default="realtime", server_default="realtime"
    )
    replay_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replay_speed: Mapped[float | None] = mapped_column()
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="pending", server_default="pending"
    )
    trading_state: Mapped[str] = mapped_column(
        String(16), nullable=False, default="active", server_default="active"
    )
    error: Mapped[str | None] = mapped_column(Text)
    # The last bar a cycle completed (UTC bar open); the next cycle starts after it.
    last_bar_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cycles: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    events: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeploymentTransition(Base):
    """Every status or trading-state change of a deployment, with who made it and why."""

    __tablename__ = "deployment_transitions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    field: Mapped[str] = mapped_column(String(16), nullable=False)  # status or trading_state
    from_value: Mapped[str | None] = mapped_column(String(16))
    to_value: Mapped[str] = mapped_column(String(16), nullable=False)
    actor: Mapped[str] = mapped_column(String(16), nullable=False)  # user, model, system
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_at: Mapped[datetime] = _created()


class SignalEvent(UUIDPrimaryKey, Base):
    __tablename__ = "signal_events"
    __table_args__ = (Index("ix_signal_events_deployment_id_bar_at", "deployment_id", "bar_at"),)

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
    )
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str | None] = mapped_column(String(8))
    bar_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    created_at: Mapped[datetime] = _created()


class Order(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("deployment_id", "client_order_id"),
        CheckConstraint(
            "status IN ('new', 'accepted', 'partially_filled', 'filled', 'canceled', 'rejected', 'expired')",
            name="status",
        ),
        Index("ix_orders_deployment_id_status", "deployment_id", "status"),
    )

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("broker_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    client_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    broker_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    order_type: Mapped[str] = mapped_column(String(16), nullable=False)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)  # entry, exit, manual, flatten
    exit_rule: Mapped[str | None] = mapped_column(String(64))
    # The order as the domain made it (quantity or size-at-fill, prices, validity).
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    stop_price: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    filled_quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False, default=0, server_default="0")
    average_fill_price: Mapped[Decimal | None] = mapped_column(Money)
    reason: Mapped[str | None] = mapped_column(String(200))
    bar_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Fill(UUIDPrimaryKey, Base):
    __tablename__ = "fills"
    __table_args__ = (Index("ix_fills_deployment_id_filled_at", "deployment_id", "filled_at"),)

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False)
    price: Mapped[Decimal] = mapped_column(Money, nullable=False)
    fee: Mapped[Decimal] = mapped_column(Money, nullable=False, default=0, server_default="0")
    slippage: Mapped[Decimal] = mapped_column(Money, nullable=False, default=0, server_default="0")
    filled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _created()


class Position(UUIDPrimaryKey, Timestamps, Base):
    """A deployment's position in one symbol, kept in step with the ledger (which it can be rebuilt from)."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("deployment_id", "symbol"),)

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
    )
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False, default=0, server_default="0")
    average_price: Mapped[Decimal | None] = mapped_column(Money)
    realized_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False, default=0, server_default="0")
    # What the cycle keeps between bars for this position (entry bar, stop/target levels, trailing extreme).
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")


class PnlSnapshot(Base):
    __tablename__ = "pnl_snapshots"
    __table_args__ = (UniqueConstraint("deployment_id", "bar_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    bar_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    equity: Mapped[Decimal] = mapped_column(Money, nullable=False)
    cash: Mapped[Decimal] = mapped_column(Money, nullable=False)
    realized_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False)
    unrealized_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False)
    positions_value: Mapped[Decimal] = mapped_column(Money, nullable=False)
    drawdown: Mapped[float] = mapped_column(nullable=False, default=0.0, server_default="0")
    created_at: Mapped[datetime] = _created()


class RiskDecision(Base):
    """Every risk check: the order or state change, the rule that decided it and the numbers compared."""

    __tablename__ = "risk_decisions"
    __table_args__ = (Index("ix_risk_decisions_deployment_id_id", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    bar_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    compared: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    message: Mapped[str] = mapped_column(String(500), nullable=False)
    created_at: Mapped[datetime] = _created()


class KillSwitch(UUIDPrimaryKey, Base):
    """A stop on new orders at one level: one deployment, all of a user's, or everyone's (global)."""

    __tablename__ = "kill_switches"
    __table_args__ = (
        CheckConstraint("scope IN ('deployment', 'user', 'global')", name="scope"),
        Index(
            "ix_kill_switches_active",
            "scope",
            "user_id",
            "deployment_id",
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="CASCADE")
    )
    flatten: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    set_by: Mapped[str] = mapped_column(String(64), nullable=False)
    set_at: Mapped[datetime] = _created()
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[str | None] = mapped_column(String(64))


class Confirmation(UUIDPrimaryKey, Base):
    """A money-moving action waiting for its user: the exact action (hashed), a single-use token."""

    __tablename__ = "confirmations"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        Index(
            "uq_confirmations_user_id_action_idempotency_key",
            "user_id",
            "action",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = _owner()
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    action_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    preview: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="pending", server_default="pending"
    )
    requested_via: Mapped[str] = mapped_column(String(8), nullable=False)  # api, mcp
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The requester's Idempotency-Key: a retry gets this confirmation back (with a fresh token).
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()


class ManualAction(UUIDPrimaryKey, Base):
    """A manual order intent (open, close, reduce, flatten, cancel an order), stored at once and
    carried out by the deployment's next cycle through the same risk gate as its own orders."""

    __tablename__ = "manual_actions"
    __table_args__ = (
        CheckConstraint("action IN ('open', 'close', 'reduce', 'flatten', 'cancel_order')", name="action"),
        CheckConstraint("status IN ('pending', 'done', 'rejected', 'canceled')", name="status"),
        Index(
            "ix_manual_actions_pending",
            "deployment_id",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    # symbol, side, quantity or notional, order_type, limit_price, fraction, order_id: what the action names.
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="pending", server_default="pending"
    )
    actor: Mapped[str] = mapped_column(String(16), nullable=False)  # user, model
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    confirmation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("confirmations.id", ondelete="SET NULL")
    )
    # What the cycle did with it: orders submitted, the risk decision, or why it was canceled.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeploymentEvent(Base):
    """The live view's events, numbered per deployment (the SSE id), written with the change they report."""

    __tablename__ = "deployment_events"
    __table_args__ = (UniqueConstraint("deployment_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _created()


class AuditRecord(Base):
    """Who did what to an account, a kill switch or a confirmation, and why."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(32), nullable=False)
    subject_id: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    created_at: Mapped[datetime] = _created()
