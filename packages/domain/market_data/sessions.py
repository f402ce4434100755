"""Trading-session calendars: which trading day a bar belongs to and which bars a session expects.

Three session shapes cover the supported markets:

- ``ContinuousCalendar`` (crypto): trades 24/7; trading days are UTC calendar days.
- ``RegularHoursCalendar`` (US stocks, ETFs, indices): 09:30-16:00 America/New_York on NYSE
  trading days; bars outside regular hours are not part of any session.
- ``RollingDayCalendar`` (forex, futures): a trading day runs from a local boundary hour to the
  same hour next day and is named after the day it ends on (the session opening Sunday 17:00 New
  York is Monday's); the week runs from Sunday's boundary to Friday's.

Intraday resampling buckets are anchored at each session's open, so 4h forex bars start at 17:00,
21:00, 01:00... New York time and 1h equity bars at 09:30, 10:30... Daily bars are stamped at
00:00 UTC of their trading date and weekly bars at 00:00 UTC of the trading week's Monday.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from dateutil.easter import easter

from packages.domain.market_data.bars import (
    NS_PER_DAY,
    NS_PER_HOUR,
    NS_PER_MINUTE,
    BoolArray,
    Int64Array,
    Market,
    Timeframe,
)
from packages.domain.market_data.timezones import day_number, to_wall_clock, wall_clock_to_utc, weekday

NEW_YORK = "America/New_York"
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class SessionAssignment:
    """Per-bar session facts: trading day number, the UTC open of that session, membership mask."""

    trading_day: Int64Array
    session_open: Int64Array
    in_session: BoolArray | None


class SessionCalendar(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def timezone(self) -> str: ...

    def assign(self, ts: Int64Array, source: Timeframe) -> SessionAssignment: ...

    def trading_days(self, first_day: int, last_day: int) -> Int64Array: ...

    def session_bounds(self, days: Int64Array) -> tuple[Int64Array, Int64Array]: ...


def _date_to_day(value: dt.date) -> int:
    return (value - _EPOCH).days


def _daily_assignment(ts: Int64Array) -> SessionAssignment:
    # Daily and weekly base bars are already stamped with their trading date at 00:00 UTC.
    days = day_number(ts)
    return SessionAssignment(trading_day=days, session_open=days * NS_PER_DAY, in_session=None)


@dataclass(frozen=True, slots=True)
class ContinuousCalendar:
    name: str = "continuous_utc"
    timezone: str = "UTC"

    def assign(self, ts: Int64Array, source: Timeframe) -> SessionAssignment:
        if not source.is_intraday:
            return _daily_assignment(ts)
        days = day_number(ts)
        return SessionAssignment(trading_day=days, session_open=days * NS_PER_DAY, in_session=None)

    def trading_days(self, first_day: int, last_day: int) -> Int64Array:
        return np.arange(first_day, last_day + 1, dtype=np.int64)

    def session_bounds(self, days: Int64Array) -> tuple[Int64Array, Int64Array]:
        return days * NS_PER_DAY, (days + 1) * NS_PER_DAY


@dataclass(frozen=True, slots=True)
class RegularHoursCalendar:
    """Exchange regular trading hours with the NYSE holiday and early-close calendar."""

    name: str = "us_equity_regular_hours"
    timezone: str = NEW_YORK
    open_minute: int = 9 * 60 + 30
    close_minute: int = 16 * 60
    early_close_minute: int = 13 * 60

    def assign(self, ts: Int64Array, source: Timeframe) -> SessionAssignment:
        if not source.is_intraday:
            return _daily_assignment(ts)
        wall = to_wall_clock(ts, self.timezone)
        days = day_number(wall)
        time_of_day = wall - days * NS_PER_DAY
        open_ns = self.open_minute * NS_PER_MINUTE
        in_session = (time_of_day >= open_ns) & (time_of_day < self.close_minute * NS_PER_MINUTE)
        return SessionAssignment(
            trading_day=days, session_open=ts - (time_of_day - open_ns), in_session=in_session
        )

    def trading_days(self, first_day: int, last_day: int) -> Int64Array:
        days = np.arange(first_day, last_day + 1, dtype=np.int64)
        days = days[weekday(days) < 5]
        closed = np.fromiter(_closed_days(int(first_day), int(last_day)), dtype=np.int64)
        return days[~np.isin(days, closed)]

    def session_bounds(self, days: Int64Array) -> tuple[Int64Array, Int64Array]:
        early = np.isin(
            days, np.fromiter(_early_close_days(int(days.min()), int(days.max())), dtype=np.int64)
        )
        close_minutes = np.where(early, self.early_close_minute, self.close_minute)
        opens = wall_clock_to_utc(days * NS_PER_DAY + self.open_minute * NS_PER_MINUTE, self.timezone)
        closes = wall_clock_to_utc(days * NS_PER_DAY + close_minutes * NS_PER_MINUTE, self.timezone)
        return opens, closes


@dataclass(frozen=True, slots=True)
class RollingDayCalendar:
    """Sessions running from ``boundary_hour`` local time to the same hour the next day, Sunday to Friday.

    ``closed_dates`` (month, day) are trading days the market does not hold: a weekday session ending
    on such a date is not expected (so its absence is no gap), while bars a source still prints then
    are kept.
    """

    name: str
    timezone: str = NEW_YORK
    boundary_hour: int = 17
    closed_dates: tuple[tuple[int, int], ...] = ()

    def assign(self, ts: Int64Array, source: Timeframe) -> SessionAssignment:
        if not source.is_intraday:
            return _daily_assignment(ts)
        since_boundary = to_wall_clock(ts, self.timezone) - self.boundary_hour * NS_PER_HOUR
        days = day_number(since_boundary) + 1
        elapsed = since_boundary - (days - 1) * NS_PER_DAY
        return SessionAssignment(trading_day=days, session_open=ts - elapsed, in_session=weekday(days) < 5)

    def trading_days(self, first_day: int, last_day: int) -> Int64Array:
        days = np.arange(first_day, last_day + 1, dtype=np.int64)
        days = days[weekday(days) < 5]
        if not self.closed_dates or days.shape[0] == 0:
            return days
        closed = [
            _date_to_day(dt.date(year, month, day))
            for year in _years(int(days[0]), int(days[-1]))
            for month, day in self.closed_dates
        ]
        return days[~np.isin(days, np.asarray(closed, dtype=np.int64))]

    def session_bounds(self, days: Int64Array) -> tuple[Int64Array, Int64Array]:
        boundary = self.boundary_hour * NS_PER_HOUR
        opens = wall_clock_to_utc((days - 1) * NS_PER_DAY + boundary, self.timezone)
        closes = wall_clock_to_utc(days * NS_PER_DAY + boundary, self.timezone)
        return opens, closes


CRYPTO_CALENDAR = ContinuousCalendar()
US_EQUITY_CALENDAR = RegularHoursCalendar()
# The interbank market closes for Christmas Day and New Year's Day (thin quotes at most).
FOREX_CALENDAR = RollingDayCalendar(
    name="forex_17_new_york", boundary_hour=17, closed_dates=((12, 25), (1, 1))
)
# CME Globex trades from 18:00 to 17:00 New York time; the trading day starts after the daily break.
FUTURES_CALENDAR = RollingDayCalendar(name="futures_18_new_york", boundary_hour=18)

_CALENDARS: dict[Market, SessionCalendar] = {
    Market.CRYPTO: CRYPTO_CALENDAR,
    Market.US_STOCKS: US_EQUITY_CALENDAR,
    Market.FOREX: FOREX_CALENDAR,
    Market.FUTURES: FUTURES_CALENDAR,
}


def calendar_for(market: Market | str) -> SessionCalendar:
    return _CALENDARS[Market(market)]


def week_start_day(days: Int64Array) -> Int64Array:
    """Day number of the Monday starting each day's week."""
    return days - weekday(days)


