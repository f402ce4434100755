"""Market-data use-cases shared by the REST routes, the MCP tools and the CLI.

Bars live in the Parquet store, the catalog in PostgreSQL. A caller sees shared data and their own
imports (their namespace first, so an import shadows shared data of the same symbol); another
user's imports, import records and sync jobs do not exist for them (404).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np

from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.lifecycle import JobLifecycle
from packages.core.jobs.schemas import CancelOut
from packages.core.jobs.submit import Submission, submit_job
from packages.core.market_data.access import (
    ServedDataset,
    choose_provider,
    market_store,
    namespace_owner,
    normalise_symbol,
    read_served,
    resolve_dataset,
    scope_of,
    unknown_symbol,
    user_namespace,
    visible_namespaces,
)
from packages.core.market_data.realtime import cached_payload, replay_payload
from packages.core.market_data.repository import (
    DatasetRepository,
    ImportRepository,
    SyncJobRepository,
)
from packages.core.market_data.schemas import (
    Bar,
    BarsPage,
    DatasetOut,
    GapRange,
    GapsOut,
    ImportList,
    ImportOut,
    ImportParams,
    ImportSummary,
    QuoteOut,
    QuoteValues,
    RegimeSnapshotOut,
    SessionInfo,
    SymbolDetail,
    SymbolList,
    SymbolSummary,
    SyncChunkOut,
    SyncJobCreate,
    SyncJobList,
    SyncJobOut,
)
from packages.core.pagination import decode_cursor, encode_cursor
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.uow import UnitOfWork
from packages.domain.market_data.bars import (
    Bars,
    Market,
    Timeframe,
    can_resample,
    parse_timeframe,
)
from packages.domain.market_data.gaps import MissingRange, detect_missing_ranges
from packages.domain.market_data.quality import ImportRejected, shown
from packages.domain.market_data.sessions import calendar_for, expected_timestamps
from packages.domain.market_data.sync import SyncPlan, plan_sync
from packages.domain.market_data.timeconv import TimeLike, from_ns, to_ns, to_ns_or_none
from packages.infra.db.models import MarketDataImport, MarketDataset, MarketDataSyncJob
from packages.infra.market_data.importer import ImportFormat, import_bars
from packages.infra.market_data.store import PUBLIC_NAMESPACE, DatasetNotFound, ParquetBarStore
from packages.shared_settings import Settings, get_settings

SYNC_TASK = "market_data.sync"
SYNC_LIFECYCLE = JobLifecycle(MarketDataSyncJob)
SYNC_SUBMISSION = Submission(task_name=SYNC_TASK, plural="sync jobs", id_field="sync_job_id")
MAX_LISTED_GAPS = 500
REGIME_CACHE_TTL_S = 3600
PARQUET_MAGIC = b"PAR1"


def read_bars(
    principal: Principal,
    market: Market | str,
    symbol: str,
    timeframe: Timeframe | str,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Bars:
    """Bars a user's backtest or runtime reads: from their own import of the symbol when it can serve
    ``timeframe``, else from shared data. ``[start, end)`` on bar open times, UTC.

    Synchronous (file reads and resampling): call it from a worker thread in async code. Raises
    ``NotFound`` for an unknown symbol and ``ValidationFailed`` for a timeframe finer than the data.
    """
    settings = settings or get_settings()
    store = market_store(settings)
    market, timeframe, symbol = Market(market), parse_timeframe(timeframe), normalise_symbol(symbol)
    served = resolve_dataset(store, visible_namespaces(principal), market, symbol, timeframe)
    return read_served(store, served, timeframe, to_ns_or_none(start), to_ns_or_none(end), limit)


def _dt(ns: int) -> datetime:
    return from_ns(ns)


def _iso_to_dt(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def bars_out(bars: Bars) -> list[Bar]:
    columns = (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    return [
        Bar(ts=from_ns(ts), open=open_, high=high, low=low, close=close, volume=volume)
        for ts, open_, high, low, close, volume in zip(*(c.tolist() for c in columns), strict=True)
    ]


def dataset_out(row: MarketDataset) -> DatasetOut:
    return DatasetOut(
        scope="shared" if row.namespace == PUBLIC_NAMESPACE else "private",
        timeframe=row.timeframe,
        coverage_start=row.coverage_start,
        coverage_end=row.coverage_end,
        row_count=row.row_count,
        checksum=row.checksum,
        source=row.source,
        asset_class=row.asset_class,
        provenance=row.provenance or {},
        updated_at=row.updated_at,
    )


def _import_summary_fields(row: MarketDataImport) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "file_name": row.file_name,
        "file_format": row.file_format,
        "file_bytes": row.file_bytes,
        "market": row.market,
        "symbol": row.symbol,
        "timeframe": row.timeframe,
        "timezone": row.timezone,
        "gap_policy": row.gap_policy,
        "rows_in": row.rows_in,
        "rows_out": row.rows_out,
        "defect_names": list((row.quality_report or {}).get("defect_names", [])),
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def sync_job_status(row: MarketDataSyncJob) -> str:
    """The status a caller reads: the row's, except that a completed job some of whose chunks failed
    reads 'partial' (one whose every attempted chunk failed ended 'failed' itself)."""
    if row.status != "succeeded":
        return row.status
    failed = any(chunk.get("status") == "failed" for chunk in row.chunks or [])
    return "partial" if failed else "succeeded"


def sync_job_out(row: MarketDataSyncJob) -> SyncJobOut:
    chunks = [SyncChunkOut.model_validate(chunk) for chunk in row.chunks or []]
    return SyncJobOut(
        id=row.id,
        status=sync_job_status(row),
        market=row.market,
        symbol=row.symbol,
        timeframe=row.timeframe,
        scope="shared" if row.namespace == PUBLIC_NAMESPACE else "private",
        provider=row.provider,
        range_start=row.range_start,
        range_end=row.range_end,
        progress=row.progress,
        progress_message=row.progress_message,
        cancel_requested=row.cancel_requested,
        chunks_total=len(chunks),
        chunks_failed=sum(1 for chunk in chunks if chunk.status == "failed"),
        rows_written=row.rows_written,
        chunks=chunks,
        error=row.error,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _range_error(pointer: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[FieldError("invalid_range", pointer, message)])


class MarketDataService:
    def __init__(self, uow: UnitOfWork, principal: Principal, resources: Resources) -> None:
        self.uow = uow
        self.resources = resources
        self.principal = principal
        self.settings = resources.settings
        self.store: ParquetBarStore = market_store(resources.settings)
        self.namespaces = visible_namespaces(principal)
        self.datasets = DatasetRepository(uow.session)
        self.imports = ImportRepository(uow.session, principal.user_id)
        self.jobs = SyncJobRepository(uow.session, principal.user_id)

    # ---------------------------------------------------------------------------------- helpers
    def _check_span(self, start_ns: int, end_ns: int, timeframe: Timeframe) -> None:
        if end_ns <= start_ns:
            raise _range_error("/query/end", "end must be after start.")
        limit = self.settings.market_data.max_range_bars
        if (end_ns - start_ns) // timeframe.nanos > limit:
            raise _range_error(
                "/query/start",
                f"The range spans more than {limit} {timeframe.value} bars; narrow start/end "
                "or use a coarser timeframe.",
            )

    async def _resolve(self, market: Market, symbol: str, timeframe: Timeframe) -> ServedDataset:
        return await asyncio.to_thread(
            resolve_dataset, self.store, self.namespaces, market, symbol, timeframe
        )

    # ---------------------------------------------------------------------------------- symbols
    async def search_symbols(
        self, text: str | None, market: str | None, limit: int, cursor: str | None = None
    ) -> SymbolList:
        page, total = await self.datasets.symbols(
            self.namespaces, market=market, text=text or None, limit=limit, cursor=cursor
        )
        items = [
            SymbolSummary(
                market=row.market,
                symbol=row.symbol,
                scope=scope_of(row.namespace),
                asset_class=row.asset_class,
                timeframes=sorted(set(row.timeframes), key=lambda tf: Timeframe(tf).nanos),
                coverage_start=row.coverage_start,
                coverage_end=row.coverage_end,
            )
            for row in page.rows
        ]
        return SymbolList(items=items, total=total, limit=limit, next_cursor=page.next_cursor)

    async def symbol_detail(self, market: str, symbol: str) -> SymbolDetail:
        market_enum, symbol = Market(market), normalise_symbol(symbol)
        rows = await self.datasets.in_namespaces(self.namespaces, market=market_enum.value, symbol=symbol)
        rows = [row for row in rows if row.row_count > 0]
        if not rows:
            raise unknown_symbol(market_enum, symbol)
        private = [row for row in rows if row.namespace != PUBLIC_NAMESPACE]
        stored = {Timeframe(row.timeframe) for row in rows}
        calendar = calendar_for(market_enum)
        return SymbolDetail(
            market=market_enum.value,
            symbol=symbol,
            asset_class=next((row.asset_class for row in rows if row.asset_class), None),
            scope="private" if private else "shared",
            datasets=[dataset_out(row) for row in private + [r for r in rows if r not in private]],
            servable_timeframes=[
                tf.value for tf in Timeframe if any(can_resample(base, tf) for base in stored)
            ],
            session=SessionInfo(calendar=calendar.name, timezone=calendar.timezone),
        )

    # ------------------------------------------------------------------------------------- bars
    @staticmethod
    def _fingerprint(served: ServedDataset, timeframe: Timeframe, end_ns: int | None) -> str:
        key = f"{served.namespace}|{served.base.market.value}|{served.base.symbol}|{timeframe.value}|{end_ns}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    async def bars(
        self,
        market: str,
        symbol: str,
        timeframe: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> BarsPage:
        market_enum, tf, symbol = Market(market), parse_timeframe(timeframe), normalise_symbol(symbol)
        served = await self._resolve(market_enum, symbol, tf)
        end_ns = None if end is None else to_ns(end)
        fingerprint = self._fingerprint(served, tf, end_ns)
        if cursor:
            (after_ns,) = decode_cursor(f"bars:{fingerprint}", cursor, (int,))
            start_ns: int | None = cast(int, after_ns) + 1
        else:
            start_ns = None if start is None else to_ns(start)
        if served.base.start_ns is not None and served.base.end_ns is not None:
            self._check_span(
                start_ns if start_ns is not None else served.base.start_ns,
                end_ns if end_ns is not None else served.base.end_ns + tf.nanos,
                tf,
            )
        bars = await asyncio.to_thread(read_served, self.store, served, tf, start_ns, end_ns)
        page = bars.head(limit)
        next_cursor = (
            encode_cursor(f"bars:{fingerprint}", [int(page.ts[-1])]) if len(bars) > len(page) else None
        )
        return BarsPage(
            market=market_enum.value,
            symbol=symbol,
            timeframe=tf.value,
            scope=served.scope,
            served_from=served.base.timeframe.value,
            count=len(page),
            bars=bars_out(page),
            next_cursor=next_cursor,
        )

    async def latest_bars(
        self,
        market: str,
        symbol: str,
        timeframe: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> BarsPage:
        """The last ``limit`` bars opening before ``end`` (and at or after ``start``)."""
        market_enum, tf, symbol = Market(market), parse_timeframe(timeframe), normalise_symbol(symbol)
        served = await self._resolve(market_enum, symbol, tf)
        start_ns, end_ns = to_ns_or_none(start), to_ns_or_none(end)
        if start_ns is not None and end_ns is not None:
            self._check_span(start_ns, end_ns, tf)
        bars = await asyncio.to_thread(read_served, self.store, served, tf, start_ns, end_ns, limit)
        return BarsPage(
            market=market_enum.value,
            symbol=symbol,
            timeframe=tf.value,
            scope=served.scope,
            served_from=served.base.timeframe.value,
            count=len(bars),
            bars=bars_out(bars),
            next_cursor=None,
        )

    # ------------------------------------------------------------------------------------ quote
    async def quote(self, market: str, symbol: str) -> QuoteOut:
        market_enum, symbol = Market(market), normalise_symbol(symbol)
        for namespace in self.namespaces:
            coverage = await asyncio.to_thread(self.store.coverage, market_enum, symbol, namespace=namespace)
            if coverage:
                break
        else:
            raise unknown_symbol(market_enum, symbol)
        payload = None
        if namespace == PUBLIC_NAMESPACE:
            payload = await cached_payload(self.resources.redis, market_enum.value, symbol)
        if payload is None:
            finest = min((info.timeframe for info in coverage), key=lambda tf: tf.nanos)
            payload = await replay_payload(self.resources, self.store, market_enum, symbol, finest, namespace)
        bar = payload.get("bar")
        quote = payload.get("quote")
        return QuoteOut(
            market=market_enum.value,
            symbol=symbol,
            timeframe=payload["timeframe"],
            source=payload["source"],
            as_of=_iso_to_dt(payload["as_of"]),
            bar=None if bar is None else Bar(**{**bar, "ts": _iso_to_dt(bar["ts"])}),
            quote=None if quote is None else QuoteValues(**{**quote, "ts": _iso_to_dt(quote["ts"])}),
            exhausted=bool(payload.get("exhausted", False)),
        )

    # ------------------------------------------------------------------------------------- gaps
    def _gap_target(self, market: Market, symbol: str, timeframe: Timeframe) -> tuple[str, Timeframe, bool]:
        """(namespace, stored timeframe to check, whether data exists): the dataset that serves the
        request when there is one, else the requested timeframe in the caller's best namespace."""
        try:
            served = resolve_dataset(self.store, self.namespaces, market, symbol, timeframe)
        except (NotFound, ValidationFailed):
            return PUBLIC_NAMESPACE, timeframe, False
        return served.namespace, served.base.timeframe, True

    def _missing(
        self, market: Market, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int
    ) -> tuple[str, Timeframe, bool, list[MissingRange], int]:
        namespace, checked, exists = self._gap_target(market, symbol, timeframe)
        self._check_span(start_ns, end_ns, checked)
        existing = (
            self.store.read_base(market, symbol, checked, start_ns, end_ns, namespace=namespace).ts
            if exists
            else np.empty(0, dtype=np.int64)
        )
        calendar = calendar_for(market)
        expected = int(expected_timestamps(calendar, checked, start_ns, end_ns).shape[0])
        ranges = detect_missing_ranges(calendar, checked, existing, start_ns, end_ns)
        return namespace, checked, exists, ranges, expected

    async def gaps(self, market: str, symbol: str, timeframe: str, start: datetime, end: datetime) -> GapsOut:
        market_enum, tf, symbol = Market(market), parse_timeframe(timeframe), normalise_symbol(symbol)
        start_ns, end_ns = to_ns(start), to_ns(end)
        if end_ns <= start_ns:
            raise _range_error("/query/end", "end must be after start.")
        namespace, checked, exists, ranges, expected = await asyncio.to_thread(
            self._missing, market_enum, symbol, tf, start_ns, end_ns
        )
        return GapsOut(
            market=market_enum.value,
            symbol=symbol,
            timeframe=tf.value,
            checked_timeframe=checked.value,
            scope=scope_of(namespace) if exists else None,
            start=start,
            end=end,
            expected_bars=expected,
            missing_bars=sum(gap.bars for gap in ranges),
            ranges=[
                GapRange(start=_dt(gap.start_ns), end=_dt(gap.end_ns), missing_bars=gap.bars)
                for gap in ranges[:MAX_LISTED_GAPS]
            ],
            ranges_total=len(ranges),
            truncated=len(ranges) > MAX_LISTED_GAPS,
        )

    # -------------------------------------------------------------------------------- sync jobs
    async def create_sync_job(
        self, body: SyncJobCreate, idempotency_key: IdempotencyKey | None
    ) -> tuple[SyncJobOut, bool]:
        """Plan the missing ranges and queue the job; returns (job, created). A repeated
        Idempotency-Key with the same body returns the first job."""
        job, created = await submit_job(
            self.uow, self.jobs, SYNC_SUBMISSION, body, idempotency_key, lambda: self._sync_job(body)
        )
        return sync_job_out(job), created

    async def _sync_job(self, body: SyncJobCreate) -> MarketDataSyncJob:
        market, tf, symbol = (
            Market(body.market),
            parse_timeframe(body.timeframe),
            normalise_symbol(body.symbol),
        )
        start_ns, end_ns = to_ns(body.start), to_ns(body.end)
        if end_ns <= start_ns:
            raise _range_error("/end", "end must be after start.")

        def plan() -> tuple[str, SyncPlan]:
            namespace, checked, _exists, ranges, _expected = self._missing(
                market, symbol, tf, start_ns, end_ns
            )
            provider = choose_provider(self.settings, market, symbol, checked)
            if not provider.supports(market, checked):
                raise ValidationFailed(
                    f"{provider.name} does not serve {market.value} {checked.value} bars.",
                    errors=[FieldError("no_provider", "/timeframe", f"{provider.name}: unsupported")],
                )
            return namespace, plan_sync(
                ranges,
                market=market,
                symbol=symbol,
                timeframe=checked,
                provider=provider.name,
                max_bars_per_chunk=provider.max_bars_per_request(checked),
                namespace=namespace,
            )

        namespace, sync_plan = await asyncio.to_thread(plan)
        limit = self.settings.market_data.max_sync_chunks
        if len(sync_plan.chunks) > limit:
            raise _range_error(
                "/start",
                f"Filling this range needs {len(sync_plan.chunks)} provider requests (at most {limit}); "
                "narrow start/end.",
            )
        return MarketDataSyncJob(
            user_id=self.principal.user_id,
            market=market.value,
            symbol=symbol,
            timeframe=sync_plan.timeframe.value,
            namespace=namespace,
            range_start=body.start,
            range_end=body.end,
            provider=sync_plan.provider,
            chunks=[{**chunk.to_dict(), "status": "pending"} for chunk in sync_plan.chunks],
            request=body.model_dump(mode="json"),
        )

    async def get_sync_job(self, job_id: uuid.UUID) -> SyncJobOut:
        return sync_job_out(await self.jobs.get(job_id))

    async def list_sync_jobs(self, limit: int, cursor: str | None = None) -> SyncJobList:
        page = await self.jobs.page(limit=limit, cursor=cursor)
        return SyncJobList(
            items=[sync_job_out(row) for row in page.rows],
            total=await self.jobs.count(),
            limit=limit,
            next_cursor=page.next_cursor,
        )

    async def cancel_sync_job(self, job_id: uuid.UUID) -> CancelOut:
        """Chunks already fetched stay stored; the job stops before its next chunk."""
        job = await self.jobs.get(job_id, for_update=True)
        return await SYNC_LIFECYCLE.cancel(self.uow.session, job, "sync job", sync_job_status)

    # ---------------------------------------------------------------------------------- imports
    async def create_import(self, params: ImportParams, data: bytes, file_name: str) -> ImportOut:
        symbol = normalise_symbol(params.symbol)
        file_format: ImportFormat = params.file_format or ("parquet" if data[:4] == PARQUET_MAGIC else "csv")
        namespace = user_namespace(self.principal.user_id)
        mapping = params.mapping.model_dump()
        config = self.settings.market_data
        # Hashing and parsing a file of many megabytes would stall every other request on this loop.
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        record = MarketDataImport(
            user_id=self.principal.user_id,
            status="succeeded",
            # The client's name for the file, as text PostgreSQL can store.
            file_name=shown(file_name, 255),
            file_format=file_format,
            file_bytes=len(data),
            file_sha256=digest,
            market=params.market,
            symbol=symbol,
            timeframe=params.timeframe,
            timezone=params.timezone,
            column_mapping=mapping,
            gap_policy=params.gap_policy,
        )
        try:
            stored = await asyncio.to_thread(
                import_bars,
                data,
                file_format=file_format,
                mapping=mapping,
                timezone=params.timezone,
                market=params.market,
                symbol=symbol,
                timeframe=params.timeframe,
                gap_policy=params.gap_policy,
                namespace=namespace,
                store=self.store,
                outlier_threshold=params.outlier_threshold,
                max_columns=config.import_max_columns,
                max_span_bars=config.max_range_bars,
            )
        except ImportRejected as error:
            record.status = "rejected"
            record.error = {"code": "import_rejected", "message": str(error), "pointer": error.pointer}
            record.finished_at = datetime.now(UTC)
            await self.imports.add(record)
            # Keep the record of the attempt although the request fails.
            await self.uow.commit_now()
            raise ValidationFailed(
                f"The file cannot be imported: {error}",
                errors=[FieldError("import_rejected", error.pointer, str(error))],
                extra={"import_id": str(record.id)},
            ) from error
        report = stored.result.report
        dataset = None
        if stored.catalog_entry is not None:
            dataset = await self.datasets.upsert(stored.catalog_entry, namespace_owner(namespace))
        record.dataset_id = None if dataset is None else dataset.id
        record.rows_in = int(report["rows_in"])
        record.rows_out = int(report["rows_out"])
        record.quality_report = report
        record.finished_at = datetime.now(UTC)
        await self.imports.add(record)
        await self.uow.session.refresh(record)
        return self._import_out(record, dataset)

    def _import_out(self, row: MarketDataImport, dataset: MarketDataset | None) -> ImportOut:
        return ImportOut(
            **_import_summary_fields(row),
            column_mapping=row.column_mapping,
            quality_report=row.quality_report,
            error=row.error,
            dataset=None if dataset is None else dataset_out(dataset),
        )

    async def list_imports(self, limit: int, cursor: str | None = None) -> ImportList:
        page = await self.imports.page(limit=limit, cursor=cursor)
        return ImportList(
            items=[ImportSummary(**_import_summary_fields(row)) for row in page.rows],
            total=await self.imports.count(),
            limit=limit,
            next_cursor=page.next_cursor,
        )

    async def get_import(self, import_id: uuid.UUID) -> ImportOut:
        row = await self.imports.get(import_id)
        dataset = None
        if row.dataset_id is not None:
            dataset = await self.datasets.get(
                user_namespace(self.principal.user_id), row.market, row.symbol, row.timeframe
            )
        return self._import_out(row, dataset)

    # ----------------------------------------------------------------------------------- regime
    async def regime(
        self, market: str, symbol: str, frequency: str, holding_minutes: float | None
    ) -> RegimeSnapshotOut:
        market_enum, symbol = Market(market), normalise_symbol(symbol)
        for namespace in self.namespaces:
            coverage = await asyncio.to_thread(self.store.coverage, market_enum, symbol, namespace=namespace)
            if coverage:
                break
        else:
            raise unknown_symbol(market_enum, symbol)
        checksums = ",".join(info.checksum[:16] for info in coverage)
        cache_key = (
            f"minsy:market:regime:{namespace}:{market_enum.value}:{symbol}:{frequency}:{holding_minutes}:"
            + hashlib.sha256(checksums.encode()).hexdigest()[:16]
        )
        cached = await self.resources.redis.get(cache_key)
        if cached is not None:
            snapshot: dict[str, Any] = json.loads(cached)
        else:
            snapshot = await asyncio.to_thread(
                self._compute_regime, market_enum, symbol, frequency, holding_minutes, namespace
            )
            await self.resources.redis.set(cache_key, json.dumps(snapshot), ex=REGIME_CACHE_TTL_S)
        return RegimeSnapshotOut(
            market=market_enum.value,
            symbol=symbol,
            scope=scope_of(namespace),
            frequency=snapshot["frequency"],
            holding_period_minutes=holding_minutes,
            timeframes=snapshot["timeframes"],
            notes=snapshot["notes"],
            as_of=_iso_to_dt(snapshot["as_of"]),
            features=snapshot["features"],
            families=snapshot["families"],
            leading_family=snapshot["leading_family"],
        )

    def _compute_regime(
        self, market: Market, symbol: str, frequency: str, holding_minutes: float | None, namespace: str
    ) -> dict[str, Any]:
        from packages.infra.market_data.jobs import build_regime_snapshot

        try:
            return build_regime_snapshot(
                self.store, market, symbol, frequency, holding_minutes, namespace=namespace
            )
        except DatasetNotFound as error:
            raise unknown_symbol(market, symbol) from error
        except ValueError as error:
            raise ValidationFailed(
                f"No regime snapshot for {market.value}:{symbol}: {error}. Pick a trading frequency "
                "that matches the stored timeframes, or sync more history.",
                errors=[FieldError("not_enough_data", "/symbol", str(error))],
            ) from error


def parse_mapping_json(text: str | None) -> dict[str, Any]:
    """The multipart ``mapping`` field: a JSON object of bar field -> input column."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValidationFailed(
            'mapping must be a JSON object such as {"ts": "Date", "close": "Close"}.',
            errors=[FieldError("invalid_json", "/mapping", str(error))],
        ) from error
    except RecursionError as error:
        # The decoder recurses once per nesting level; the mapping itself is one flat object.
        raise ValidationFailed(
            'mapping is nested too deeply: it must be one flat JSON object such as {"ts": "Date"}.',
            errors=[FieldError("too_deep", "/mapping", "nested deeper than the JSON decoder allows")],
        ) from error
    if not isinstance(value, dict):
        raise ValidationFailed(
            "mapping must be a JSON object.", errors=[FieldError("invalid_type", "/mapping", "not an object")]
        )
    return value
