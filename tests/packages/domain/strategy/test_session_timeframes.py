"""Higher-timeframe factors follow the market's sessions, like the bars the market-data store serves.

Real EURUSD hourly bars (2017-04-19..2018-02-07, bundled with backtesting.py) cover the end of US
daylight saving time on 2017-11-05; SYNTHETIC hourly bars (hand-built timestamps, close = row
number) cover its start on 2018-03-11, US stocks with pre- and post-market hours, the 2017
Thanksgiving early close, futures and crypto. Expected values are worked out by hand, or are the
bars a market-data store serves timed with pandas time zones, independently of the session
calendar under test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import talib

from packages.domain.market_data.bars import Bars
from packages.domain.strategy.bars import BarMatrix
from packages.domain.strategy.compiler import CompiledStrategy, compile_strategy
from packages.domain.strategy.examples import get_example
from packages.infra.market_data.store import ParquetBarStore

BarsFor = Callable[[Sequence[str]], BarMatrix]
NY = "America/New_York"
HOUR = pd.Timedelta(hours=1)
SYMBOLS = {"forex": "EURUSD", "us_stocks": "AAPL", "futures": "ES", "crypto": "BTCUSDT"}


def _document(
    market: str, timeframe: str, factor_timeframe: str, period: int, offset: int = 0
) -> dict[str, Any]:
    """A strategy reading one SMA of ``factor_timeframe`` (``htf``); its warm-up is that factor's."""
    return {
        "dsl_version": "1.0.0",
        "metadata": {"name": "higher-timeframe probe"},
        "universe": {"market": market, "symbols": [SYMBOLS[market]]},
        "timeframe": timeframe,
        "factors": [
            {"id": "htf", "indicator": "sma", "params": {"period": period}, "timeframe": factor_timeframe}
        ],
        "trade": {
            "long": {
                "entry": {
                    "condition": {
                        "op": "gt",
                        "left": {"field": "close"},
                        "right": {"factor": "htf", "offset": offset},
                    }
                },
                "exits": [{"name": "later", "type": "time_exit", "bars": 5}],
                "sizing": {"mode": "fixed_quantity", "quantity": 1},
            }
        },
    }


def _numbered_bars(market: str, stamps: pd.DatetimeIndex) -> BarMatrix:
    """SYNTHETIC bars at ``stamps`` whose prices are their row number, so a resampled close names
    the last base bar of its bucket."""
    rows = np.arange(len(stamps), dtype=np.float64)
    return BarMatrix.from_arrays(
        stamps.as_unit("ns").asi8,
        [SYMBOLS[market]],
        open=rows,
        high=rows,
        low=rows,
        close=rows,
        volume=np.ones_like(rows),
    )


def _hours(start: str, end: str, tz: str = NY) -> pd.DatetimeIndex:
    """Hourly bar opens from ``start`` (inclusive) to ``end`` (exclusive), local times of ``tz``, in UTC."""
    return pd.date_range(
        pd.Timestamp(start, tz=tz), pd.Timestamp(end, tz=tz), freq="h", inclusive="left"
    ).tz_convert("UTC")


def _forex_hours() -> pd.DatetimeIndex:
    """Two forex weeks (Sunday 17:00 - Friday 17:00 New York) around the 2018-03-11 switch to EDT,
    plus one stray quote in the weekend (Friday 17:00), which no session holds."""
    return _hours("2018-03-04 17:00", "2018-03-09 18:00").append(
        _hours("2018-03-11 17:00", "2018-03-16 17:00")
    )


def _futures_hours() -> pd.DatetimeIndex:
    """CME hours: Sunday 18:00 - Friday 17:00 New York with a break from 17:00 to 18:00 every day."""
    stamps = _hours("2018-03-04 18:00", "2018-03-09 17:00").append(
        _hours("2018-03-11 18:00", "2018-03-16 17:00")
    )
    return stamps[stamps.tz_convert(NY).hour != 17]


def _stock_hours(days: Sequence[str]) -> pd.DatetimeIndex:
    """Hourly bars at :30 from 07:30 to 18:30 New York: two pre-market, seven regular, three post-market."""
    parts = [_hours(f"{day} 07:30", f"{day} 19:30") for day in days]
    return parts[0].append(parts[1:])


def _crypto_hours() -> pd.DatetimeIndex:
    return pd.date_range("2018-03-08", "2018-03-14", freq="h", inclusive="left", tz="UTC")


