"""Background jobs the CPU worker runs: backtests and stress tests, and the parts of fanned-out jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from packages.infra.db.base import Base, Timestamps, UUIDPrimaryKey


class _JobColumns(UUIDPrimaryKey, Timestamps):
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued", server_default="queued")
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0, server_default="0")
    progress_message: Mapped[str | None] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default="false", nullable=False)
    worker: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BacktestJob(_JobColumns, Base):
    __tablename__ = "backtest_jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_backtest_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_backtest_jobs_status", "status"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    strategy_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("strategies.id", ondelete="SET NULL")
    )
    strategy_version: Mapped[int | None] = mapped_column(Integer)
    # zlib-compressed arrays (equity, drawdown, trades, orders) for charts and analysis views.
    artifacts: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_hash: Mapped[str | None] = mapped_column(String(64))


class StressJob(_JobColumns, Base):
    __tablename__ = "stress_jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_stress_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_stress_jobs_status", "status"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    strategy_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("strategies.id", ondelete="SET NULL")
    )
    strategy_version: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # The report's items (crisis windows, trials, points, folds), paged by GET /stress-tests/{id}/items.
    items: Mapped[list[Any] | None] = mapped_column(JSONB)
    backtest_job_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("backtest_jobs.id", ondelete="SET NULL")
    )
    notes: Mapped[str | None] = mapped_column(Text)


class JobChild(UUIDPrimaryKey, Timestamps, Base):
    """One part of a fanned-out job (a batch of Monte Carlo trials, a walk-forward fold...).

    Its parent is a row of any job kind's table (``parent_kind``, ``parent_id``); a part is claimed,
    heartbeated and retried on its own, and keeps its encoded result until the parent is merged.
    """

    __tablename__ = "job_children"
    __table_args__ = (
        UniqueConstraint("parent_kind", "parent_id", "position"),
        Index("ix_job_children_status_heartbeat_at", "status", "heartbeat_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    # The JobKind of the parent (its table follows from the kind), then the parent row.
    parent_kind: Mapped[str] = mapped_column(String(64), nullable=False)
    parent_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # 0-based; the merge receives the parts' results in this order.
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(200))
    progress: Mapped[float] = mapped_column(Float, nullable=False, default=0.0, server_default="0")
    # The part's input, as the parent's plan wrote it.
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # packages.core.jobs.codec bytes: JSON values and numpy arrays, byte-stable.
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
