"""Paper-trading chain: broker accounts, deployments and what their runs produce."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
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


class BrokerAccount(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "broker_accounts"

    user_id: Mapped[uuid.UUID] = _owner()
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False, default="paper", server_default="paper")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", server_default="active")
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")


class Deployment(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "deployments"

    user_id: Mapped[uuid.UUID] = _owner()
    strategy_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("strategies.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    strategy_version: Mapped[int] = mapped_column(Integer, nullable=False)
    broker_account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("broker_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    status: Mapped[str] = mapped_column(
        String(16), nullable=False, default="pending", server_default="pending"
    )
    mode: Mapped[str] = mapped_column(String(16), nullable=False, default="paper", server_default="paper")
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    risk_limits: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default="{}"
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeploymentRun(UUIDPrimaryKey, Base):
    __tablename__ = "deployment_runs"

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    tick_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_bar_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignalEvent(UUIDPrimaryKey, Base):
    __tablename__ = "signal_events"
    __table_args__ = (Index("ix_signal_events_deployment_id_bar_at", "deployment_id", "bar_at"),)

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployment_runs.id", ondelete="SET NULL")
    )
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str | None] = mapped_column(String(8))
    bar_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Order(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("deployment_id", "client_order_id"),)

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    broker_account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("broker_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    client_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    broker_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(8), nullable=False)
    order_type: Mapped[str] = mapped_column(String(16), nullable=False)
    time_in_force: Mapped[str] = mapped_column(String(8), nullable=False, default="day", server_default="day")
    quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False)
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    stop_price: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    filled_quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False, default=0, server_default="0")
    average_fill_price: Mapped[Decimal | None] = mapped_column(Money)
    reason: Mapped[str | None] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Fill(UUIDPrimaryKey, Base):
    __tablename__ = "fills"

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = _deployment()
    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orders.id", ondelete="CASCADE"), nullable=False, index=True
    )
    quantity: Mapped[Decimal] = mapped_column(Quantity, nullable=False)
    price: Mapped[Decimal] = mapped_column(Money, nullable=False)
    fee: Mapped[Decimal] = mapped_column(Money, nullable=False, default=0, server_default="0")
    filled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Position(UUIDPrimaryKey, Timestamps, Base):
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


class PnlSnapshot(UUIDPrimaryKey, Base):
    __tablename__ = "pnl_snapshots"
    __table_args__ = (Index("ix_pnl_snapshots_deployment_id_taken_at", "deployment_id", "taken_at"),)

    user_id: Mapped[uuid.UUID] = _owner()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
    )
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    equity: Mapped[Decimal] = mapped_column(Money, nullable=False)
    cash: Mapped[Decimal] = mapped_column(Money, nullable=False)
    realized_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False)
    unrealized_pnl: Mapped[Decimal] = mapped_column(Money, nullable=False)
    positions_value: Mapped[Decimal] = mapped_column(Money, nullable=False)
