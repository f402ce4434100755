"""Hostile and out-of-range inputs to the market-data API answer 4xx problems, never a 500.

NUL characters (which PostgreSQL cannot store), deeply nested JSON, dates outside pandas'
nanosecond range, very wide CSV headers; and a large import parses off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.packages.core.market_data.helpers import csv_bytes, upload

WIDE_COLUMNS = 200_000


def assert_problem(response: httpx.Response, status: int, pointer: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["detail"]
    if pointer is not None:
        assert pointer in [error["pointer"] for error in body["errors"]], body
    return body


def synthetic_daily(days: int) -> pd.DataFrame:
    """SYNTHETIC daily bars (a seeded random walk) with date-only timestamps."""
    rng = np.random.default_rng(3)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 1e-2, days)))
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=days, freq="1D").strftime("%Y-%m-%d"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.integers(1, 100, days),
        }
    ).astype({"ts": object, "open": object, "volume": object})


IMPORT_FIELDS = {"market": "crypto", "timeframe": "1d", "timezone": "UTC"}

NUL_QUERIES = [
    ("/market-data/symbols", {"q": "AA\x00PL"}, "/query/q"),
    ("/market-data/symbols", {"q": "\x00"}, "/query/q"),
    ("/market-data/symbols", {"market": "crypto\x00"}, "/query/market"),
    ("/market-data/udf/search", {"query": "\x00"}, "/query/query"),
    ("/market-data/udf/search", {"query": "EUR", "type": "forex\x00"}, "/query/type"),
    ("/market-data/udf/search", {"query": "EUR", "exchange": "forex\x00"}, "/query/exchange"),
    ("/market-data/udf/symbols", {"symbol": "forex:EUR\x00USD"}, "/query/symbol"),
    ("/market-data/udf/symbols", {"symbol": "EUR\x00USD"}, "/query/symbol"),
    (
        "/market-data/udf/history",
        {"symbol": "AAPL\x00", "resolution": "1D", "from": 0, "to": 1},
        "/query/symbol",
    ),
    (
        "/market-data/udf/history",
        {"symbol": "AAPL", "resolution": "1D\x00", "from": 0, "to": 1},
        "/query/resolution",
    ),
    ("/market-data/bars", {"market": "us_stocks", "symbol": "AAPL\x00", "timeframe": "1d"}, "/query/symbol"),
    (
        "/market-data/bars",
        {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1d\x00"},
        "/query/timeframe",
    ),
    (
        "/market-data/bars",
        {"market": "us_stocks", "symbol": "AAPL", "timeframe": "1d", "cursor": "\x00"},
        "/query/cursor",
    ),
    ("/market-data/quote", {"market": "us_stocks", "symbol": "\x00"}, "/query/symbol"),
    (
        "/market-data/gaps",
        {
            "market": "us_stocks",
            "symbol": "A\x00",
            "timeframe": "1d",
            "start": "2020-01-01",
            "end": "2020-02-01",
        },
        "/query/symbol",
    ),
    (
        "/market-data/regime",
        {"market": "us_stocks", "symbol": "SPX\x00", "trading_frequency": "swing"},
        "/query/symbol",
    ),
]


@pytest.mark.parametrize(("path", "params", "pointer"), NUL_QUERIES)
async def test_nul_characters_in_query_strings_are_422_pointing_at_the_parameter(
    api: httpx.AsyncClient, make_account: Any, path: str, params: dict[str, Any], pointer: str
) -> None:
    account = await make_account()
    body = assert_problem(await api.get(path, params=params, headers=account.headers), 422, pointer)
    assert body["errors"][0]["message"]


async def test_nul_in_a_search_term_names_the_nul_character(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    for path, name in (("/market-data/symbols", "q"), ("/market-data/udf/search", "query")):
        body = assert_problem(await api.get(path, params={name: "MS\x00FT"}, headers=account.headers), 422)
        [error] = body["errors"]
        assert (error["code"], error["pointer"]) == ("nul_character", f"/query/{name}")
        assert "NUL character" in error["message"]
    still = await api.get("/market-data/symbols", params={"q": "MSFT"}, headers=account.headers)
    assert still.status_code == 200


async def test_nul_in_the_symbol_path_segment_is_422(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    assert_problem(await api.get("/market-data/symbols/us_stocks/AA%00PL", headers=account.headers), 422)


async def test_import_form_fields_with_nul_point_at_the_field(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    data = csv_bytes(synthetic_daily(5))
    fields = {**IMPORT_FIELDS, "symbol": "NULFIELD"}
    assert_problem(
        await upload(api, account.headers, data, **{**fields, "timezone": "UTC\x00"}), 422, "/timezone"
    )
    assert_problem(
        await upload(api, account.headers, data, mapping={"ts": "t\x00s"}, **fields), 422, "/mapping/ts"
    )
    assert_problem(
        await upload(api, account.headers, data, **{**fields, "symbol": "NUL\x00"}), 422, "/symbol"
    )
    # None of these reached the import step, so nothing was recorded.
    assert (await api.get("/market-data/imports", headers=account.headers)).json()["total"] == 0


async def test_a_file_name_with_nul_is_stored_printably(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    # Written by hand: httpx would percent-encode the NUL in the file name.
    boundary = "hostile-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in {**IMPORT_FIELDS, "symbol": "NULNAME"}.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bars\x00.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + csv_bytes(synthetic_daily(5))
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = await api.post(
        "/market-data/imports",
        content=b"".join(parts),
        headers={**account.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["file_name"] == "bars\\0.csv"
    listed = (await api.get("/market-data/imports", headers=account.headers)).json()
    assert listed["items"][0]["file_name"] == "bars\\0.csv"


@pytest.mark.parametrize("mapping", ["[" * 2000 + "]" * 2000, '{"ts":' * 570 + "1" + "}" * 570])
async def test_deeply_nested_mapping_is_422(api: httpx.AsyncClient, make_account: Any, mapping: str) -> None:
    account = await make_account()
    response = await api.post(
        "/market-data/imports",
        data={**IMPORT_FIELDS, "symbol": "DEEP", "mapping": mapping},
        files={"file": ("bars.csv", csv_bytes(synthetic_daily(5)), "text/csv")},
        headers=account.headers,
    )
    body = assert_problem(response, 422)
    assert all(error["pointer"].startswith("/mapping") for error in body["errors"]), body
    assert (await api.get("/market-data/imports", headers=account.headers)).json()["total"] == 0


async def test_csv_dates_out_of_range_are_unparseable_rows(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    frame = synthetic_daily(20)
    planted = {2: "0000-01-01", 5: "1677-01-01", 8: "2262-05-01", 11: "1800-06-30", 14: "2999-01-01"}
    for row, text in planted.items():
        frame.loc[row, "ts"] = text
    response = await upload(api, account.headers, csv_bytes(frame), **IMPORT_FIELDS, symbol="FARDATES")
    assert response.status_code == 201, response.text
    created = response.json()
    items = created["quality_report"]["defects"]["unparseable_rows"]["items"]
    assert {item["row"]: item["values"]["ts"] for item in items} == planted
    assert all("outside" in item["reason"] for item in items)
    assert created["rows_out"] == 20 - len(planted)
    assert created["dataset"]["coverage_start"].startswith("2024-01-01")


async def test_a_csv_of_only_out_of_range_dates_is_a_recorded_rejection(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    frame = synthetic_daily(3).assign(ts=["0000-01-01", "1677-01-01", "2262-05-01"])
    response = await upload(api, account.headers, csv_bytes(frame), **IMPORT_FIELDS, symbol="ALLFAR")
    body = assert_problem(response, 422, "/file")
    assert "no valid rows" in body["detail"]
    record = (await api.get(f"/market-data/imports/{body['import_id']}", headers=account.headers)).json()
    assert record["status"] == "rejected" and "no valid rows" in record["error"]["message"]


async def test_nul_inside_csv_values_is_reported_per_row(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    frame = synthetic_daily(10)
    frame.loc[3, "open"] = "1\x002"
    frame.loc[6, "ts"] = "2024-01-07\x00"
    response = await upload(api, account.headers, csv_bytes(frame), **IMPORT_FIELDS, symbol="NULCELL")
    assert response.status_code == 201, response.text
    created = response.json()
    rows = {item["row"]: item for item in created["quality_report"]["defects"]["unparseable_rows"]["items"]}
    assert set(rows) == {3, 6}
    assert "NUL" in rows[3]["reason"] and "'open'" in rows[3]["reason"] and "'ts'" in rows[6]["reason"]
    kept = (await api.get(f"/market-data/imports/{created['id']}", headers=account.headers)).json()
    assert kept["quality_report"] == created["quality_report"]


async def test_nul_in_a_csv_header_is_a_recorded_rejection(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    frame = synthetic_daily(5).rename(columns={"ts": "t\x00s"})
    body = assert_problem(
        await upload(api, account.headers, csv_bytes(frame), **IMPORT_FIELDS, symbol="NULHEAD"), 422, "/file"
    )
    assert "columns not found" in body["detail"]
    record = (await api.get(f"/market-data/imports/{body['import_id']}", headers=account.headers)).json()
    assert record["status"] == "rejected" and "\x00" not in record["error"]["message"]


async def test_an_invalid_timestamp_format_is_a_recorded_rejection(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    response = await upload(
        api,
        account.headers,
        csv_bytes(synthetic_daily(5)),
        mapping={"timestamp_format": "%Q"},
        **IMPORT_FIELDS,
        symbol="BADFMT",
    )
    body = assert_problem(response, 422, "/mapping/timestamp_format")
    record = (await api.get(f"/market-data/imports/{body['import_id']}", headers=account.headers)).json()
    assert record["status"] == "rejected" and "timestamp_format" in record["error"]["message"]


async def poll_health(api: httpx.AsyncClient, until: asyncio.Task[Any]) -> list[float]:
    """Latencies of /health calls made one after another until ``until`` is done."""
    latencies: list[float] = []
    while not until.done():
        started = time.perf_counter()
        response = await api.get("/health")
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.02)
    return latencies


async def test_a_very_wide_header_is_refused_in_milliseconds(
    api: httpx.AsyncClient, make_account: Any, settings: Any
) -> None:
    account = await make_account()
    header = ",".join(f"c{i}" for i in range(WIDE_COLUMNS))
    data = (header + "\n" + ",".join(["1"] * WIDE_COLUMNS) + "\n").encode()
    started = time.perf_counter()
    sending = asyncio.create_task(upload(api, account.headers, data, **IMPORT_FIELDS, symbol="WIDE"))
    latencies = await poll_health(api, sending)
    response = sending.result()
    elapsed = time.perf_counter() - started
    print(
        f"200,000-column CSV refused in {elapsed * 1000:.0f} ms; /health max {max(latencies) * 1000:.0f} ms"
    )
    assert elapsed < 1.0
    assert max(latencies) < 0.5
    body = assert_problem(response, 422, "/file")
    assert "200000 columns" in body["detail"] and "MARKET_DATA_IMPORT_MAX_COLUMNS" in body["detail"]
    assert len(response.content) < 2000
    record = (await api.get(f"/market-data/imports/{body['import_id']}", headers=account.headers)).json()
    assert record["status"] == "rejected" and "200000 columns" in record["error"]["message"]
    assert settings.market_data.import_max_columns == 64  # the documented default


def synthetic_minutes_csv(minutes: int) -> bytes:
    """SYNTHETIC one-minute crypto bars (a seeded random walk), about 95 bytes a row."""
    rng = np.random.default_rng(17)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, minutes)))
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2021-01-01", periods=minutes, freq="1min").strftime("%Y-%m-%d %H:%M:%S"),
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.integers(1, 100, minutes),
        }
    )
    return csv_bytes(frame)


async def test_health_answers_while_a_large_import_parses(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    data = synthetic_minutes_csv(300_000)
    started = time.perf_counter()
    importing = asyncio.create_task(
        upload(
            api, account.headers, data, market="crypto", timeframe="1m", timezone="UTC", symbol="BIGIMPORT"
        )
    )
    latencies = await poll_health(api, importing)
    elapsed = time.perf_counter() - started
    response = importing.result()
    print(
        f"{len(data) / 1e6:.1f} MB import took {elapsed:.2f} s; {len(latencies)} /health answers, "
        f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    assert response.status_code == 201, response.text
    assert response.json()["rows_out"] == 300_000
    # Parsing on the event loop would hold one /health call for the whole parse (seconds); in a
    # worker thread pandas still takes the GIL for stretches of up to a few hundred milliseconds.
    assert len(latencies) >= 5 and max(latencies) < 1.5
