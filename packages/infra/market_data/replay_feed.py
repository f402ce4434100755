"""Replay feed over the Parquet store: per-symbol snapshots for the offline paper-trading runtime.

The lead's beat task calls ``ReplayFeed.snapshots(time.time())`` and publishes each dict on Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packages.domain.market_data.bars import Bars, Market, Timeframe, parse_timeframe
from packages.domain.market_data.replay import ReplayClock, replay_snapshot
from packages.infra.market_data.store import PUBLIC_NAMESPACE, ParquetBarStore


class ReplayFeed:
    def __init__(
        self,
        store: ParquetBarStore,
        market: Market | str,
        symbols: Sequence[str],
        timeframe: Timeframe | str,
        clock: ReplayClock,
        *,
        namespace: str = PUBLIC_NAMESPACE,
        spread_bps: float = 1.0,
    ) -> None:
        self.market = Market(market)
        self.timeframe = parse_timeframe(timeframe)
        self.clock = clock
        self.spread_bps = spread_bps
        self._bars: dict[str, Bars] = {
            symbol: store.read(self.market, symbol, self.timeframe, namespace=namespace) for symbol in symbols
        }

    def snapshots(self, wall_s: float) -> list[dict[str, Any]]:
        simulated = self.clock.simulated_ns(wall_s)
        return [
            {"market": self.market.value}
            | replay_snapshot(
                bars, self.timeframe, simulated, symbol=symbol, spread_bps=self.spread_bps
            ).to_dict()
            for symbol, bars in self._bars.items()
        ]
