"""The replay quote: bid and ask around the close carry no float noise."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from packages.domain.market_data.bars import Bars, Timeframe
from packages.domain.market_data.replay import replay_snapshot


def _significant_digits(value: float) -> int:
    """Digits of the shortest decimal that reads back as ``value`` (what JSON shows)."""
    return len(Decimal(repr(value)).normalize().as_tuple().digits)


def test_bid_and_ask_have_at_most_ten_significant_digits(eurusd_hourly: Bars) -> None:
    indexes = np.linspace(0, len(eurusd_hourly) - 1, 400).astype(int)
    for index in indexes:
        closes_at = int(eurusd_hourly.ts[index]) + Timeframe.H1.nanos
        quote = replay_snapshot(eurusd_hourly, Timeframe.H1, closes_at, symbol="EURUSD").quote
        assert quote is not None and quote["last"] == eurusd_hourly.close[index]
        for side in ("bid", "ask"):
            assert _significant_digits(quote[side]) <= 10, (index, side, quote[side])
        assert quote["bid"] < quote["last"] < quote["ask"]
        # Still one basis point wide around the close, to the precision kept.
        assert abs((quote["ask"] - quote["bid"]) / quote["last"] - 1e-4) < 1e-8
