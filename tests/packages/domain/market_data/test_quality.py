"""Import normalisation: a CSV with planted defects must come back with each defect named."""

from __future__ import annotations

import io

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
