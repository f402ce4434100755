"""Bar containers, the session resampler and higher-timeframe visibility (see also
``test_session_timeframes``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from packages.domain.market_data.bars import Bars, Timeframe
from packages.domain.market_data.resample import resample
from packages.domain.market_data.sessions import US_EQUITY_CALENDAR
from packages.domain.strategy.bars import (
    BarMatrix,
    resample_bars,
    universe_view,
    visible_rows,
)

BarsFor = Callable[[Sequence[str]], BarMatrix]
HOUR = 3_600_000_000_000


@pytest.mark.parametrize(("timeframe", "rule"), [("4h", "4h"), ("1d", "1D"), ("1w", "W-MON")])
def test_crypto_buckets_are_utc_calendar_buckets_like_pandas(
    timeframe: str, rule: str, bars_for: BarsFor
) -> None:
    bars = bars_for(["EURUSD"])  # real hourly prices, bucketed as a 24/7 crypto market would be
    frame = pd.DataFrame(
        {name: getattr(bars, name)[:, 0] for name in ("open", "high", "low", "close", "volume")},
        index=pd.to_datetime(bars.index),
    )
    expected = frame.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    expected = expected[frame["close"].resample(rule, label="left", closed="left").count() > 0]
    result = resample_bars(bars, timeframe, market="crypto", base_timeframe="1h")
    np.testing.assert_array_equal(result.index, expected.index.as_unit("ns").asi8)
    for name in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(getattr(result, name)[:, 0], expected[name].to_numpy(), rtol=1e-12)


def test_resample_handles_symbols_missing_in_a_bucket(bars_for: BarsFor) -> None:
    bars = bars_for(["AAPL", "GOOG"])  # GOOG has no bars before August 2004
    weekly = resample_bars(bars, "1w", market="us_stocks", base_timeframe="1d")
    first_goog = int(np.argmax(np.isfinite(weekly.close[:, 1])))
    assert first_goog > 0 and np.isnan(weekly.volume[:first_goog, 1]).all()
    assert np.isfinite(weekly.close[:, 0]).all()
    assert (pd.to_datetime(weekly.index).day_of_week == 0).all()
    # Each symbol's column holds exactly the weeks the market-data store builds from its own bars.
    for column, symbol in enumerate(bars.symbols):
        own = np.isfinite(bars.close[:, column])
        served = resample(
            Bars.from_columns(
                bars.index[own],
                *(getattr(bars, name)[own, column] for name in ("open", "high", "low", "close", "volume")),
            ),
            Timeframe.D1,
            Timeframe.W1,
            US_EQUITY_CALENDAR,
        )
        rows = np.flatnonzero(np.isfinite(weekly.close[:, column]))
        np.testing.assert_array_equal(weekly.index[rows], served.ts, err_msg=symbol)
        for name in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(
                getattr(weekly, name)[rows, column], getattr(served, name), err_msg=symbol
            )


def test_visible_rows_wait_for_the_close() -> None:
    daily = np.array([0, 24 * HOUR, 48 * HOUR])
    hourly = np.arange(0, 60 * HOUR, HOUR)
    rows = visible_rows(daily, "1d", hourly, market="crypto", base_timeframe="1h")
    assert rows[:24].tolist() == [-1] * 24
    assert rows[24:48].tolist() == [0] * 24
    assert rows[48:].tolist() == [1] * 12


def test_bar_matrix_checks_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        BarMatrix(np.arange(3), ("A",), *(np.zeros((3, 1)) for _ in range(4)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="increasing"):
        BarMatrix(np.array([2, 1]), ("A",), *(np.zeros((2, 1)) for _ in range(5)))
    single = BarMatrix.from_arrays(
        [1, 2], ["A"], open=[1, 2], high=[1, 2], low=[1, 2], close=[1, 2], volume=[0, 0]
    )
    assert single.close.shape == (2, 1) and single.head(1).index.tolist() == [1]


def test_universe_view_copies_only_to_reorder_columns(bars_for: BarsFor) -> None:
    bars = bars_for(["AAPL", "MSFT"])
    assert universe_view(bars, ["AAPL", "MSFT"]) is bars
    swapped = universe_view(bars, ["MSFT", "AAPL"])
    np.testing.assert_array_equal(swapped.close, bars.close[:, ::-1])
    assert swapped.close.flags.c_contiguous
    truncated = BarMatrix.__new__(BarMatrix)  # a malformed container skips __post_init__
    for name, value in vars(bars.head(5)).items():
        object.__setattr__(truncated, name, value)
    object.__setattr__(truncated, "volume", bars.volume[:4])
    with pytest.raises(ValueError, match="volume"):
        universe_view(truncated, ["AAPL", "MSFT"])
