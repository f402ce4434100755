"""Latest bar and quote per subscribed symbol, refreshed on beat and published on Redis.

Online (MARKET_DATA_NETWORK_ENABLED=true) the latest bars come from the market's provider. Offline,
a replay clock per symbol walks through stored history (``replay_speed`` simulated seconds per wall
second, starting ``replay_warmup_bars`` into it, starting over at the end), so paper trading runs
without a network. Each snapshot is cached under ``minsy:market:latest:{market}:{symbol}`` and, when
its bar is new, published on the pub/sub channel ``market:bars:{market}:{symbol}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from packages.core.market_data.access import choose_provider, market_store
from packages.core.resources import Resources
from packages.domain.market_data.bars import Bars, Market, Timeframe, parse_timeframe
from packages.domain.market_data.replay import ReplayClock, replay_snapshot
from packages.domain.market_data.timeconv import iso
from packages.infra.market_data.store import PUBLIC_NAMESPACE, DatasetNotFound, ParquetBarStore
from packages.shared_settings import Settings

log = logging.getLogger("minsy.market_data.realtime")

REFRESH_LOCK_KEY = "minsy:market:realtime:lock"
# How far back an online refresh asks for bars: enough to span a weekend or a holiday.
ONLINE_LOOKBACK_BARS = 10
ONLINE_MIN_LOOKBACK_NS = 5 * 24 * 3600 * 10**9


def channel(market: str, symbol: str) -> str:
    return f"market:bars:{market}:{symbol}"


def latest_key(market: str, symbol: str) -> str:
    return f"minsy:market:latest:{market}:{symbol}"


def replay_key(namespace: str, market: str, symbol: str, timeframe: str) -> str:
    return f"minsy:market:replay:{namespace}:{market}:{symbol}:{timeframe}"


@dataclass(frozen=True, slots=True)
class Subscription:
    market: Market
    symbol: str
    timeframe: Timeframe

    @classmethod
    def parse(cls, text: str) -> Subscription:
        market, symbol, timeframe = text.split(":")
        return cls(Market(market), symbol.strip().upper(), parse_timeframe(timeframe))


def _replay_payload(raw: dict[str, Any], market: Market) -> dict[str, Any]:
    return {
        "market": market.value,
        "symbol": raw["symbol"],
        "timeframe": raw["timeframe"],
        "source": "replay",
        "as_of": raw["simulated_time"],
        "bar": raw["bar"],
        "quote": raw["quote"],
        "exhausted": raw["exhausted"],
    }


async def _replay_clock(
    redis: Redis, key: str, bars: Bars, settings: Settings, *, restart: bool = False
) -> ReplayClock:
    """The symbol's clock, shared by every process through Redis; the first caller starts it."""
    config = settings.market_data
    if not restart:
        stored = await redis.get(key)
        if stored is not None:
            values = json.loads(stored)
            return ReplayClock(
                int(values["start_ns"]), float(values["wall_anchor_s"]), float(values["speed"])
            )
    first = int(bars.ts[min(config.replay_warmup_bars, len(bars) - 1)])
    clock = ReplayClock(first, time.time(), config.replay_speed)
    fresh = json.dumps(
        {"start_ns": clock.start_ns, "wall_anchor_s": clock.wall_anchor_s, "speed": clock.speed}
    )
    if restart:
        await redis.set(key, fresh)
    elif not await redis.set(key, fresh, nx=True):
        return await _replay_clock(redis, key, bars, settings)
    return clock


async def replay_payload(
    resources: Resources,
    store: ParquetBarStore,
    market: Market,
    symbol: str,
    timeframe: Timeframe,
    namespace: str = PUBLIC_NAMESPACE,
) -> dict[str, Any]:
    """Where the replay clock of this series stands now; at the end of history it starts over."""
    key = replay_key(namespace, market.value, symbol, timeframe.value)
    bars = await asyncio.to_thread(store.read, market, symbol, timeframe, namespace=namespace)
    if len(bars) == 0:
        raise DatasetNotFound(f"no {timeframe.value} bars stored for {market.value}:{symbol}")
    clock = await _replay_clock(resources.redis, key, bars, resources.settings)
    now = time.time()
    if clock.simulated_ns(now) >= int(bars.ts[-1]) + 2 * timeframe.nanos:
        clock = await _replay_clock(resources.redis, key, bars, resources.settings, restart=True)
    snapshot = replay_snapshot(bars, timeframe, clock.simulated_ns(now), symbol=symbol)
    return _replay_payload(snapshot.to_dict(), market)


