"""Parquet bar store: one directory per (namespace, market, symbol, base timeframe), one file per period.

Layout under ``root``::

    <namespace>/<market>/<url-quoted symbol>/<timeframe>/<period>.parquet
    <namespace>/<market>/<url-quoted symbol>/<timeframe>/_dataset.json   (rows, coverage, checksums)

Periods are years for intraday bars and decades for daily and weekly bars, so a full read opens few
files and a sync chunk rewrites at most one year. Columns: ``ts``
(``timestamp[ns, UTC]``, bar open), ``open``/``high``/``low``/``close``/``volume`` (float64).

Writes are upserts by timestamp under an exclusive ``flock`` per dataset and replace files
atomically; a partition whose content checksum does not change is not rewritten, so repeating a
write is a no-op. Reads of other timeframes resample the coarsest stored base that can serve them;
results are kept in an in-process LRU keyed by the base dataset's checksum, so any change to the
base data makes stale entries unreachable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from packages.domain.market_data.bars import (
    BAR_COLUMNS,
    NS_PER_DAY,
    Bars,
    Market,
    Timeframe,
    can_resample,
    merge_bars,
    parse_timeframe,
    sort_unique,
)
from packages.domain.market_data.catalog import CatalogEntry
from packages.domain.market_data.resample import TimeframeNotServable, merge_adjacent_buckets, resample
from packages.domain.market_data.sessions import calendar_for
from packages.domain.market_data.timeconv import TimeLike, to_ns_or_none

PUBLIC_NAMESPACE = "public"
MANIFEST_NAME = "_dataset.json"
BAR_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        *(pa.field(name, pa.float64()) for name in BAR_COLUMNS[1:]),
    ]
)
type BarInput = Bars | pa.Table | Mapping[str, Any]


class DatasetNotFound(LookupError):
    """No stored dataset can serve the requested symbol and timeframe."""


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    rows: int
    start_ns: int
    end_ns: int
    checksum: str


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    namespace: str
    market: Market
    symbol: str
    timeframe: Timeframe
    rows: int
    start_ns: int | None
    end_ns: int | None
    checksum: str
    partitions: dict[str, PartitionInfo]
    metadata: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""

    def catalog_entry(self, *, source: str | None = None) -> CatalogEntry:
        return CatalogEntry(
            namespace=self.namespace,
            market=self.market.value,
            symbol=self.symbol,
            timeframe=self.timeframe.value,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            row_count=self.rows,
            checksum=self.checksum,
            asset_class=self.metadata.get("asset_class"),
            source=source or str(self.metadata.get("source", "archive")),
            provenance=dict(self.metadata.get("provenance", {})),
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    dataset: DatasetInfo
    rows_received: int
    partitions_written: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.partitions_written)


@functools.cache
def _partition_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="partitions")


# A forked child (a Celery prefork pool process) inherits the pool object but none of its threads:
# it must build its own.
os.register_at_fork(after_in_child=_partition_pool.cache_clear)


def bars_from_input(data: BarInput) -> Bars:
    """Normalise a ``Bars``, Arrow table or mapping of columns (``ts`` as int64 ns or datetime64)."""
    if isinstance(data, Bars):
        return data
    if isinstance(data, pa.Table):
        columns = {name: _arrow_to_numpy(data.column(name)) for name in BAR_COLUMNS}
    else:
        columns = {name: np.asarray(data[name]) for name in BAR_COLUMNS}
    ts = columns["ts"]
    if np.issubdtype(ts.dtype, np.datetime64):
        ts = ts.astype("datetime64[ns]").view(np.int64)
    return Bars.from_columns(ts, *(columns[name] for name in BAR_COLUMNS[1:]))


def _arrow_to_numpy(column: pa.ChunkedArray) -> np.ndarray:
    """Column values as numpy; a single null-free chunk is viewed without copying (read-only)."""
    if pa.types.is_timestamp(column.type):
        if column.type != BAR_SCHEMA.field("ts").type:
            column = column.cast(pa.timestamp("ns", tz="UTC"))
        column = pa.chunked_array([chunk.view(pa.int64()) for chunk in column.chunks], type=pa.int64())
    if column.num_chunks == 1 and column.null_count == 0:
        return column.chunk(0).to_numpy(zero_copy_only=True)
    return column.to_numpy()


def _content_checksum(bars: Bars) -> str:
    digest = hashlib.sha256()
    for name in BAR_COLUMNS:
        digest.update(np.ascontiguousarray(getattr(bars, name)).tobytes())
    return digest.hexdigest()


def _period_codes(ts: np.ndarray, timeframe: Timeframe) -> tuple[np.ndarray, list[str]]:
    """Integer period code per row (non-decreasing for sorted ts) and its partition names.

    Intraday data is partitioned by year (a year of 1m crypto bars is ~525k rows, ~25 MB), daily
    and weekly data by decade: few files keep full reads fast, and rewriting one on upsert stays cheap.
    """
    years = ts.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64) + 1970
    if timeframe.is_intraday:
        return years, [str(int(y)) for y in np.unique(years)]
    decades = years // 10 * 10
    return decades, [f"{int(d)}s" for d in np.unique(decades)]


class _ResampleCache:
    """Byte-bounded LRU of resampled series, safe for threads of one process."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, ...], Bars] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def _size(bars: Bars) -> int:
        return len(bars) * 8 * len(BAR_COLUMNS)

    def get(self, key: tuple[str, ...]) -> Bars | None:
        with self._lock:
            bars = self._entries.get(key)
            if bars is not None:
                self._entries.move_to_end(key)
            return bars

    def put(self, key: tuple[str, ...], bars: Bars) -> None:
        # Cached arrays are shared by every later reader: freeze them so nobody edits them in place.
        for name in BAR_COLUMNS:
            getattr(bars, name).flags.writeable = False
        size = self._size(bars)
        if size > self._max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = bars
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= self._size(evicted)

    def discard_dataset(self, prefix: tuple[str, ...]) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[: len(prefix)] == prefix]:
                self._bytes -= self._size(self._entries.pop(key))


