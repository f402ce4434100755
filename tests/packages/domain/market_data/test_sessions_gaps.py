"""Session calendars, expected bars and gap detection."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from packages.domain.market_data.bars import NS_PER_DAY, NS_PER_MINUTE, Timeframe
from packages.domain.market_data.gaps import detect_missing_ranges, missing_timestamps
from packages.domain.market_data.sessions import (
    CRYPTO_CALENDAR,
    FOREX_CALENDAR,
    US_EQUITY_CALENDAR,
    expected_timestamps,
    nyse_early_closes,
    nyse_holidays,
)
from packages.domain.market_data.timeconv import to_ns


def test_nyse_2024_holidays_and_early_closes() -> None:
    published = {
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 15),
        dt.date(2024, 2, 19),
        dt.date(2024, 3, 29),
        dt.date(2024, 5, 27),
        dt.date(2024, 6, 19),
        dt.date(2024, 7, 4),
        dt.date(2024, 9, 2),
        dt.date(2024, 11, 28),
        dt.date(2024, 12, 25),
    }
    assert nyse_holidays(2024) == published
    assert nyse_early_closes(2024) == {dt.date(2024, 7, 3), dt.date(2024, 11, 29), dt.date(2024, 12, 24)}
    # 2022: New Year's Day fell on a Saturday and was not observed; Juneteenth observed on Monday 20th.
    assert dt.date(2021, 12, 31) not in nyse_holidays(2021)
    assert dt.date(2022, 6, 20) in nyse_holidays(2022)
    assert dt.date(2012, 10, 29) in nyse_holidays(2012)


def test_equity_sessions_have_390_minutes_in_both_dst_regimes_and_210_on_early_close() -> None:
    for day in ("2024-03-08", "2024-03-11", "2024-11-04"):
        stamps = expected_timestamps(US_EQUITY_CALENDAR, Timeframe.M1, to_ns(day), to_ns(day) + NS_PER_DAY)
        local = pd.to_datetime(stamps, utc=True).tz_convert("America/New_York")
        assert len(stamps) == 390
        assert local[0].strftime("%H:%M") == "09:30" and local[-1].strftime("%H:%M") == "15:59"
    early = expected_timestamps(US_EQUITY_CALENDAR, Timeframe.M1, to_ns("2024-11-29"), to_ns("2024-11-30"))
    assert len(early) == 210
    hourly = expected_timestamps(US_EQUITY_CALENDAR, Timeframe.H1, to_ns("2024-03-11"), to_ns("2024-03-12"))
    assert len(hourly) == 7  # 09:30 ... 15:30, the last bucket half an hour long


def test_expected_daily_equity_bars_skip_weekends_and_holidays() -> None:
    stamps = expected_timestamps(US_EQUITY_CALENDAR, Timeframe.D1, to_ns("2024-01-01"), to_ns("2025-01-01"))
    assert len(stamps) == 252  # NYSE trading days in 2024
    weekly = expected_timestamps(US_EQUITY_CALENDAR, Timeframe.W1, to_ns("2024-01-01"), to_ns("2024-02-01"))
    assert all(pd.to_datetime(weekly, utc=True).day_of_week == 0)


def test_forex_hourly_week_runs_sunday_17h_to_friday_17h_new_york() -> None:
    stamps = expected_timestamps(FOREX_CALENDAR, Timeframe.H1, to_ns("2024-03-09"), to_ns("2024-03-17"))
    local = pd.to_datetime(stamps, utc=True).tz_convert("America/New_York")
    assert len(stamps) == 120
    assert (local[0].day_name(), local[0].hour) == ("Sunday", 17)
    assert (local[-1].day_name(), local[-1].hour) == ("Friday", 16)


def test_forex_is_closed_on_christmas_and_new_year_so_real_eurusd_shows_no_holiday_gaps() -> None:
    from backtesting.test import EURUSD  # real hourly EURUSD, 2017-2018

    stamps = pd.DatetimeIndex(EURUSD.index).tz_localize("UTC").as_unit("ns").asi8
    start, end = to_ns("2017-12-18"), to_ns("2018-01-06")
    # The sessions ending 17:00 New York on Mon 2017-12-25 and Mon 2018-01-01 are not held: the
    # data has no bars then, and only the next session's first two hours on those UTC dates.
    expected = expected_timestamps(FOREX_CALENDAR, Timeframe.H1, start, end)
    closed = pd.to_datetime(expected, utc=True).tz_convert("America/New_York")
    assert not any((d.month, d.day) in {(12, 25), (1, 1)} and d.hour < 17 for d in closed)
    # From Mon 00:00 UTC (two hours into the week): 118 bars, then two weeks of 120 less a closed day.
    assert len(expected) == 118 + (120 - 24) + (120 - 24)
    assert detect_missing_ranges(FOREX_CALENDAR, Timeframe.H1, stamps, start, end) == []
    # Bars a source prints on a closed day are kept (in session), never dropped.
    on_christmas = stamps[(stamps >= to_ns("2017-12-25")) & (stamps < to_ns("2017-12-26"))]
    assert FOREX_CALENDAR.assign(on_christmas, Timeframe.H1).in_session.all()


def test_missing_ranges_group_consecutive_expected_bars() -> None:
    start, end = to_ns("2024-03-01"), to_ns("2024-03-02")
    expected = expected_timestamps(CRYPTO_CALENDAR, Timeframe.M5, start, end)
    assert len(expected) == 288
    planted = np.r_[10:20, 100:101, 280:288]
    existing = np.delete(expected, planted)
    ranges = detect_missing_ranges(CRYPTO_CALENDAR, Timeframe.M5, existing, start, end)
    assert [(r.start_ns, r.end_ns, r.bars) for r in ranges] == [
        (int(expected[10]), int(expected[19]) + 5 * NS_PER_MINUTE, 10),
        (int(expected[100]), int(expected[100]) + 5 * NS_PER_MINUTE, 1),
        (int(expected[280]), end, 8),
    ]
    assert (
        missing_timestamps(CRYPTO_CALENDAR, Timeframe.M5, existing, start, end).tolist()
        == expected[planted].tolist()
    )


def test_a_missing_equity_day_is_one_range_and_holidays_are_not_gaps() -> None:
    expected = expected_timestamps(US_EQUITY_CALENDAR, Timeframe.D1, to_ns("2024-06-01"), to_ns("2024-07-31"))
    without = expected[expected != to_ns("2024-07-10")]
    ranges = detect_missing_ranges(
        US_EQUITY_CALENDAR, Timeframe.D1, without, to_ns("2024-06-01"), to_ns("2024-07-31")
    )
    assert [(r.to_dict()["start"], r.bars) for r in ranges] == [("2024-07-10T00:00:00Z", 1)]
    assert to_ns("2024-07-04") not in expected.tolist() and to_ns("2024-06-19") not in expected.tolist()