def _online_payload(settings: Settings, subscription: Subscription) -> dict[str, Any] | None:
    provider = choose_provider(settings, subscription.market, subscription.symbol, subscription.timeframe)
    now_ns = time.time_ns()
    lookback = max(ONLINE_LOOKBACK_BARS * subscription.timeframe.nanos, ONLINE_MIN_LOOKBACK_NS)
    bars = provider.fetch_bars(subscription.symbol, subscription.timeframe, now_ns - lookback, now_ns)
    # Only completed bars: the one still forming would change under the runtime's feet.
    completed = bars.take(bars.ts + subscription.timeframe.nanos <= now_ns)
    if len(completed) == 0:
        return None
    last = len(completed) - 1
    close = float(completed.close[last])
    return {
        "market": subscription.market.value,
        "symbol": subscription.symbol,
        "timeframe": subscription.timeframe.value,
        "source": provider.name,
        "as_of": iso(now_ns),
        "bar": {
            "ts": iso(int(completed.ts[last])),
            "open": float(completed.open[last]),
            "high": float(completed.high[last]),
            "low": float(completed.low[last]),
            "close": close,
            "volume": float(completed.volume[last]),
        },
        "quote": {
            "ts": iso(int(completed.ts[last]) + subscription.timeframe.nanos),
            "bid": None,
            "ask": None,
            "last": close,
        },
        "exhausted": False,
    }


async def publish(redis: Redis, payload: dict[str, Any], ttl_s: int) -> bool:
    """Cache the snapshot; publish it when its bar is new. Returns whether it was published."""
    market, symbol = payload["market"], payload["symbol"]
    previous = await redis.set(latest_key(market, symbol), json.dumps(payload), ex=ttl_s, get=True)
    previous_bar = json.loads(previous).get("bar") if isinstance(previous, str) else None
    if payload["bar"] is None or previous_bar == payload["bar"]:
        return False
    await redis.publish(channel(market, symbol), json.dumps(payload))
    return True


async def refresh_realtime(resources: Resources) -> dict[str, int]:
    """One beat tick over every subscribed symbol; overlapping ticks are skipped."""
    settings = resources.settings
    config = settings.market_data
    token = uuid.uuid4().hex
    lock_ttl = max(int(config.realtime_interval_s * 6), 10)
    if not await resources.redis.set(REFRESH_LOCK_KEY, token, nx=True, ex=lock_ttl):
        return {"skipped": 1}
    counts = {"published": 0, "unchanged": 0, "failed": 0}
    store = market_store(settings)
    try:
        for text in config.realtime_symbols:
            subscription = Subscription.parse(text)
            try:
                payload: dict[str, Any] | None
                if settings.providers.network_enabled:
                    payload = await asyncio.to_thread(_online_payload, settings, subscription)
                else:
                    payload = await replay_payload(
                        resources, store, subscription.market, subscription.symbol, subscription.timeframe
                    )
            except Exception as error:  # one bad symbol must not stop the others
                log.warning("realtime refresh failed", extra={"subscription": text, "error": str(error)})
                counts["failed"] += 1
                continue
            if payload is None:
                counts["unchanged"] += 1
            elif await publish(resources.redis, payload, config.quote_ttl_s):
                counts["published"] += 1
            else:
                counts["unchanged"] += 1
    finally:
        if await resources.redis.get(REFRESH_LOCK_KEY) == token:
            await resources.redis.delete(REFRESH_LOCK_KEY)
    return counts


async def cached_payload(redis: Redis, market: str, symbol: str) -> dict[str, Any] | None:
    raw = await redis.get(latest_key(market, symbol))
    return None if raw is None else dict(json.loads(raw))
