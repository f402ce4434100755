"""Import parsing limits: the column cap is applied to the header alone, before any parsing."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from packages.domain.market_data.quality import ImportRejected
from packages.infra.market_data.importer import import_bars, parse_table

WIDE_COLUMNS = 200_000


def synthetic_daily_csv(extra_columns: int = 0) -> bytes:
    """SYNTHETIC daily bars (a straight line) with ``extra_columns`` unused columns."""
    dates = pd.date_range("2024-01-01", periods=10, freq="1D").strftime("%Y-%m-%d")
    close = np.linspace(10, 11, 10)
    frame = pd.DataFrame({"ts": dates, "open": close, "high": close + 1, "low": close - 1, "close": close})
    for index in range(extra_columns):
        frame[f"extra{index}"] = 0
    return frame.to_csv(index=False).encode()


def test_a_very_wide_header_is_refused_from_the_header_line_in_milliseconds() -> None:
    wide = (
        ",".join(f"c{i}" for i in range(WIDE_COLUMNS)) + "\n" + ",".join("1" * WIDE_COLUMNS) + "\n"
    ).encode()
    started = time.perf_counter()
    with pytest.raises(ImportRejected, match="200000 columns") as refused:
        parse_table(wide, "csv", max_columns=64)
    elapsed = time.perf_counter() - started
    print(f"wide header refused in {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    assert "64" in str(refused.value) and len(str(refused.value)) < 500


def test_the_cap_counts_columns_as_csv_does() -> None:
    assert len(parse_table(synthetic_daily_csv(59), "csv", max_columns=64).columns) == 64
    with pytest.raises(ImportRejected, match="65 columns"):
        parse_table(synthetic_daily_csv(60), "csv", max_columns=64)
    # Separators inside quotes (doubled quotes included) do not start a column.
    quoted = b'ts,"open, first","say ""hi"", twice",close\r\n2024-01-01,1,2,3\r\n'
    assert list(parse_table(quoted, "csv", max_columns=4).columns) == [
        "ts",
        "open, first",
        'say "hi", twice',
        "close",
    ]
    with pytest.raises(ImportRejected, match="5 columns"):
        parse_table(b'a,"b,c",d,e,f\n1,2,3,4,5\n', "csv", max_columns=4)
    # A file without a line break is all header.
    with pytest.raises(ImportRejected, match="100 columns"):
        parse_table(b",".join([b"x"] * 100), "csv", max_columns=64)


def test_parquet_files_are_capped_by_their_schema(tmp_path: Path) -> None:
    table = pa.table({f"c{i}": np.arange(3.0) for i in range(70)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    with pytest.raises(ImportRejected, match="70 columns"):
        parse_table(buffer.getvalue(), "parquet", max_columns=64)
    assert len(parse_table(buffer.getvalue(), "parquet", max_columns=70).columns) == 70


def test_parquet_timestamps_beyond_pandas_nanosecond_range_become_unparseable_rows() -> None:
    stamps = [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02"), pd.Timestamp("2500-01-01")]
    table = pa.table(
        {
            "time": pa.array([s.to_pydatetime() for s in stamps], type=pa.timestamp("us", tz="UTC")),
            "open": [1.0, 2.0, 3.0],
            "high": [1.5, 2.5, 3.5],
            "low": [0.5, 1.5, 2.5],
            "close": [1.0, 2.0, 3.0],
            "volume": [1.0, 1.0, 1.0],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    stored = import_bars(
        buffer.getvalue(),
        file_format="parquet",
        mapping={"ts": "time"},
        timezone="UTC",
        market="crypto",
        symbol="FAR",
        timeframe="1d",
        namespace="user-far",
        max_columns=64,
    )
    report = stored.result.report
    assert [item["row"] for item in report["defects"]["unparseable_rows"]["items"]] == [2]
    assert len(stored.result.bars) == 2


def test_import_bars_applies_the_cap() -> None:
    with pytest.raises(ImportRejected, match="columns"):
        import_bars(
            synthetic_daily_csv(10),
            file_format="csv",
            mapping={"volume": None},
            timezone="UTC",
            market="crypto",
            symbol="X",
            timeframe="1d",
            namespace="u",
            max_columns=8,
        )
    stored = import_bars(
        synthetic_daily_csv(10),
        file_format="csv",
        mapping={"volume": None},
        timezone="UTC",
        market="crypto",
        symbol="X",
        timeframe="1d",
        namespace="u",
        max_columns=15,
    )
    assert len(stored.result.bars) == 10


def test_a_narrow_header_over_a_very_wide_row_reads_only_the_header_columns() -> None:
    """pandas alone would take the extra leading fields as a 199,995-level index (a minute's work)."""
    wide_row = ",".join(["2024-01-01", "1", "2", "0.5", "1.5"] + ["9"] * (WIDE_COLUMNS - 5))
    data = ("ts,open,high,low,close\n" + wide_row + "\n2024-01-02,1,2,0.5,1.5\n").encode()
    started = time.perf_counter()
    frame = parse_table(data, "csv", max_columns=64)
    assert time.perf_counter() - started < 1.0
    assert frame.to_dict("records") == [
        {"ts": "2024-01-01", "open": "1", "high": "2", "low": "0.5", "close": "1.5"},
        {"ts": "2024-01-02", "open": "1", "high": "2", "low": "0.5", "close": "1.5"},
    ]


def test_trailing_commas_blank_leading_lines_and_cr_line_ends_keep_columns_in_place() -> None:
    expected = [{"ts": "2024-01-01", "close": "1.5"}, {"ts": "2024-01-02", "close": "1.6"}]
    for data in (
        b"ts,close,\n2024-01-01,1.5,\n2024-01-02,1.6,\n",  # pandas alone would index by ts and shift
        b"ts,close\n2024-01-01,1.5,\n2024-01-02,1.6,\n",
        b"\n\nts,close\n2024-01-01,1.5\n2024-01-02,1.6\n",
        b"ts,close\r2024-01-01,1.5\r2024-01-02,1.6\r",
        b"ts,close\r\n2024-01-01,1.5\r\n2024-01-02,1.6\r\n",
    ):
        frame = parse_table(data, "csv", max_columns=3)
        assert frame[["ts", "close"]].to_dict("records") == expected, data
