"""Operator entry points behind ``minsy market-data``: cold start, status, file imports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from packages.core.auth.repository import UserRepository
from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.market_data.access import market_store, normalise_symbol
from packages.core.market_data.catalog import PostgresCatalog
from packages.core.market_data.cold_start import market_data_status, run_cold_start
from packages.core.market_data.schemas import ImportParams
from packages.core.market_data.service import PARQUET_MAGIC, MarketDataService
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.domain.market_data.quality import ImportRejected
from packages.infra.market_data.cold_start import ColdStartProgress
from packages.infra.market_data.importer import ImportFormat, import_bars
from packages.infra.market_data.store import PUBLIC_NAMESPACE


async def ensure(resources: Resources, say: Callable[[str], None]) -> dict[str, Any]:
    def progress(event: ColdStartProgress) -> None:
        where = f"{event.archive}: " if event.archive else ""
        say(f"{event.stage:<12} {where}{event.message}")

    return await run_cold_start(resources, on_progress=progress)


async def status(resources: Resources) -> dict[str, Any]:
    return (await market_data_status(resources)).model_dump(mode="json")


async def import_file(
    resources: Resources, data: bytes, file_name: str, params: ImportParams, user_email: str | None
) -> dict[str, Any]:
    """Import into a user's namespace (with an import record), or as shared data without a user."""
    if user_email is not None:
        async with resources.unit_of_work() as uow:
            user = await UserRepository(uow.session).by_email(user_email.lower())
            if user is None:
                raise NotFound(f"No user with email {user_email}.")
            service = MarketDataService(uow, Principal(user_id=user.id), resources)
            result = await service.create_import(params, data, file_name)
        return result.model_dump(mode="json")
    file_format: ImportFormat = params.file_format or ("parquet" if data[:4] == PARQUET_MAGIC else "csv")
    try:
        stored = await asyncio.to_thread(
            import_bars,
            data,
            file_format=file_format,
            mapping=params.mapping.model_dump(),
            timezone=params.timezone,
            market=params.market,
            symbol=normalise_symbol(params.symbol),
            timeframe=params.timeframe,
            gap_policy=params.gap_policy,
            namespace=PUBLIC_NAMESPACE,
            store=market_store(resources.settings),
            outlier_threshold=params.outlier_threshold,
            max_columns=resources.settings.market_data.import_max_columns,
            max_span_bars=resources.settings.market_data.max_range_bars,
        )
    except ImportRejected as error:
        raise ValidationFailed(
            f"The file cannot be imported: {error}",
            errors=[FieldError("import_rejected", error.pointer, str(error))],
        ) from error
    if stored.catalog_entry is not None:
        await PostgresCatalog(resources.session_factory).aupsert(stored.catalog_entry)
    return {
        "scope": "shared",
        "dataset": None if stored.catalog_entry is None else stored.catalog_entry.to_dict(),
        "quality_report": stored.result.report,
    }
