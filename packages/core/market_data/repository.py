"""All market-data SQL: the dataset catalog, users' imports and sync jobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from packages.core.jobs.repository import JobRepository, job_for_worker
from packages.core.pagination import Keyset, Page, newest_first
from packages.core.repository import OwnedRepository
from packages.domain.market_data.catalog import CatalogEntry
from packages.domain.market_data.timeconv import from_ns, to_ns
from packages.infra.db.models import MarketDataImport, MarketDataset, MarketDataSyncJob


def entry_from_row(row: MarketDataset) -> CatalogEntry:
    return CatalogEntry(
        namespace=row.namespace,
        market=row.market,
        symbol=row.symbol,
        timeframe=row.timeframe,
        start_ns=None if row.coverage_start is None else to_ns(row.coverage_start),
        end_ns=None if row.coverage_end is None else to_ns(row.coverage_end),
        row_count=row.row_count,
        checksum=row.checksum,
        asset_class=row.asset_class,
        source=row.source,
        provenance=dict(row.provenance or {}),
    )


@dataclass(frozen=True, slots=True)
class SymbolRow:
    namespace: str
    market: str
    symbol: str
    asset_class: str | None
    timeframes: list[str]
    coverage_start: datetime | None
    coverage_end: datetime | None


# namespace, market, symbol, asset class, timeframes, coverage start, coverage end
_SymbolSelect = Select[str, str, str, str | None, Sequence[str], datetime | None, datetime | None]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _symbols_keyset(market: str | None, text: str | None) -> Keyset[SymbolRow]:
    """Symbol groups by market, symbol and namespace; with ``text``, its exact match first."""
    identity = (MarketDataset.market, MarketDataset.symbol, MarketDataset.namespace)
    scope = f"market_datasets:symbols:{market}:{text}"
    if not text:
        return Keyset(
            scope=scope,
            columns=identity,
            types=(str, str, str),
            key_of=lambda row: (row.market, row.symbol, row.namespace),
            descending=False,
        )
    wanted = text.upper()
    return Keyset(
        scope=scope,
        columns=(MarketDataset.symbol != wanted, *identity),
        types=(bool, str, str, str),
        key_of=lambda row: (row.symbol != wanted, row.market, row.symbol, row.namespace),
        descending=False,
    )


# What an announcement of a dataset may change; the keys and timestamps are not among them.
_CONTENT_COLUMNS = (
    "user_id",
    "asset_class",
    "coverage_start",
    "coverage_end",
    "row_count",
    "checksum",
    "source",
    "provenance",
)


class DatasetRepository:
    """The catalog: shared datasets (no owner) and private ones; reads take the caller's namespaces,
    so another user's private datasets are never part of a query."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, entry: CatalogEntry, owner_id: uuid.UUID | None) -> MarketDataset:
        values: dict[str, Any] = {
            "namespace": entry.namespace,
            "user_id": owner_id,
            "market": entry.market,
            "symbol": entry.symbol,
            "timeframe": entry.timeframe,
            "asset_class": entry.asset_class,
            "coverage_start": None if entry.start_ns is None else from_ns(entry.start_ns),
            "coverage_end": None if entry.end_ns is None else from_ns(entry.end_ns),
            "row_count": entry.row_count,
            "checksum": entry.checksum,
            "source": entry.source,
            "provenance": entry.provenance,
        }
        statement = insert(MarketDataset).values(id=uuid.uuid4(), **values)
        changed = [
            getattr(MarketDataset, name).is_distinct_from(getattr(statement.excluded, name))
            for name in _CONTENT_COLUMNS
        ]
        statement = statement.on_conflict_do_update(
            index_elements=["namespace", "market", "symbol", "timeframe"],
            set_={**values, "updated_at": func.now()},
            # An entry announced again unchanged keeps its row as it is (updated_at included).
            where=or_(*changed),
        )
        row: MarketDataset | None = (
            await self.session.scalars(
                statement.returning(MarketDataset).execution_options(populate_existing=True)
            )
        ).one_or_none()
        if row is None:
            row = await self.get(entry.namespace, entry.market, entry.symbol, entry.timeframe)
        assert row is not None
        return row

    async def remove(self, namespace: str, market: str, symbol: str, timeframe: str) -> None:
        await self.session.execute(
            delete(MarketDataset).where(
                MarketDataset.namespace == namespace,
                MarketDataset.market == market,
                MarketDataset.symbol == symbol,
                MarketDataset.timeframe == timeframe,
            )
        )

    async def get(self, namespace: str, market: str, symbol: str, timeframe: str) -> MarketDataset | None:
        found: MarketDataset | None = await self.session.scalar(
            select(MarketDataset).where(
                MarketDataset.namespace == namespace,
                MarketDataset.market == market,
                MarketDataset.symbol == symbol,
                MarketDataset.timeframe == timeframe,
            )
        )
        return found

    async def in_namespaces(
        self, namespaces: Sequence[str], *, market: str | None = None, symbol: str | None = None
    ) -> list[MarketDataset]:
        query = select(MarketDataset).where(MarketDataset.namespace.in_(namespaces))
        if market is not None:
            query = query.where(MarketDataset.market == market)
        if symbol is not None:
            query = query.where(MarketDataset.symbol == symbol)
        query = query.order_by(
            MarketDataset.market, MarketDataset.symbol, MarketDataset.namespace, MarketDataset.timeframe
        )
        return list(await self.session.scalars(query))

    def _symbols_query(
        self, namespaces: Sequence[str], market: str | None, text: str | None
    ) -> _SymbolSelect:
        query = select(
            MarketDataset.namespace,
            MarketDataset.market,
            MarketDataset.symbol,
            func.max(MarketDataset.asset_class),
            func.array_agg(MarketDataset.timeframe),
            func.min(MarketDataset.coverage_start),
            func.max(MarketDataset.coverage_end),
        ).where(MarketDataset.namespace.in_(namespaces), MarketDataset.row_count > 0)
        if market is not None:
            query = query.where(MarketDataset.market == market)
        if text:
            query = query.where(MarketDataset.symbol.ilike(f"%{_escape_like(text)}%", escape="\\"))
        return query.group_by(MarketDataset.namespace, MarketDataset.market, MarketDataset.symbol)

    async def symbols(
        self,
        namespaces: Sequence[str],
        *,
        market: str | None = None,
        text: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[Page[SymbolRow], int]:
        """(market, symbol) groups per namespace, an exact match on ``text`` first, and the total."""
        grouped = self._symbols_query(namespaces, market, text).subquery()
        total = int(await self.session.scalar(select(func.count()).select_from(grouped)) or 0)
        keyset = _symbols_keyset(market, text)
        query = keyset.apply(self._symbols_query(namespaces, market, text), cursor=cursor, limit=limit)
        rows = [
            SymbolRow(
                namespace=row[0],
                market=row[1],
                symbol=row[2],
                asset_class=row[3],
                timeframes=list(row[4]),
                coverage_start=row[5],
                coverage_end=row[6],
            )
            for row in (await self.session.execute(query)).all()
        ]
        return keyset.page(rows, limit), total

    async def inventory(self, namespace: str) -> dict[str, Any]:
        """Counts for the status page: datasets, symbols per market, rows and timeframes."""
        rows = (
            await self.session.execute(
                select(
                    MarketDataset.market,
                    func.count(func.distinct(MarketDataset.symbol)),
                    func.count(),
                    func.coalesce(func.sum(MarketDataset.row_count), 0),
                    func.array_agg(func.distinct(MarketDataset.timeframe)),
                )
                .where(MarketDataset.namespace == namespace, MarketDataset.row_count > 0)
                .group_by(MarketDataset.market)
                .order_by(MarketDataset.market)
            )
        ).all()
        return {
            "datasets": sum(int(row[2]) for row in rows),
            "symbols": sum(int(row[1]) for row in rows),
            "rows": sum(int(row[3]) for row in rows),
            "markets": {row[0]: int(row[1]) for row in rows},
            "timeframes": sorted({tf for row in rows for tf in row[4]}),
        }


class ImportRepository(OwnedRepository[MarketDataImport]):
    model = MarketDataImport
    noun = "import"

    async def page(self, *, limit: int, cursor: str | None) -> Page[MarketDataImport]:
        """Newest first, ``limit`` imports after ``cursor``."""
        keyset = newest_first(MarketDataImport)
        query = keyset.apply(self.base_query(), cursor=cursor, limit=limit)
        return keyset.page(list(await self.session.scalars(query)), limit)


class SyncJobRepository(JobRepository[MarketDataSyncJob]):
    model = MarketDataSyncJob
    noun = "sync job"


async def sync_job_for_worker(session: AsyncSession, job_id: uuid.UUID) -> MarketDataSyncJob | None:
    """The worker's read of a sync job it was handed."""
    return await job_for_worker(session, MarketDataSyncJob, job_id)
