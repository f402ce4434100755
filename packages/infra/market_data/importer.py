"""Bar imports from uploaded CSV or Parquet bytes (API upload or CLI file).

Parsing lives here (pyarrow/pandas IO); normalisation and the quality report are the pure
``packages.domain.market_data.quality.normalise_import``. ``import_bars`` optionally writes the
result to the store and registers it with the catalog, under the caller's namespace so one user's
import is invisible to another.
"""

from __future__ import annotations

import io
import re
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
    shown,
)
from packages.infra.market_data.store import ParquetBarStore

ImportFormat = Literal["csv", "parquet"]
MAX_IMPORT_BYTES = 200 * 1024 * 1024
_QUOTED = re.compile(rb'"[^"]*"')
_BLANK_LINES = re.compile(rb"[\r\n]*")
_LINE_END = re.compile(rb"[\r\n]")


def csv_header_columns(data: bytes) -> int:
    """How many columns a CSV's header line names, read from that line alone (after any blank
    lines, which the CSV reader skips too).

    Commas inside quoted names do not count; a doubled quote inside a name splits it into two quoted
    runs, which removes the same text. Linear in the header's length, without building the names."""
    start = _BLANK_LINES.match(data)
    begin = 0 if start is None else start.end()
    end = _LINE_END.search(data, begin)
    header = data[begin:] if end is None else data[begin : end.start()]
    return _QUOTED.sub(b"", header).count(b",") + 1


def _too_wide(columns: int, max_columns: int) -> ImportRejected:
    return ImportRejected(
        f"the file has {columns} columns, more than the {max_columns} accepted "
        "(MARKET_DATA_IMPORT_MAX_COLUMNS); a bar file needs only timestamp, open, high, low, close "
        "and volume columns"
    )


def parse_table(data: bytes, file_format: ImportFormat, *, max_columns: int) -> pd.DataFrame:
    """The file as a table (CSV cells as text). Files wider than ``max_columns`` are refused from
    their header (CSV) or schema (Parquet) before any row is read: parsing costs time per column."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRejected(f"file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MiB")
    try:
        if file_format == "parquet":
            parquet = pq.ParquetFile(io.BytesIO(data))
            if parquet.metadata.num_columns > max_columns:
                raise _too_wide(parquet.metadata.num_columns, max_columns)
            return parquet.read().to_pandas()
        columns = csv_header_columns(data)
        if columns > max_columns:
            raise _too_wide(columns, max_columns)
        # Everything is read as text first so unparseable cells are reported, not silently NaN'd.
        # Only the header's columns are read: fields a row has beyond them are ignored, so a row
        # with a trailing comma (or thousands of extra fields) cannot shift or widen the table.
        return pd.read_csv(
            io.BytesIO(data), dtype=str, keep_default_na=False, usecols=range(columns), index_col=False
        )
    except ImportRejected:
        raise
    except Exception as error:
        raise ImportRejected(f"cannot parse {file_format}: {shown(error, 300)}") from error


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
    max_columns: int,
    max_span_bars: int | None = None,
) -> StoredImport:
    """Parse, normalise and (if ``store`` is given) persist an import; the report is always returned.

    Synchronous and CPU-bound: async callers run it in a worker thread. ``max_columns`` caps the
    file's width, ``max_span_bars`` the bars between its first and last row (see ``normalise_import``).
    The quality report is kept in the dataset manifest (``metadata["quality_report"]``) and in the
    catalog entry's provenance, beside the bars it describes.
    """
    frame = parse_table(data, file_format, max_columns=max_columns)
    column_mapping = mapping if isinstance(mapping, ColumnMapping) else ColumnMapping.from_dict(mapping)
    result = normalise_import(
        frame,
        column_mapping,
        timezone=timezone,
        market=Market(market),
        timeframe=parse_timeframe(timeframe),
        gap_policy=GapPolicy(gap_policy),
        outlier_threshold=outlier_threshold,
        max_span_bars=max_span_bars,
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