class ParquetBarStore:
    """Bars on disk; see the module docstring for layout and guarantees.

    Files are written uncompressed with plain encoding by default: random-walk float prices
    compress by only ~1.5x even with byte-stream-split + zstd, while plain pages decode at memory
    speed, which is what the read-and-resample path is bound by. Pass ``compression="zstd"`` to
    trade read speed for disk space.
    """

    def __init__(
        self, root: Path | str, *, cache_max_bytes: int = 256 * 1024 * 1024, compression: str = "none"
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._compression = compression
        self._cache = _ResampleCache(cache_max_bytes)

    # ----------------------------------------------------------------- paths and manifests
    def dataset_dir(
        self, market: Market | str, symbol: str, timeframe: Timeframe | str, namespace: str
    ) -> Path:
        return (
            self.root
            / quote(namespace, safe="")
            / Market(market).value
            / quote(symbol, safe="")
            / parse_timeframe(timeframe).value
        )

    @contextlib.contextmanager
    def _locked(self, directory: Path) -> Iterator[None]:
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _load_manifest(directory: Path) -> dict[str, Any] | None:
        try:
            loaded: dict[str, Any] = json.loads((directory / MANIFEST_NAME).read_text())
        except FileNotFoundError:
            return None
        return loaded

    @staticmethod
    def _info_from_manifest(manifest: dict[str, Any]) -> DatasetInfo:
        return DatasetInfo(
            namespace=manifest["namespace"],
            market=Market(manifest["market"]),
            symbol=manifest["symbol"],
            timeframe=Timeframe(manifest["timeframe"]),
            rows=manifest["rows"],
            start_ns=manifest["start_ns"],
            end_ns=manifest["end_ns"],
            checksum=manifest["checksum"],
            partitions={name: PartitionInfo(**part) for name, part in manifest["partitions"].items()},
            metadata=manifest.get("metadata", {}),
            updated_at=manifest.get("updated_at", ""),
        )

    # ----------------------------------------------------------------------------- writes
    def write(
        self,
        market: Market | str,
        symbol: str,
        timeframe: Timeframe | str,
        data: BarInput,
        *,
        namespace: str = PUBLIC_NAMESPACE,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Upsert bars by timestamp (incoming rows replace stored rows with the same ``ts``).

        ``metadata`` (asset class, source, provenance...) is merged into the dataset manifest.
        """
        market, timeframe = Market(market), parse_timeframe(timeframe)
        incoming = sort_unique(bars_from_input(data))
        directory = self.dataset_dir(market, symbol, timeframe, namespace)
        with self._locked(directory):
            manifest = self._load_manifest(directory) or {
                "namespace": namespace,
                "market": market.value,
                "symbol": symbol,
                "timeframe": timeframe.value,
                "partitions": {},
                "metadata": {},
            }
            partitions: dict[str, dict[str, Any]] = manifest["partitions"]
            written: list[str] = []
            if len(incoming):
                codes, names = _period_codes(incoming.ts, timeframe)
                bounds = np.flatnonzero(np.diff(codes)) + 1
                for name, chunk_index in zip(names, np.split(np.arange(len(incoming)), bounds), strict=True):
                    chunk = incoming.take(slice(int(chunk_index[0]), int(chunk_index[-1]) + 1))
                    path = directory / f"{name}.parquet"
                    merged = merge_bars(self._read_file(path), chunk) if name in partitions else chunk
                    checksum = _content_checksum(merged)
                    if partitions.get(name, {}).get("checksum") == checksum:
                        continue
                    self._write_file(path, merged)
                    partitions[name] = {
                        "rows": len(merged),
                        "start_ns": int(merged.ts[0]),
                        "end_ns": int(merged.ts[-1]),
                        "checksum": checksum,
                    }
                    written.append(name)
            new_metadata = dict(metadata or {})
            metadata_changed = any(manifest["metadata"].get(k) != v for k, v in new_metadata.items())
            if written or metadata_changed or not (directory / MANIFEST_NAME).exists():
                manifest["metadata"].update(new_metadata)
                self._refresh_totals(manifest)
                self._atomic_write_text(
                    directory / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True)
                )
            if written:
                self._cache.discard_dataset((namespace, market.value, symbol))
            info = self._info_from_manifest(manifest)
        return WriteResult(dataset=info, rows_received=len(incoming), partitions_written=tuple(written))

    @staticmethod
    def _refresh_totals(manifest: dict[str, Any]) -> None:
        partitions = manifest["partitions"]
        ordered = sorted(partitions.items(), key=lambda item: item[1]["start_ns"])
        manifest["rows"] = sum(part["rows"] for _, part in ordered)
        manifest["start_ns"] = ordered[0][1]["start_ns"] if ordered else None
        manifest["end_ns"] = ordered[-1][1]["end_ns"] if ordered else None
        digest = hashlib.sha256("".join(f"{name}:{part['checksum']};" for name, part in ordered).encode())
        manifest["checksum"] = digest.hexdigest()
        manifest["updated_at"] = dt.datetime.now(dt.UTC).isoformat()

    @staticmethod
    def _atomic_write_text(path: Path, text: str) -> None:
        temporary = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)

    def _write_file(self, path: Path, bars: Bars) -> None:
        table = pa.table(
            [pa.array(bars.ts, type=pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
            + [pa.array(getattr(bars, name)) for name in BAR_COLUMNS[1:]],
            schema=BAR_SCHEMA,
        )
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        pq.write_table(
            table,
            temporary,
            compression=self._compression,
            use_dictionary=False,
        )
        os.replace(temporary, path)

    @staticmethod
    def _read_table(path: Path) -> pa.Table:
        # ParquetFile skips pq.read_table's dataset-discovery layer; with one row group per file,
        # memory-mapped reads without pre-buffering decode straight from the page cache.
        return pq.ParquetFile(path, memory_map=True, pre_buffer=False).read()

    def _read_file(self, path: Path) -> Bars:
        return bars_from_input(self._read_table(path))

    def delete(
        self,
        market: Market | str,
        symbol: str,
        timeframe: Timeframe | str,
        *,
        namespace: str = PUBLIC_NAMESPACE,
    ) -> bool:
        directory = self.dataset_dir(market, symbol, timeframe, namespace)
        if not directory.exists():
            return False
        with self._locked(directory):
            for path in directory.glob("*.parquet"):
                path.unlink()
            (directory / MANIFEST_NAME).unlink(missing_ok=True)
        self._cache.discard_dataset((namespace, Market(market).value, symbol))
        return True

    # ------------------------------------------------------------------------------ reads
    def dataset(
        self,
        market: Market | str,
        symbol: str,
        timeframe: Timeframe | str,
        *,
        namespace: str = PUBLIC_NAMESPACE,
    ) -> DatasetInfo | None:
        """Manifest of the dataset stored at exactly this timeframe, if any."""
        manifest = self._load_manifest(self.dataset_dir(market, symbol, timeframe, namespace))
        return None if manifest is None else self._info_from_manifest(manifest)

    def coverage(
        self, market: Market | str, symbol: str, *, namespace: str = PUBLIC_NAMESPACE
    ) -> list[DatasetInfo]:
        """Every stored base timeframe of a symbol with its rows, range and checksum."""
        symbol_dir = self.root / quote(namespace, safe="") / Market(market).value / quote(symbol, safe="")
        return self._scan(symbol_dir.glob(f"*/{MANIFEST_NAME}"))

    def list_datasets(
        self, *, namespace: str | None = PUBLIC_NAMESPACE, market: Market | str | None = None
    ) -> list[DatasetInfo]:
        namespace_glob = "*" if namespace is None else quote(namespace, safe="")
        market_glob = "*" if market is None else Market(market).value
        return self._scan(self.root.glob(f"{namespace_glob}/{market_glob}/*/*/{MANIFEST_NAME}"))

    def list_symbols(
        self, *, namespace: str | None = PUBLIC_NAMESPACE, market: Market | str | None = None
    ) -> list[tuple[Market, str]]:
        """Distinct (market, symbol) pairs holding at least one bar."""
        return sorted(
            {(info.market, info.symbol) for info in self.list_datasets(namespace=namespace, market=market)}
        )

    def _scan(self, manifests: Iterator[Path]) -> list[DatasetInfo]:
        infos = []
        for path in manifests:
            manifest = self._load_manifest(path.parent)
            if manifest is not None and manifest.get("rows", 0) > 0:
                infos.append(self._info_from_manifest(manifest))
        return sorted(infos, key=lambda i: (i.namespace, i.market.value, i.symbol, i.timeframe.nanos))

    def read_base(
        self,
        market: Market | str,
        symbol: str,
        timeframe: Timeframe | str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        *,
        namespace: str = PUBLIC_NAMESPACE,
    ) -> Bars:
        """Stored bars of exactly this timeframe in ``[start, end)`` (no session filtering)."""
        info = self.dataset(market, symbol, timeframe, namespace=namespace)
        if info is None:
            raise DatasetNotFound(f"no {parse_timeframe(timeframe).value} data stored for {market}:{symbol}")
        return self._read_range(info, to_ns_or_none(start), to_ns_or_none(end))

    def _partitions_in_range(self, info: DatasetInfo, start_ns: int | None, end_ns: int | None) -> list[Path]:
        directory = self.dataset_dir(info.market, info.symbol, info.timeframe, info.namespace)
        return [
            directory / f"{name}.parquet"
            for name, part in sorted(info.partitions.items(), key=lambda item: item[1].start_ns)
            if (start_ns is None or part.end_ns >= start_ns) and (end_ns is None or part.start_ns < end_ns)
        ]

    def _read_range(self, info: DatasetInfo, start_ns: int | None, end_ns: int | None) -> Bars:
        paths = self._partitions_in_range(info, start_ns, end_ns)
        if not paths:
            return Bars.empty()
        tables = (
            [self._read_table(paths[0])]
            if len(paths) == 1
            else _partition_pool().map(self._read_table, paths)
        )
        bars = bars_from_input(pa.concat_tables(tables))
        return bars.between(start_ns, end_ns) if start_ns is not None or end_ns is not None else bars

    def _resample_range(
        self, info: DatasetInfo, target: Timeframe, start_ns: int | None, end_ns: int | None
    ) -> Bars:
        """Resample partition by partition and stitch buckets that straddle partition seams.

        Each partition's columns are zero-copy views of the decoded Parquet buffers, so the base
        series is never concatenated in memory: only the (much smaller) resampled parts are.
        """
        calendar = calendar_for(info.market)

        def resample_partition(path: Path) -> Bars:
            bars = bars_from_input(self._read_table(path))
            if start_ns is not None or end_ns is not None:
                bars = bars.between(start_ns, end_ns)
            return resample(bars, info.timeframe, target, calendar)

        paths = self._partitions_in_range(info, start_ns, end_ns)
        if len(paths) == 1:
            return resample_partition(paths[0])
        # Decoding and resampling release the GIL: partitions overlap, one resampling while the
        # next decodes.
        return merge_adjacent_buckets(list(_partition_pool().map(resample_partition, paths)))

    def base_for(
        self, market: Market | str, symbol: str, target: Timeframe | str, *, namespace: str = PUBLIC_NAMESPACE
    ) -> DatasetInfo:
        """The stored dataset a ``target`` request is served from: exact match, else the coarsest resamplable base."""
        target = parse_timeframe(target)
        candidates = [
            info
            for info in self.coverage(market, symbol, namespace=namespace)
            if can_resample(info.timeframe, target)
        ]
        if not candidates:
            stored = ", ".join(
                info.timeframe.value for info in self.coverage(market, symbol, namespace=namespace)
            )
            if stored:
                raise TimeframeNotServable(
                    f"{market}:{symbol} stores {stored}; none can produce {target.value} bars"
                )
            raise DatasetNotFound(f"no data stored for {market}:{symbol}")
        exact = [info for info in candidates if info.timeframe == target]
        return exact[0] if exact else max(candidates, key=lambda info: info.timeframe.nanos)

    def read(
        self,
        market: Market | str,
        symbol: str,
        timeframe: Timeframe | str,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        limit: int | None = None,
        *,
        namespace: str = PUBLIC_NAMESPACE,
        use_cache: bool = True,
    ) -> Bars:
        """Bars of any supported timeframe with bar open in ``[start, end)``.

        Served as stored when a dataset of that timeframe exists, otherwise resampled along the
        market's sessions (which leaves out bars outside them, e.g. equity pre-market prints).
        ``limit`` keeps the latest ``limit`` bars of the range. Returned arrays may be read-only
        views of decoded or cached data: copy before modifying them.
        """
        target = parse_timeframe(timeframe)
        start_ns, end_ns = to_ns_or_none(start), to_ns_or_none(end)
        base = self.base_for(market, symbol, target, namespace=namespace)
        if base.timeframe == target:
            bars = self._read_range(base, start_ns, end_ns)
        elif use_cache:
            key = (
                base.namespace,
                base.market.value,
                base.symbol,
                base.timeframe.value,
                target.value,
                base.checksum,
            )
            series = self._cache.get(key)
            if series is None:
                series = self._resample_range(base, target, None, None)
                self._cache.put(key, series)
            bars = series.between(start_ns, end_ns)
        else:
            # Buckets are labelled at or within two days of their first base bar (forex daily and
            # weekly bars open the evening before their label date), hence the read margins.
            margin = 2 * NS_PER_DAY
            base_start = None if start_ns is None else start_ns - margin
            base_end = None if end_ns is None else end_ns + target.nanos + margin
            bars = self._resample_range(base, target, base_start, base_end).between(start_ns, end_ns)
        return bars.tail(limit) if limit is not None else bars
