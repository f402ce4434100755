"""When a resampled bar closes: its session bucket's end, worked out by hand per market and DST regime."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from packages.domain.market_data.bars import Timeframe
from packages.domain.market_data.resample import bucket_closes
from packages.domain.market_data.sessions import calendar_for

# (market, timeframe, bar stamp UTC as resample labels it, close UTC)
_CASES = [
    # Forex days end at 17:00 New York: 22:00 UTC in winter, 21:00 UTC in summer.
    ("forex", "1d", "2017-11-03", "2017-11-03 21:00"),  # Friday before the end of DST
    ("forex", "1d", "2017-11-06", "2017-11-06 22:00"),  # Monday after it
    ("forex", "1d", "2018-03-09", "2018-03-09 22:00"),  # Friday before the start of DST
    ("forex", "1d", "2018-03-12", "2018-03-12 21:00"),  # Monday after it
    # A forex week ends on Friday at 17:00 New York, or on Thursday when Friday is Christmas.
    ("forex", "1w", "2017-12-25", "2017-12-29 22:00"),
    ("forex", "1w", "2020-12-21", "2020-12-24 22:00"),
    ("forex", "1w", "2018-03-05", "2018-03-09 22:00"),
    # Forex four-hour buckets start at 17:00 New York and last four hours.
    ("forex", "4h", "2018-03-12 01:00", "2018-03-12 05:00"),
    # Futures days end at 18:00 New York.
    ("futures", "1d", "2018-03-09", "2018-03-09 23:00"),
    ("futures", "1d", "2018-03-12", "2018-03-12 22:00"),
    # US stocks: 16:00 New York, 13:00 on early closes; a week ends on its last trading day.
    ("us_stocks", "1d", "2018-03-09", "2018-03-09 21:00"),
    ("us_stocks", "1d", "2018-03-12", "2018-03-12 20:00"),
    ("us_stocks", "1d", "2017-11-24", "2017-11-24 18:00"),  # day after Thanksgiving
    ("us_stocks", "1w", "2018-03-26", "2018-03-29 20:00"),  # Good Friday 2018-03-30 is a holiday
    ("us_stocks", "1w", "2017-11-20", "2017-11-24 18:00"),  # the week ends with the early close
    # Intraday US-stock buckets start at 09:30; the last one of a day is cut at the close.
    ("us_stocks", "4h", "2018-03-12 13:30", "2018-03-12 17:30"),
    ("us_stocks", "4h", "2018-03-12 17:30", "2018-03-12 20:00"),
    ("us_stocks", "4h", "2017-11-24 14:30", "2017-11-24 18:00"),  # cut at the 13:00 early close
    # A bucket of prints after an early close closes after its length.
    ("us_stocks", "4h", "2017-11-24 18:30", "2017-11-24 22:30"),
    # Crypto: UTC days and Monday-to-Monday weeks.
    ("crypto", "1d", "2018-03-11", "2018-03-12 00:00"),
    ("crypto", "1w", "2018-03-05", "2018-03-12 00:00"),
    ("crypto", "4h", "2018-03-11 20:00", "2018-03-12 00:00"),
]


@pytest.mark.parametrize(("market", "timeframe", "stamp", "close"), _CASES)
def test_bucket_closes_are_session_ends(market: str, timeframe: str, stamp: str, close: str) -> None:
    labels = np.array([pd.Timestamp(stamp).value], dtype=np.int64)
    closes = bucket_closes(labels, Timeframe(timeframe), calendar_for(market))
    assert pd.Timestamp(int(closes[0])) == pd.Timestamp(close)


def test_bucket_closes_of_no_bars() -> None:
    empty = np.empty(0, dtype=np.int64)
    for timeframe in (Timeframe.H4, Timeframe.D1, Timeframe.W1):
        assert bucket_closes(empty, timeframe, calendar_for("us_stocks")).shape == (0,)
