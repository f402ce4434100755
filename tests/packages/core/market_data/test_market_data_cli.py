"""`minsy market-data ensure|status|import` against the session's servers and store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from apps.cli import build_parser, main, parse_column_map
from tests.packages.core.market_data.helpers import bars_frame, csv_bytes, get_bars


def minsy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``minsy market-data ...`` in this process (a sync test, so outside the event loop)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["market-data", *args])
    out = capsys.readouterr().out
    return int(exited.value.code or 0), out


def last_json(out: str) -> dict[str, Any]:
    """The JSON document the command printed after its progress lines."""
    start = out.index("\n{") + 1 if not out.startswith("{") else 0
    loaded: dict[str, Any] = json.loads(out[start:])
    return loaded


def test_column_map_and_arguments() -> None:
    assert parse_column_map("ts=Date, close=Adj Close,volume=") == {
        "ts": "Date",
        "close": "Adj Close",
        "volume": None,
    }
    with pytest.raises(ValueError, match="field=column"):
        parse_column_map("Date")
    args = build_parser().parse_args(
        [
            "market-data",
            "import",
            "x.csv",
            "--symbol",
            "A",
            "--market",
            "crypto",
            "--timeframe",
            "1h",
            "--timezone",
            "UTC",
        ]
    )
    assert (args.action, args.gap_policy, args.user) == ("import", "keep", None)


@pytest.fixture()
async def importer_account(
    make_account: Any, api: httpx.AsyncClient, tmp_path: Path
) -> tuple[Any, Path, int]:
    account = await make_account()
    ibm = bars_frame(
        await get_bars(
            api, account.headers, market="us_stocks", symbol="IBM", timeframe="1d", start="2012-01-01"
        )
    ).reset_index()
    ibm["Date"] = ibm.pop("ts").dt.strftime("%Y-%m-%d")
    path = tmp_path / "ibm.csv"
    path.write_bytes(csv_bytes(ibm.rename(columns={"close": "Close"})))
    return account, path, len(ibm)


def test_ensure_is_idempotent_status_and_import_for_a_user(
    market_data_ready: dict[str, Any],
    importer_account: tuple[Any, Path, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = minsy(capsys, "ensure")
    assert code == 0, out
    state = last_json(out)
    assert state["state"] == "done"
    assert {archive["status"] for archive in state["archives"]} == {"already_registered"}

    code, out = minsy(capsys, "status", "--json")
    assert code == 0, out
    status = last_json(out)
    assert status["status"] == "ok" and status["info"]["inventory"]["symbols"] >= 7

    account, path, rows = importer_account
    code, out = minsy(
        capsys,
        "import",
        str(path),
        "--symbol",
        "myibm",
        "--market",
        "us_stocks",
        "--timeframe",
        "1d",
        "--timezone",
        "America/New_York",
        "--map",
        "ts=Date,close=Close",
        "--user",
        account.email,
        "--json",
    )
    assert code == 0, out
    imported = last_json(out)
    assert imported["symbol"] == "MYIBM" and imported["rows_out"] == rows
    assert imported["quality_report"]["defects"].keys() <= {"gaps", "zero_volume", "outlier_jump"}

    code, out = minsy(
        capsys,
        "import",
        str(path),
        "--symbol",
        "X",
        "--market",
        "us_stocks",
        "--timeframe",
        "1d",
        "--timezone",
        "UTC",
        "--map",
        "ts=Nope",
    )
    assert code == 1


def test_import_of_far_dates_nul_cells_and_a_wide_header_as_shared_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SYNTHETIC daily bars (a straight line) with planted hostile cells, imported as shared data."""
    dates = [f"2024-02-{day:02d}" for day in range(1, 11)]
    dates[2], dates[4], dates[6] = "0000-01-01", "1677-01-01", "2262-05-01"
    lines = ["Date,Open,High,Low,Close,Volume"]
    lines += [f"{day},{10 + i},{11 + i},{9 + i},{10.5 + i},{100 + i}" for i, day in enumerate(dates)]
    lines[8] = lines[8].replace(",17.5,", ",17\x00.5,")  # a NUL inside row 7's close
    assert "\x00" in lines[8]
    path = tmp_path / "hostile.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode())
    arguments = ["--market", "crypto", "--timeframe", "1d", "--timezone", "UTC"]
    mapping = "ts=Date,open=Open,high=High,low=Low,close=Close,volume=Volume"
    code, out = minsy(
        capsys, "import", str(path), "--symbol", "ZZCLIFAR", *arguments, "--map", mapping, "--json"
    )
    assert code == 0, out
    imported = last_json(out)
    rows = {
        item["row"]: item["reason"]
        for item in imported["quality_report"]["defects"]["unparseable_rows"]["items"]
    }
    assert set(rows) == {2, 4, 6, 7}
    assert all("outside" in rows[row] for row in (2, 4, 6)) and "NUL" in rows[7]
    assert imported["dataset"]["row_count"] == 6 and imported["scope"] == "shared"

    wide = tmp_path / "wide.csv"
    wide.write_bytes((",".join(f"c{i}" for i in range(200_000)) + "\n").encode())
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["market-data", "import", str(wide), "--symbol", "ZZCLIWIDE", *arguments])
    assert exited.value.code == 1
    assert "200000 columns" in capsys.readouterr().err
