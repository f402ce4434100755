"""The dataset catalog on PostgreSQL, implementing the domain's ``CatalogSink`` and ``CatalogReader``.

The store, the cold start and sync execution are synchronous code that runs in a worker thread
(``asyncio.to_thread``) and calls the catalog through the synchronous protocols; those calls hop
onto the event loop that owns the database connections and wait there for the answer. Async code
uses the ``a``-prefixed methods directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from packages.core.market_data.access import namespace_owner
from packages.core.market_data.repository import DatasetRepository, entry_from_row
from packages.domain.market_data.catalog import CatalogEntry
from packages.infra.db.session import transaction


class PostgresCatalog:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._factory = session_factory
        self._loop = loop

    # ----------------------------------------------------------------------------- async API
    async def aupsert(self, entry: CatalogEntry) -> None:
        async with transaction(self._factory) as session:
            await DatasetRepository(session).upsert(entry, namespace_owner(entry.namespace))

    async def aremove(self, namespace: str, market: str, symbol: str, timeframe: str) -> None:
        async with transaction(self._factory) as session:
            await DatasetRepository(session).remove(namespace, market, symbol, timeframe)

    async def alist(
        self, namespaces: Sequence[str] = ("public",), market: str | None = None
    ) -> list[CatalogEntry]:
        async with self._factory() as session:
            rows = await DatasetRepository(session).in_namespaces(namespaces, market=market)
        return [entry_from_row(row) for row in rows]

    async def aget(self, namespace: str, market: str, symbol: str, timeframe: str) -> CatalogEntry | None:
        async with self._factory() as session:
            row = await DatasetRepository(session).get(namespace, market, symbol, timeframe)
        return None if row is None else entry_from_row(row)

    # ---------------------------------------------------- CatalogSink / CatalogReader (threads)
    def _wait[T](self, work: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            work.close()
            raise RuntimeError(
                "the synchronous catalog methods are for worker threads of a running event loop; "
                "await the a-prefixed methods from async code"
            )
        return asyncio.run_coroutine_threadsafe(work, loop).result()

    def upsert_dataset(self, entry: CatalogEntry) -> None:
        self._wait(self.aupsert(entry))

    def remove_dataset(self, namespace: str, market: str, symbol: str, timeframe: str) -> None:
        self._wait(self.aremove(namespace, market, symbol, timeframe))

    def list_datasets(
        self, *, namespaces: Sequence[str] = ("public",), market: str | None = None
    ) -> list[CatalogEntry]:
        return self._wait(self.alist(namespaces, market))

    def get_dataset(self, namespace: str, market: str, symbol: str, timeframe: str) -> CatalogEntry | None:
        return self._wait(self.aget(namespace, market, symbol, timeframe))
