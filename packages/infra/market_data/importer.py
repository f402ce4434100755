"""Bar imports from uploaded CSV or Parquet bytes (API upload or CLI file).

Parsing lives here (pyarrow/pandas IO); normalisation and the quality report are the pure
``packages.domain.market_data.quality.normalise_import``. ``import_bars`` optionally writes the
result to the store and registers it with the catalog, under the caller's namespace so one user's
import is invisible to another.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import pyarrow.parquet as pq

from packages.domain.market_data.bars import Market, Timeframe, parse_timeframe
from packages.domain.market_data.catalog import CatalogEntry, CatalogSink
from packages.domain.market_data.quality import (
    ColumnMapping,
    GapPolicy,
    ImportRejected,
    ImportResult,
    normalise_import,
)
from packages.infra.market_data.store import ParquetBarStore

ImportFormat = Literal["csv", "parquet"]
MAX_IMPORT_BYTES = 200 * 1024 * 1024


def parse_table(data: bytes, file_format: ImportFormat) -> pd.DataFrame:
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRejected(f"file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    try:
        if file_format == "parquet":
            return pq.read_table(io.BytesIO(data)).to_pandas()
        # Everything is read as text first so unparseable cells are reported, not silently NaN'd.
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except ImportRejected:
        raise
    except Exception as error:
        raise ImportRejected(f"cannot parse {file_format}: {error}") from error


@dataclass(frozen=True, slots=True)
class StoredImport:
    result: ImportResult
    catalog_entry: CatalogEntry | None


def import_bars(
    data: bytes,
    *,
    file_format: ImportFormat,
    mapping: ColumnMapping | dict[str, Any],
    timezone: str,
    market: Market | str,
    symbol: str,
    timeframe: Timeframe | str,
    gap_policy: GapPolicy | str = GapPolicy.KEEP,
    namespace: str,
    store: ParquetBarStore | None = None,
    catalog: CatalogSink | None = None,
    outlier_threshold: float = 10.0,
) -> StoredImport:
    """Parse, normalise and (if ``store`` is given) persist an import; the report is always returned.

    The quality report is kept in the dataset manifest (``metadata["quality_report"]``) and in the
    catalog entry's provenance, beside the bars it describes.
    """
    frame = parse_table(data, file_format)
    column_mapping = mapping if isinstance(mapping, ColumnMapping) else ColumnMapping.from_dict(mapping)
    result = normalise_import(
        frame,
        column_mapping,
        timezone=timezone,
        market=Market(market),
        timeframe=parse_timeframe(timeframe),
        gap_policy=GapPolicy(gap_policy),
        outlier_threshold=outlier_threshold,
    )
    entry = None
    if store is not None:
        metadata = {
            "source": "import",
            "provenance": {"kind": "user_import", "format": file_format, "timezone": timezone},
            "quality_report": result.report,
        }
        written = store.write(
            market, symbol, parse_timeframe(timeframe), result.bars, namespace=namespace, metadata=metadata
        )
        entry = written.dataset.catalog_entry(source="import")
        if catalog is not None:
            catalog.upsert_dataset(entry)
    return StoredImport(result=result, catalog_entry=entry)
