"""The PostgreSQL catalog behind the domain's CatalogSink/CatalogReader protocols."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from packages.core.market_data.access import user_namespace
from packages.core.market_data.catalog import PostgresCatalog
from packages.domain.market_data.catalog import CatalogEntry, CatalogReader, CatalogSink
from packages.domain.market_data.timeconv import to_ns


def entry(namespace: str, symbol: str, rows: int) -> CatalogEntry:
    return CatalogEntry(
        namespace=namespace,
        market="crypto",
        symbol=symbol,
        timeframe="1h",
        start_ns=to_ns("2024-01-01T00:00:00Z"),
        end_ns=to_ns("2024-01-02T05:00:00Z"),
        row_count=rows,
        checksum=f"{rows:064d}",
        asset_class="crypto",
        source="import",
        provenance={"kind": "synthetic test entry"},
    )


async def test_sync_protocol_methods_round_trip_from_a_worker_thread(
    api: Any, make_account: Any, api_app: Any
) -> None:
    account = await make_account()
    owner_namespace = user_namespace(uuid.UUID(account.user_id))
    catalog = PostgresCatalog(api_app.state.resources.session_factory, loop=asyncio.get_running_loop())
    sink: CatalogSink = catalog
    reader: CatalogReader = catalog
    symbol = f"CAT{uuid.uuid4().hex[:6].upper()}"

    def in_thread() -> tuple[Any, ...]:
        sink.upsert_dataset(entry(owner_namespace, symbol, 10))
        sink.upsert_dataset(entry(owner_namespace, symbol, 29))  # same key: updated, not duplicated
        found = reader.get_dataset(owner_namespace, "crypto", symbol, "1h")
        listed = reader.list_datasets(namespaces=(owner_namespace,), market="crypto")
        public = reader.list_datasets(namespaces=("public",), market="crypto")
        sink.remove_dataset(owner_namespace, "crypto", symbol, "1h")
        return found, listed, public, reader.get_dataset(owner_namespace, "crypto", symbol, "1h")

    found, listed, public, removed = await asyncio.to_thread(in_thread)
    assert found == entry(owner_namespace, symbol, 29)
    assert listed == [found]
    assert all(item.symbol != symbol for item in public)
    assert removed is None

    with pytest.raises(RuntimeError, match="worker threads"):
        catalog.list_datasets()
    with pytest.raises(ValueError, match="unknown namespace"):
        await catalog.aupsert(entry("someone-else", symbol, 1))


async def test_announcing_an_unchanged_dataset_leaves_its_row_alone(make_account: Any, api_app: Any) -> None:
    from packages.core.market_data.repository import DatasetRepository

    account = await make_account()
    namespace = user_namespace(uuid.UUID(account.user_id))
    symbol = f"SAME{uuid.uuid4().hex[:6].upper()}"
    factory = api_app.state.resources.session_factory

    async def announce(rows: int) -> Any:
        async with factory() as session, session.begin():
            row = await DatasetRepository(session).upsert(
                entry(namespace, symbol, rows), uuid.UUID(account.user_id)
            )
            return row.updated_at, row.row_count

    first = await announce(10)
    await asyncio.sleep(0.05)
    again = await announce(10)  # a sync that wrote nothing announces the same content
    assert again == first
    await asyncio.sleep(0.05)
    changed = await announce(11)
    assert changed[1] == 11 and changed[0] > first[0]