def expected_timestamps(
    calendar: SessionCalendar, timeframe: Timeframe, start_ns: int, end_ns: int
) -> Int64Array:
    """Bar-open timestamps a complete dataset has in ``[start_ns, end_ns)`` under ``calendar``."""
    if end_ns <= start_ns:
        return np.empty(0, dtype=np.int64)
    first_day = start_ns // NS_PER_DAY - 1
    last_day = end_ns // NS_PER_DAY + 1
    days = calendar.trading_days(first_day, last_day)
    if days.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    if timeframe == Timeframe.D1:
        stamps = days * NS_PER_DAY
    elif timeframe == Timeframe.W1:
        stamps = np.unique(week_start_day(days)) * NS_PER_DAY
    else:
        opens, closes = calendar.session_bounds(days)
        step = timeframe.nanos
        counts = -((opens - closes) // step)  # ceiling division: a short last bucket still counts
        total = int(counts.sum())
        first_index = np.repeat(np.cumsum(counts) - counts, counts)
        stamps = np.repeat(opens, counts) + (np.arange(total, dtype=np.int64) - first_index) * step
    return stamps[(stamps >= start_ns) & (stamps < end_ns)]


def _observed(holiday: dt.date) -> dt.date:
    if holiday.weekday() == 5:
        return holiday - dt.timedelta(days=1)
    if holiday.weekday() == 6:
        return holiday + dt.timedelta(days=1)
    return holiday


def _nth_weekday(year: int, month: int, weekday_index: int, nth: int) -> dt.date:
    first = dt.date(year, month, 1)
    offset = (weekday_index - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (nth - 1))


def _last_weekday(year: int, month: int, weekday_index: int) -> dt.date:
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last = next_month - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday_index) % 7)