_STOCK_DAYS = [
    "2017-11-21",
    "2017-11-22",
    "2017-11-24",
    "2017-11-27",
    "2018-03-08",
    "2018-03-09",
    "2018-03-12",
    "2018-03-13",
]

# (market, factor timeframe, bars, [(base bar open UTC, open UTC of the last base bar of the higher
# bar it sees, or None while none has closed)]). SMA(1) of the higher close is that bar's close.
_VISIBILITY_CASES: list[tuple[str, str, Callable[[], pd.DatetimeIndex], list[tuple[str, str | None]]]] = [
    (
        "forex",
        "1d",
        _forex_hours,
        [
            ("2018-03-05 21:00", None),  # Mon 16:00 EST: Monday's session is still open
            ("2018-03-05 22:00", "2018-03-05 21:00"),  # Mon 17:00 EST: Monday closed
            ("2018-03-08 21:00", "2018-03-07 21:00"),  # Thu 16:00 EST: Wednesday is the last closed day
            ("2018-03-08 22:00", "2018-03-08 21:00"),  # Thu 17:00 EST
            ("2018-03-09 21:00", "2018-03-08 21:00"),  # Fri 16:00 EST, the week's last hour
            ("2018-03-09 22:00", "2018-03-09 21:00"),  # the weekend print sees Friday
            ("2018-03-11 21:00", "2018-03-09 21:00"),  # Sun 17:00 EDT opens Monday's session
            ("2018-03-12 20:00", "2018-03-09 21:00"),  # Mon 16:00 EDT
            ("2018-03-12 21:00", "2018-03-12 20:00"),  # Mon 17:00 EDT: the day now ends at 21:00 UTC
        ],
    ),
    (
        "forex",
        "1w",
        _forex_hours,
        [
            ("2018-03-09 21:00", None),  # the first week closes at Friday 17:00 EST
            ("2018-03-09 22:00", "2018-03-09 21:00"),
            ("2018-03-11 21:00", "2018-03-09 21:00"),  # Sunday evening belongs to the new week
            ("2018-03-16 20:00", "2018-03-09 21:00"),  # Fri 16:00 EDT
        ],
    ),
    (
        "forex",
        "4h",
        _forex_hours,
        [
            ("2018-03-08 01:00", "2018-03-07 21:00"),  # EST buckets start 22:00, 02:00... UTC
            ("2018-03-08 02:00", "2018-03-08 01:00"),
            ("2018-03-12 00:00", "2018-03-09 21:00"),  # EDT buckets start 21:00, 01:00... UTC
            ("2018-03-12 01:00", "2018-03-12 00:00"),
        ],
    ),
    (
        "futures",
        "1d",
        _futures_hours,
        [
            ("2018-03-08 21:00", "2018-03-07 21:00"),  # Thu 16:00 EST
            (
                "2018-03-08 23:00",
                "2018-03-08 21:00",
            ),  # Thu 18:00 EST ends Thursday (the 17:00 hour is a break)
            ("2018-03-11 22:00", "2018-03-09 21:00"),  # Sun 18:00 EDT
            ("2018-03-12 20:00", "2018-03-09 21:00"),  # Mon 16:00 EDT
            ("2018-03-12 22:00", "2018-03-12 20:00"),  # Mon 18:00 EDT
        ],
    ),
    (
        "us_stocks",
        "1d",
        lambda: _stock_hours(_STOCK_DAYS),
        [
            ("2018-03-09 14:30", "2018-03-08 20:30"),  # Fri 09:30 EST sees Thursday (last regular bar 15:30)
            ("2018-03-09 20:30", "2018-03-08 20:30"),  # Fri 15:30 EST, the last regular hour
            ("2018-03-09 21:30", "2018-03-09 20:30"),  # Fri 16:30 EST, post-market, after the close
            ("2018-03-12 12:30", "2018-03-09 20:30"),  # Mon 08:30 EDT, pre-market
            ("2018-03-12 19:30", "2018-03-09 20:30"),  # Mon 15:30 EDT
            ("2018-03-12 20:30", "2018-03-12 19:30"),  # Mon 16:30 EDT: the close is 20:00 UTC now
            # Thanksgiving (Thursday) is a holiday; Friday closes early at 13:00, but its later bars
            # still belong to Friday (the store's daily bar has them), so Friday stays hidden until
            # the bar after its last one.
            ("2017-11-24 14:30", "2017-11-22 20:30"),  # Fri 09:30 EST sees Wednesday
            ("2017-11-24 18:30", "2017-11-22 20:30"),  # Fri 13:30 EST, after the early close
            ("2017-11-24 20:30", "2017-11-22 20:30"),
            ("2017-11-24 21:30", "2017-11-24 20:30"),  # Fri 16:30 EST
        ],
    ),
    (
        "us_stocks",
        "4h",
        lambda: _stock_hours(_STOCK_DAYS),
        [
            ("2018-03-12 17:30", "2018-03-12 16:30"),  # Mon 13:30 EDT: 09:30-13:30 closed
            ("2018-03-12 19:30", "2018-03-12 16:30"),  # Mon 15:30 EDT: 13:30-16:00 still open
            ("2018-03-12 20:30", "2018-03-12 19:30"),  # Mon 16:30 EDT: the short last bucket closed at 16:00
            ("2018-03-13 12:30", "2018-03-12 19:30"),  # Tue 08:30 EDT, pre-market
            ("2018-03-09 18:30", "2018-03-09 17:30"),  # Fri 13:30 EST
        ],
    ),
    (
        "crypto",
        "1d",
        _crypto_hours,
        [
            ("2018-03-10 23:00", "2018-03-09 23:00"),  # UTC days, unchanged
            ("2018-03-11 00:00", "2018-03-10 23:00"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("market", "factor_timeframe", "stamps", "expected"),
    _VISIBILITY_CASES,
    ids=[f"{market}-{timeframe}" for market, timeframe, _, _ in _VISIBILITY_CASES],
)
def test_a_higher_bar_is_seen_from_the_first_base_bar_after_its_session_bucket_closes(
    market: str,
    factor_timeframe: str,
    stamps: Callable[[], pd.DatetimeIndex],
    expected: list[tuple[str, str | None]],
) -> None:
    index = stamps()
    bars = _numbered_bars(market, index)
    compiled = compile_strategy(_document(market, "1h", factor_timeframe, 1))
    seen = compiled.build_plan(bars).factors["htf"][:, 0]
    for base, last_member in expected:
        row = index.get_loc(pd.Timestamp(base, tz="UTC"))
        want = np.nan if last_member is None else float(index.get_loc(pd.Timestamp(last_member, tz="UTC")))
        np.testing.assert_equal(seen[row], want, err_msg=f"{market} {factor_timeframe} at {base}")
    # No look-ahead: cutting the bars at any row changes nothing before it.
    for rows in range(1, len(index)):
        head = compiled.build_plan(bars.head(rows))
        np.testing.assert_array_equal(head.factors["htf"][:, 0], seen[:rows])


def _bars_of(served: Bars, symbol: str) -> BarMatrix:
    return BarMatrix.from_arrays(
        served.ts,
        [symbol],
        open=served.open,
        high=served.high,
        low=served.low,
        close=served.close,
        volume=served.volume,
    )


def _new_york_close(dates: pd.DatetimeIndex, days_after: int, hour: int) -> npt.NDArray[np.int64]:
    """UTC instants of ``hour``:00 New York ``days_after`` days after each (UTC-midnight) date."""
    local = (dates.tz_localize(None) + pd.Timedelta(days=days_after, hours=hour)).tz_localize(NY)
    return local.tz_convert("UTC").as_unit("ns").asi8


@pytest.fixture(scope="module")
def eurusd_store(tmp_path_factory: pytest.TempPathFactory, bars_for: BarsFor) -> ParquetBarStore:
    """The real EURUSD hourly bars in a market-data store, which serves every timeframe from them."""
    bars = bars_for(["EURUSD"])
    store = ParquetBarStore(Path(tmp_path_factory.mktemp("store")))
    store.write(
        "forex",
        "EURUSD",
        "1h",
        Bars.from_columns(
            bars.index, *(getattr(bars, name)[:, 0] for name in ("open", "high", "low", "close", "volume"))
        ),
    )
    return store


@pytest.mark.parametrize(
    ("factor_timeframe", "period", "closes_of"),
    [
        # A forex day closes at 17:00 New York on its date (21:00 UTC in summer, 22:00 UTC in winter).
        ("1d", 50, lambda stamps: _new_york_close(stamps, 0, 17)),
        # A forex week closes on Friday at 17:00 New York (no Friday of these weeks is a holiday).
        ("1w", 4, lambda stamps: _new_york_close(stamps, 4, 17)),
        # Four-hour buckets start at 17:00 New York and always last four hours.
        ("4h", 10, lambda stamps: stamps.as_unit("ns").asi8 + 4 * HOUR.value),
    ],
)
def test_factors_on_real_eurusd_read_the_bars_the_store_serves(
    eurusd_store: ParquetBarStore,
    factor_timeframe: str,
    period: int,
    closes_of: Callable[[pd.DatetimeIndex], np.ndarray],
) -> None:
    hourly = _bars_of(eurusd_store.read("forex", "EURUSD", "1h"), "EURUSD")
    served = eurusd_store.read("forex", "EURUSD", factor_timeframe)
    sma = talib.SMA(served.close, period)
    closes = closes_of(pd.DatetimeIndex(pd.to_datetime(served.ts, utc=True)))
    visible = np.searchsorted(closes, hourly.index, side="right") - 1
    expected = np.where(visible >= 0, sma[np.maximum(visible, 0)], np.nan)
    compiled = compile_strategy(_document("forex", "1h", factor_timeframe, period))
    plan = compiled.build_plan(hourly)
    np.testing.assert_allclose(plan.factors["htf"][:, 0], expected, rtol=1e-12, equal_nan=True)
    # The served bars handed in directly give the same values (paper trading may read them).
    supplied = compiled.build_plan(
        hourly, higher_timeframe_bars={factor_timeframe: _bars_of(served, "EURUSD")}
    )
    np.testing.assert_array_equal(supplied.factors["htf"], plan.factors["htf"])
    if factor_timeframe == "1d":
        example = compile_strategy(get_example("mtf_trend_filter_eurusd")).build_plan(hourly)
        np.testing.assert_allclose(example.factors["daily_trend"][:, 0], expected, rtol=1e-12, equal_nan=True)


# Real EURUSD around the end of daylight saving time (Sunday 2017-11-05): (hourly bar open UTC,
# open UTC of the hour whose close is the daily close it sees). A forex day's last hour opens at
# 16:00 New York: 20:00 UTC in EDT, 21:00 UTC in EST.
_EURUSD_DST_END = [
    ("2017-11-02 20:00", "2017-11-01 20:00"),  # Thu 16:00 EDT sees Wednesday
    ("2017-11-02 21:00", "2017-11-02 20:00"),  # Thu 17:00 EDT: Thursday closed
    ("2017-11-03 20:00", "2017-11-02 20:00"),  # Fri 16:00 EDT, the week's last bar
    ("2017-11-05 22:00", "2017-11-03 20:00"),  # Sun 17:00 EST, the first bar after the switch
    ("2017-11-06 21:00", "2017-11-03 20:00"),  # Mon 16:00 EST
    ("2017-11-06 22:00", "2017-11-06 21:00"),  # Mon 17:00 EST: Monday closed, an hour later in UTC
    ("2017-10-06 21:00", "2017-10-06 20:00"),  # a Friday 17:00 EDT weekend print sees Friday
    ("2017-10-08 21:00", "2017-10-06 20:00"),  # Sun 17:00 EDT
]


def test_real_eurusd_daily_close_across_the_end_of_daylight_saving(bars_for: BarsFor) -> None:
    bars = bars_for(["EURUSD"])
    index = pd.DatetimeIndex(pd.to_datetime(bars.index, utc=True))
    plan = compile_strategy(_document("forex", "1h", "1d", 1)).build_plan(bars)
    for base, last_hour in _EURUSD_DST_END:
        row = index.get_loc(pd.Timestamp(base, tz="UTC"))
        daily_close = bars.close[index.get_loc(pd.Timestamp(last_hour, tz="UTC")), 0]
        assert plan.factors["htf"][row, 0] == daily_close, base


def _defined_from(compiled: CompiledStrategy, bars: BarMatrix) -> int:
    values = compiled.build_plan(bars).factors["htf"][:, 0]
    defined = np.flatnonzero(np.isfinite(values))
    assert defined.shape[0] and bool(np.isfinite(values[defined[0] :]).all())
    return int(defined[0])


def _from_row(bars: BarMatrix, first: int, rows: int) -> BarMatrix:
    window = slice(first, first + rows)
    return BarMatrix(
        bars.index[window],
        bars.symbols,
        *(getattr(bars, name)[window] for name in ("open", "high", "low", "close", "volume")),
    )


@pytest.mark.parametrize(
    ("factor_timeframe", "period", "starts"),
    [
        # Starts at every hour of two weeks with weekend prints (2017-10-06, 2017-10-20) and of the
        # week of the switch to EST.
        ("1d", 5, [("2017-10-05 00:00", "2017-10-23 00:00"), ("2017-11-01 00:00", "2017-11-08 00:00")]),
        ("4h", 6, [("2017-10-05 00:00", "2017-10-10 00:00"), ("2017-11-02 00:00", "2017-11-07 00:00")]),
        ("1w", 2, [("2017-10-05 00:00", "2017-10-10 00:00"), ("2017-10-27 00:00", "2017-11-07 00:00")]),
    ],
)
def test_warmup_bounds_real_eurusd_session_factors_from_any_start(
    bars_for: BarsFor, factor_timeframe: str, period: int, starts: list[tuple[str, str]]
) -> None:
    bars = bars_for(["EURUSD"])
    compiled = compile_strategy(_document("forex", "1h", factor_timeframe, period))
    for first, last in starts:
        lo, hi = np.searchsorted(bars.index, [pd.Timestamp(first).value, pd.Timestamp(last).value])
        for start in range(int(lo), int(hi)):
            window = _from_row(bars, start, compiled.warmup_bars + 30)
            assert _defined_from(compiled, window) <= compiled.warmup_bars, start


def _extended_stock_hours() -> pd.DatetimeIndex:
    """SYNTHETIC US-stock hours with extended sessions: bars on the hour from 04:00 to 19:00 New York
    on NYSE trading days from November 2017 to mid-January 2018 (2017-11-24 closes early at 13:00);
    only the 10:00-15:00 bars fall in regular hours."""
    days = pd.bdate_range("2017-11-01", "2018-01-12")
    days = days[~days.isin(pd.to_datetime(["2017-11-23", "2017-12-25", "2018-01-01"]))]
    parts = [_hours(f"{day.date()} 04:00", f"{day.date()} 20:00") for day in days]
    return parts[0].append(parts[1:])


@pytest.mark.parametrize(("factor_timeframe", "period"), [("2h", 4), ("4h", 3), ("1d", 3), ("1w", 2)])
def test_warmup_bounds_us_stock_session_factors_with_extended_hours(
    factor_timeframe: str, period: int
) -> None:
    index = _extended_stock_hours()
    bars = _numbered_bars("us_stocks", index)
    compiled = compile_strategy(_document("us_stocks", "1h", factor_timeframe, period))
    # Every start hour of the week holding Thanksgiving and the early close.
    lo, hi = np.searchsorted(
        bars.index, [pd.Timestamp("2017-11-20 09:00").value, pd.Timestamp("2017-11-28").value]
    )
    for start in range(int(lo), int(hi)):
        window = _from_row(bars, start, compiled.warmup_bars + 30)
        assert _defined_from(compiled, window) <= compiled.warmup_bars, (start, index[start])


@pytest.mark.parametrize(
    ("market", "timeframe", "factor_timeframe", "period", "offset", "warmup"),
    [
        # (SMA warm-up + offset + 1 closed bars + 1 partial first bar) x base bars per higher bar.
        ("forex", "1h", "1d", 50, 0, (49 + 2) * 24),
        ("forex", "1h", "1d", 5, 2, (4 + 2 + 2) * 24),
        ("forex", "1h", "4h", 10, 0, (9 + 2) * 4),
        ("crypto", "1h", "4h", 10, 0, (9 + 2) * 4),
        ("us_stocks", "1h", "1d", 20, 0, (19 + 2) * 24),
        ("us_stocks", "1d", "1w", 10, 0, (9 + 2) * 7),
        # US-stock intraday buckets: a 13:00 early close holds one 4-hour bucket, so 10 buckets need
        # 10 days after a partial first one, each with up to 24 hourly bars (extended hours).
        ("us_stocks", "1h", "4h", 10, 0, (10 + 1) * 24),
        # Four one-hour buckets (09:30-13:00) on an early close; 20 of them need 5 days + 1, of 48 bars.
        ("us_stocks", "30m", "1h", 20, 0, (5 + 1) * 48),
    ],
)
def test_compile_time_warmup_of_session_factors(
    market: str, timeframe: str, factor_timeframe: str, period: int, offset: int, warmup: int
) -> None:
    compiled = compile_strategy(_document(market, timeframe, factor_timeframe, period, offset))
    assert compiled.warmup_bars == warmup
