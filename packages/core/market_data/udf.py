"""A TradingView-UDF-style datafeed over the market-data service.

Tickers are ``market:SYMBOL`` (``us_stocks:AAPL``); a bare symbol resolves to the first match, the
caller's own import before shared data. Times are unix seconds, as the UDF adapter expects.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.market_data.schemas import (
    SYMBOL_PATTERN,
    UdfConfig,
    UdfExchange,
    UdfHistory,
    UdfSearchItem,
    UdfSymbolInfo,
    UdfSymbolType,
)
from packages.core.market_data.service import MarketDataService
from packages.domain.market_data.bars import AssetClass, Market, Timeframe

RESOLUTIONS: dict[str, Timeframe] = {
    "1": Timeframe.M1,
    "5": Timeframe.M5,
    "15": Timeframe.M15,
    "30": Timeframe.M30,
    "60": Timeframe.H1,
    "120": Timeframe.H2,
    "240": Timeframe.H4,
    "1D": Timeframe.D1,
    "D": Timeframe.D1,
    "1W": Timeframe.W1,
    "W": Timeframe.W1,
}
RESOLUTION_OF = {
    Timeframe.M1: "1",
    Timeframe.M5: "5",
    Timeframe.M15: "15",
    Timeframe.M30: "30",
    Timeframe.H1: "60",
    Timeframe.H2: "120",
    Timeframe.H4: "240",
    Timeframe.D1: "1D",
    Timeframe.W1: "1W",
}
MAX_HISTORY_BARS = 5000
_SESSIONS = {
    Market.US_STOCKS: ("0930-1600", "America/New_York"),
    Market.CRYPTO: ("24x7", "Etc/UTC"),
    Market.FOREX: ("1700-1700", "America/New_York"),
    Market.FUTURES: ("1800-1700", "America/New_York"),
}
_MARKET_NAMES = {
    Market.US_STOCKS: "US stocks and ETFs",
    Market.CRYPTO: "Crypto",
    Market.FOREX: "Forex",
    Market.FUTURES: "Futures",
}
_PRICE_DECIMALS = {Market.FOREX: 5}


def _seconds(value: datetime) -> int:
    return int(value.timestamp())


def _instant(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class UdfService:
    def __init__(self, service: MarketDataService) -> None:
        self.service = service

    async def config(self) -> UdfConfig:
        return UdfConfig(
            supported_resolutions=list(RESOLUTION_OF.values()),
            exchanges=[
                UdfExchange(value="", name="All markets", desc="All markets"),
                *(UdfExchange(value=m.value, name=_MARKET_NAMES[m], desc=_MARKET_NAMES[m]) for m in Market),
            ],
            symbols_types=[
                UdfSymbolType(name="All types", value=""),
                *(UdfSymbolType(name=kind.value, value=kind.value) for kind in AssetClass),
            ],
        )

    async def search(
        self, query: str, symbol_type: str, exchange: str | None, limit: int
    ) -> list[UdfSearchItem]:
        found = await self.service.search_symbols(query or None, exchange, limit)
        return [
            UdfSearchItem(
                symbol=item.symbol,
                full_name=f"{item.market}:{item.symbol}",
                description=f"{item.symbol} ({_MARKET_NAMES[Market(item.market)]}, {item.scope})",
                exchange=item.market,
                ticker=f"{item.market}:{item.symbol}",
                type=item.asset_class or item.market,
            )
            for item in found.items
            if not symbol_type or item.asset_class == symbol_type
        ]

    async def _ticker(self, text: str) -> tuple[Market, str]:
        market_text, _, symbol = text.rpartition(":")
        if not re.fullmatch(SYMBOL_PATTERN, symbol):
            raise NotFound(f"Unknown symbol {text!r}; search with /market-data/udf/search.")
        if market_text:
            if market_text not in {m.value for m in Market}:
                raise NotFound(
                    f"Unknown market {market_text!r}; markets: {', '.join(m.value for m in Market)}."
                )
            return Market(market_text), symbol.upper()
        matches = await self.service.search_symbols(symbol, None, 50)
        exact = [item for item in matches.items if item.symbol == symbol.upper()]
        if not exact:
            raise NotFound(f"Unknown symbol {symbol!r}; search with /market-data/udf/search.")
        return Market(exact[0].market), exact[0].symbol

    async def symbol_info(self, text: str) -> UdfSymbolInfo:
        market, symbol = await self._ticker(text)
        detail = await self.service.symbol_detail(market.value, symbol)
        servable = [Timeframe(tf) for tf in detail.servable_timeframes]
        session, timezone = _SESSIONS[market]
        ticker = f"{market.value}:{symbol}"
        return UdfSymbolInfo(
            name=symbol,
            ticker=ticker,
            description=f"{symbol} ({_MARKET_NAMES[market]}, {detail.scope})",
            type=detail.asset_class or market.value,
            session=session,
            timezone=timezone,
            exchange=market.value,
            listed_exchange=market.value,
            minmov=1,
            pricescale=10 ** _PRICE_DECIMALS.get(market, 2),
            has_intraday=any(tf.is_intraday for tf in servable),
            has_daily=Timeframe.D1 in servable,
            has_weekly_and_monthly=Timeframe.W1 in servable,
            supported_resolutions=[RESOLUTION_OF[tf] for tf in servable],
            intraday_multipliers=[RESOLUTION_OF[tf] for tf in servable if tf.is_intraday],
            volume_precision=2,
            data_status="endofday",
        )

    async def history(
        self, text: str, resolution: str, from_s: int, to_s: int, countback: int | None
    ) -> UdfHistory:
        timeframe = RESOLUTIONS.get(resolution)
        if timeframe is None:
            raise ValidationFailed(
                f"Unsupported resolution {resolution!r}; supported: {', '.join(RESOLUTION_OF.values())}.",
                errors=[FieldError("unsupported_resolution", "/query/resolution", resolution)],
            )
        if to_s <= from_s and countback is None:
            raise ValidationFailed(
                "'to' must be after 'from'.", errors=[FieldError("invalid_range", "/query/to", "to <= from")]
            )
        market, symbol = await self._ticker(text)
        # UDF ranges include 'to'; countback asks for that many bars ending at 'to' whatever 'from' is.
        end = _instant(to_s + 1)
        start = None if countback is not None else _instant(from_s)
        page = await self.service.latest_bars(
            market.value, symbol, timeframe.value, start, end, countback or MAX_HISTORY_BARS
        )
        if page.count == 0:
            before = await self.service.latest_bars(
                market.value, symbol, timeframe.value, None, _instant(from_s), 1
            )
            return UdfHistory(s="no_data", nextTime=_seconds(before.bars[0].ts) if before.bars else None)
        return UdfHistory(
            s="ok",
            t=[_seconds(bar.ts) for bar in page.bars],
            o=[bar.open for bar in page.bars],
            h=[bar.high for bar in page.bars],
            l=[bar.low for bar in page.bars],
            c=[bar.close for bar in page.bars],
            v=[bar.volume for bar in page.bars],
        )