# Unscheduled NYSE full-day closures since 2000 (national mourning days, 9/11, Hurricane Sandy).
_SPECIAL_CLOSURES = (
    dt.date(2001, 9, 11),
    dt.date(2001, 9, 12),
    dt.date(2001, 9, 13),
    dt.date(2001, 9, 14),
    dt.date(2004, 6, 11),
    dt.date(2007, 1, 2),
    dt.date(2012, 10, 29),
    dt.date(2012, 10, 30),
    dt.date(2018, 12, 5),
    dt.date(2025, 1, 9),
)


@lru_cache(maxsize=256)
def nyse_holidays(year: int) -> frozenset[dt.date]:
    """NYSE full-day holidays under the current rules (Juneteenth from 2022), plus special closures."""
    new_year = dt.date(year, 1, 1)
    holidays = {
        # A New Year's Day falling on Saturday is not moved to the Friday (NYSE rule 7.2).
        new_year + dt.timedelta(days=1) if new_year.weekday() == 6 else new_year,
        _nth_weekday(year, 1, 0, 3),
        _nth_weekday(year, 2, 0, 3),
        easter(year) - dt.timedelta(days=2),
        _last_weekday(year, 5, 0),
        _observed(dt.date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),
        _nth_weekday(year, 11, 3, 4),
        _observed(dt.date(year, 12, 25)),
    }
    if year >= 2022:
        holidays.add(_observed(dt.date(year, 6, 19)))
    holidays = {day for day in holidays if day.weekday() < 5}
    holidays.update(day for day in _SPECIAL_CLOSURES if day.year == year)
    return frozenset(holidays)


@lru_cache(maxsize=256)
def nyse_early_closes(year: int) -> frozenset[dt.date]:
    """13:00 closes: the day before Independence Day, the day after Thanksgiving, Christmas Eve."""
    candidates = {
        dt.date(year, 7, 3),
        _nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1),
        dt.date(year, 12, 24),
    }
    closed = nyse_holidays(year)
    return frozenset(day for day in candidates if day.weekday() < 5 and day not in closed)


def _years(first_day: int, last_day: int) -> range:
    first = _EPOCH + dt.timedelta(days=first_day)
    last = _EPOCH + dt.timedelta(days=last_day)
    return range(first.year, last.year + 1)


def _closed_days(first_day: int, last_day: int) -> list[int]:
    return [_date_to_day(day) for year in _years(first_day, last_day) for day in nyse_holidays(year)]


def _early_close_days(first_day: int, last_day: int) -> list[int]:
    return [_date_to_day(day) for year in _years(first_day, last_day) for day in nyse_early_closes(year)]
