"""Import normalisation: a CSV with planted defects must come back with each defect named."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from packages.domain.market_data.bars import Market, Timeframe
from packages.domain.market_data.quality import ColumnMapping, GapPolicy, ImportRejected, normalise_import

MAPPING = ColumnMapping(ts="Time", open="O", high="H", low="L", close="C", volume="Vol")


def synthetic_hourly(start_utc: str, hours: int, tz: str, seed: int = 5) -> pd.DataFrame:
    """SYNTHETIC hourly bars written the way a local exporter would: naive wall-clock times in ``tz``."""
    utc = pd.date_range(start_utc, periods=hours, freq="1h", tz="UTC")
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 2e-3, hours)))
    open_ = np.concatenate(([50.0], close[:-1]))
    return pd.DataFrame(
        {
            "Time": utc.tz_convert(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "O": open_.round(4),
            "H": (np.maximum(open_, close) * 1.001).round(4),
            "L": (np.minimum(open_, close) * 0.999).round(4),
            "C": close.round(4),
            "Vol": rng.integers(1, 500, hours),
            "utc": utc,
        }
    )


def to_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    buffer = io.StringIO()
    frame.drop(columns=["utc"]).to_csv(buffer, index=False)
    return pd.read_csv(io.StringIO(buffer.getvalue()), dtype=str, keep_default_na=False)


@pytest.fixture()
def defective() -> tuple[pd.DataFrame, dict[str, int]]:
    frame = synthetic_hourly("2024-03-29 00:00", 96, "Europe/Berlin")
    frame = frame.drop(index=[40, 41, 42]).reset_index(drop=True)  # gap: 3 missing hours
    planted = {
        "zero_volume": 10,
        "high_below_low": 20,
        "close_above_high": 25,
        "outlier": 60,
        "unparseable": 70,
    }
    frame.loc[planted["zero_volume"], "Vol"] = 0
    row = planted["high_below_low"]
    high, low = float(frame.loc[row, "H"]), float(frame.loc[row, "L"])
    frame.loc[row, "H"], frame.loc[row, "L"] = low, high
    frame.loc[planted["close_above_high"], "C"] = frame.loc[planted["close_above_high"], "H"] + 1
    for column in ("O", "H", "L", "C"):
        frame.loc[planted["outlier"], column] = frame.loc[planted["outlier"], column] * 1.6
    frame["C"] = frame["C"].astype(object)
    frame.loc[planted["unparseable"], "C"] = "n/a"
    duplicate = frame.iloc[[30]]
    nonexistent = frame.iloc[[50]].assign(Time="2024-03-31 02:30:00")
    frame = pd.concat([frame, duplicate, nonexistent], ignore_index=True)
    planted["duplicate"] = len(frame) - 2
    planted["nonexistent"] = len(frame) - 1
    frame.iloc[[80, 81]] = frame.iloc[[81, 80]].to_numpy()  # non-monotonic pair
    planted["non_monotonic"] = 81
    return to_csv_frame(frame), planted


def test_report_names_every_planted_defect(defective: tuple[pd.DataFrame, dict[str, int]]) -> None:
    frame, planted = defective
    result = normalise_import(
        frame, MAPPING, timezone="Europe/Berlin", market=Market.CRYPTO, timeframe=Timeframe.H1
    )
    defects = result.report["defects"]
    assert set(defects) >= {
        "unparseable_rows",
        "nonexistent_local_time",
        "duplicate_timestamps",
        "non_monotonic",
        "zero_volume",
        "ohlc_inconsistent",
        "outlier_jump",
        "gaps",
    }

    def rows(name: str) -> set[int]:
        return {item["row"] for item in defects[name]["items"]}

    assert rows("unparseable_rows") == {planted["unparseable"]}
    assert rows("nonexistent_local_time") == {planted["nonexistent"]}
    assert rows("duplicate_timestamps") == {planted["duplicate"]}
    assert planted["non_monotonic"] in rows("non_monotonic")
    assert rows("zero_volume") == {planted["zero_volume"]}
    inconsistent = {item["row"]: item["problems"] for item in defects["ohlc_inconsistent"]["items"]}
    assert "high<low" in inconsistent[planted["high_below_low"]]
    assert "close outside [low, high]" in inconsistent[planted["close_above_high"]]
    assert planted["outlier"] in rows("outlier_jump")
    # the planted 3-hour gap, plus the hour whose only row was unparseable
    assert defects["gaps"]["count"] == 2 and defects["gaps"]["missing_bars"] == 4
    assert result.report["clean"] is False
    bars = result.bars
    assert np.all(np.diff(bars.ts) > 0)
    # 96 generated - 3 gap rows - 1 unparseable row (the duplicate and the nonexistent row are dropped too)
    assert len(bars) == 92
    pd.io.json.ujson_dumps(result.report)  # serialisable


def test_ambiguous_fall_back_hour_resolves_by_order_to_the_true_utc_times() -> None:
    frame = synthetic_hourly("2024-10-26 12:00", 30, "Europe/Berlin")
    truth = frame["utc"].dt.as_unit("ns").astype("int64").to_numpy()
    result = normalise_import(
        to_csv_frame(frame), MAPPING, timezone="Europe/Berlin", market=Market.CRYPTO, timeframe=Timeframe.H1
    )
    np.testing.assert_array_equal(result.bars.ts, truth)
    ambiguous = result.report["defects"]["ambiguous_local_time"]["items"]
    assert [item["resolved_as"] for item in ambiguous] == ["daylight", "standard"]
    assert {item["local_time"] for item in ambiguous} == {"2024-10-27 02:00:00"}
    assert "gaps" not in result.report["defects"]


def test_dst_shift_detects_sessions_recorded_without_daylight_saving() -> None:
    """SYNTHETIC 30m equity bars whose exporter used EST (UTC-5) all year."""
    days = [d for d in pd.date_range("2024-03-04", "2024-03-15") if d.day_of_week < 5]
    opens = [pd.Timestamp(f"{d.date()} 09:30", tz="America/New_York").tz_convert("UTC") for d in days]
    utc = pd.DatetimeIndex([o + pd.Timedelta(minutes=30 * k) for o in opens for k in range(13)])
    fixed_est = (utc - pd.Timedelta(hours=5)).tz_localize(None)
    frame = pd.DataFrame(
        {"Time": fixed_est.strftime("%Y-%m-%d %H:%M"), "O": 10.0, "H": 10.5, "L": 9.5, "C": 10.2, "Vol": 100}
    )
    result = normalise_import(
        to_csv_frame(frame.assign(utc=0)),
        MAPPING,
        timezone="America/New_York",
        market=Market.US_STOCKS,
        timeframe=Timeframe.M30,
    )
    shifted = result.report["defects"]["dst_shift"]["items"]
    assert [item["session"][:10] for item in shifted] == [str(d.date()) for d in days if d.day >= 11]
    assert {item["first_bar_local"] for item in shifted} == {"08:30"}


def test_gap_policies() -> None:
    frame = synthetic_hourly("2024-05-01 00:00", 72, "UTC").drop(index=[30, 31]).reset_index(drop=True)
    csv = to_csv_frame(frame)
    kept = normalise_import(csv, MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.H1)
    filled = normalise_import(
        csv,
        MAPPING,
        timezone="UTC",
        market=Market.CRYPTO,
        timeframe=Timeframe.H1,
        gap_policy=GapPolicy.FORWARD_FILL,
    )
    dropped = normalise_import(
        csv,
        MAPPING,
        timezone="UTC",
        market=Market.CRYPTO,
        timeframe=Timeframe.H1,
        gap_policy=GapPolicy.DROP_INCOMPLETE_SESSIONS,
    )
    assert len(kept.bars) == 70
    assert len(filled.bars) == 72 and filled.report["gap_policy"]["filled_bars"] == 2
    inserted = np.flatnonzero(~np.isin(filled.bars.ts, kept.bars.ts))
    assert np.all(filled.bars.volume[inserted] == 0)
    assert np.all(filled.bars.close[inserted] == kept.bars.close[29])
    # hours 30 and 31 fall on 2024-05-02: that whole UTC day goes
    assert len(dropped.bars) == 48 and dropped.report["gap_policy"]["dropped_sessions"] == 1
    assert not np.any(pd.to_datetime(dropped.bars.ts, utc=True).day == 2)


def test_rejections() -> None:
    frame = to_csv_frame(synthetic_hourly("2024-05-01", 5, "UTC"))
    with pytest.raises(ImportRejected, match="columns not found"):
        normalise_import(frame, ColumnMapping(), timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.H1)
    with pytest.raises(ImportRejected, match="time zone"):
        normalise_import(
            frame, MAPPING, timezone="Mars/Olympus", market=Market.CRYPTO, timeframe=Timeframe.H1
        )


def test_timestamps_with_offsets_and_epoch_numbers_ignore_the_declared_zone() -> None:
    frame = synthetic_hourly("2024-05-01", 24, "UTC")
    truth = frame["utc"].dt.as_unit("ns").astype("int64").to_numpy()
    iso = frame.assign(Time=frame["utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    epoch = frame.assign(Time=(truth // 1_000_000).astype(str))
    for variant in (iso, epoch):
        result = normalise_import(
            to_csv_frame(variant),
            MAPPING,
            timezone="Asia/Tokyo",
            market=Market.CRYPTO,
            timeframe=Timeframe.H1,
        )
        np.testing.assert_array_equal(result.bars.ts, truth)
        assert result.report["timestamps_carried_offset"] is True


def unparseable(result_report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {item["row"]: item for item in result_report["defects"]["unparseable_rows"]["items"]}


def daily_csv(days: int) -> pd.DataFrame:
    """SYNTHETIC daily bars with date-only timestamps, as most daily exports write them."""
    frame = synthetic_hourly("2024-05-01", days, "UTC")
    frame["Time"] = pd.date_range("2024-05-01", periods=days, freq="1D").strftime("%Y-%m-%d")
    return to_csv_frame(frame)


# Out of pandas' nanosecond range (1677-09-21 .. 2262-04-11), year 0, and just outside 1900 .. 2200.
FAR_DATES = {
    3: "0000-01-01",
    5: "1677-01-01",
    7: "2262-05-01",
    9: "1899-12-31",
    11: "2200-01-01",
    13: "9999-12-31",
}


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_dates_outside_1900_to_2200_are_unparseable_rows(timezone: str) -> None:
    csv = daily_csv(20)
    for row, text in FAR_DATES.items():
        csv.loc[row, "Time"] = text
    result = normalise_import(csv, MAPPING, timezone=timezone, market=Market.CRYPTO, timeframe=Timeframe.D1)
    rows = unparseable(result.report)
    assert {row: item["values"]["ts"] for row, item in rows.items()} == FAR_DATES
    assert all("outside" in item["reason"] and "1900-01-01" in item["reason"] for item in rows.values())
    assert len(result.bars) == 20 - len(FAR_DATES)
    assert pd.to_datetime(result.bars.ts).year.min() == 2024


def test_far_timestamps_with_offsets_epochs_and_intraday_times_are_unparseable_rows() -> None:
    frame = synthetic_hourly("2024-05-01", 12, "UTC")
    with_offsets = to_csv_frame(frame.assign(Time=frame["utc"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")))
    with_offsets.loc[2, "Time"] = "0000-01-01T00:00:00Z"
    with_offsets.loc[4, "Time"] = "2262-05-01T00:00:00+05:00"
    with_offsets.loc[6, "Time"] = "1677-01-01T00:00:00-03:00"
    epochs = to_csv_frame(frame.assign(Time=(frame["utc"].dt.as_unit("s").astype("int64")).astype(str)))
    epochs.loc[2, "Time"] = str(99_000_000_000)  # seconds: year 5107
    epochs.loc[4, "Time"] = str(-3_000_000_000)  # 1874
    wall = to_csv_frame(frame)
    wall.loc[2, "Time"] = "0000-01-01 00:00:00"
    wall.loc[4, "Time"] = "2262-04-11 23:47:16"
    wall.loc[6, "Time"] = "1677-09-21 00:12:43"
    for csv, planted in ((with_offsets, {2, 4, 6}), (epochs, {2, 4}), (wall, {2, 4, 6})):
        result = normalise_import(
            csv, MAPPING, timezone="Europe/Berlin", market=Market.CRYPTO, timeframe=Timeframe.H1
        )
        assert set(unparseable(result.report)) == planted
        assert len(result.bars) == 12 - len(planted)


def test_a_file_whose_every_date_is_out_of_range_is_rejected() -> None:
    csv = daily_csv(3)
    csv["Time"] = ["0000-01-01", "1677-01-01", "2262-05-01"]
    with pytest.raises(ImportRejected, match="no valid rows"):
        normalise_import(csv, MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1)


def test_nul_characters_in_cells_make_the_row_unparseable_and_the_report_storable() -> None:
    csv = daily_csv(10)
    csv.loc[2, "O"] = csv.loc[2, "O"] + "\x00"
    csv.loc[4, "Time"] = csv.loc[4, "Time"] + "\x00"  # pandas alone would read this date as if clean
    csv.loc[6, "Vol"] = "\x00"
    result = normalise_import(csv, MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1)
    rows = unparseable(result.report)
    assert set(rows) == {2, 4, 6}
    assert "NUL" in rows[2]["reason"] and "'O'" in rows[2]["reason"]
    assert "'Time'" in rows[4]["reason"] and "'Vol'" in rows[6]["reason"]
    text = json.dumps(result.report)
    assert "\x00" not in text and "\\u0000" not in text  # PostgreSQL jsonb refuses \u0000
    assert rows[2]["values"]["open"].endswith("\\0")


def test_columns_named_with_nul_characters_are_named_printably_in_the_rejection() -> None:
    csv = daily_csv(3).rename(columns={"Time": "Ti\x00me"})
    with pytest.raises(ImportRejected) as refused:
        normalise_import(csv, MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1)
    assert "\x00" not in str(refused.value) and "Ti\\0me" in str(refused.value)


def test_report_values_of_huge_cells_are_shortened() -> None:
    csv = daily_csv(5)
    csv.loc[1, "C"] = "x" * 1_000_000
    result = normalise_import(csv, MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1)
    shown = unparseable(result.report)[1]["values"]["close"]
    assert len(shown) < 200 and shown.startswith("xxx")


@pytest.mark.parametrize("bad_format", ["%", "%Q", "%Y%", "%Y" * 120])
def test_an_invalid_timestamp_format_is_a_rejection_pointing_at_it(bad_format: str) -> None:
    mapping = ColumnMapping(
        ts="Time", open="O", high="H", low="L", close="C", volume="Vol", timestamp_format=bad_format
    )
    with pytest.raises(ImportRejected, match="timestamp_format") as refused:
        normalise_import(daily_csv(3), mapping, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1)
    assert refused.value.pointer == "/mapping/timestamp_format"


def test_rows_spread_over_centuries_are_refused_before_gap_detection() -> None:
    """Two minute bars 299 years apart would otherwise expand into 157 million expected bars."""
    csv = daily_csv(2)
    csv["Time"] = ["1900-01-01 00:00", "2199-12-31 00:00"]
    started = time.perf_counter()
    with pytest.raises(ImportRejected, match="span") as refused:
        normalise_import(
            csv,
            MAPPING,
            timezone="UTC",
            market=Market.CRYPTO,
            timeframe=Timeframe.M1,
            max_span_bars=2_000_000,
        )
    assert time.perf_counter() - started < 1.0
    assert "1900-01-01" in str(refused.value) and "2199-12-31" in str(refused.value)
    within = normalise_import(
        daily_csv(30), MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1, max_span_bars=30
    )
    assert len(within.bars) == 30


def test_a_mapped_column_name_that_appears_twice_is_a_rejection() -> None:
    csv = daily_csv(3)
    twice = pd.concat([csv, csv[["C"]]], axis=1)  # as a Parquet file may hold it
    with pytest.raises(ImportRejected, match="more than one column is named \\['C'\\]"):
        normalise_import(twice, MAPPING, timezone="UTC", market=Market.CRYPTO, timeframe=Timeframe.D1)
