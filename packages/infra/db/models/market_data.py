"""Market-data catalog (what the Parquet store holds), users' imports and their sync jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from packages.infra.db.base import Base, Timestamps, UUIDPrimaryKey
from packages.infra.db.models.jobs import _JobColumns


class MarketDataset(UUIDPrimaryKey, Timestamps, Base):
    """One stored series: (namespace, market, symbol, base timeframe) with its coverage.

    ``namespace`` "public" holds shared data (archives, provider syncs) and has no owner; a user's
    imports live in that user's namespace and carry ``user_id``, so they are visible to them only.
    """

    __tablename__ = "market_datasets"
    __table_args__ = (
        UniqueConstraint("namespace", "market", "symbol", "timeframe"),
        Index("ix_market_datasets_market_symbol", "market", "symbol"),
        CheckConstraint("(user_id IS NULL) = (namespace = 'public')", name="owner_matches_namespace"),
    )

    namespace: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    market: Mapped[str] = mapped_column(String(16), nullable=False)
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    asset_class: Mapped[str | None] = mapped_column(String(16))
    coverage_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    coverage_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    row_count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
    checksum: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    provenance: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, default=dict, server_default="{}"
    )


class MarketDataImport(UUIDPrimaryKey, Base):
    """A user's CSV/Parquet upload, its parameters and the data-quality report it produced."""

    __tablename__ = "market_data_imports"
    __table_args__ = (Index("ix_market_data_imports_user_id_created_at", "user_id", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("market_datasets.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    file_name: Mapped[str] = mapped_column(String(255), nullable=False)
    file_format: Mapped[str] = mapped_column(String(8), nullable=False)
    file_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    file_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    market: Mapped[str] = mapped_column(String(16), nullable=False)
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    column_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    gap_policy: Mapped[str] = mapped_column(String(32), nullable=False)
    rows_in: Mapped[int | None] = mapped_column(Integer)
    rows_out: Mapped[int | None] = mapped_column(Integer)
    quality_report: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MarketDataSyncJob(_JobColumns, Base):
    """Fetching a dataset's missing ranges from a provider, chunk by chunk, on the IO worker."""

    __tablename__ = "market_data_sync_jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_market_data_sync_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_market_data_sync_jobs_status", "status"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    market: Mapped[str] = mapped_column(String(16), nullable=False)
    symbol: Mapped[str] = mapped_column(String(64), nullable=False)
    timeframe: Mapped[str] = mapped_column(String(8), nullable=False)
    namespace: Mapped[str] = mapped_column(String(64), nullable=False)
    range_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    range_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    # The plan: [{"chunk_id", "start", "end"}], then each chunk's result once the job ran.
    chunks: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, default=list, server_default="[]"
    )
    rows_written: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, server_default="0")
