"""Words of the strategy language: markets, timeframes, price fields, operators and their meaning.

Every other module of the DSL (schema, validation, compiler, docs) reads these tuples, so a word
added here shows up everywhere at once.
"""

from __future__ import annotations

from typing import Final

DSL_VERSION: Final = "1.0.0"

MARKETS: Final[tuple[str, ...]] = ("us_stocks", "crypto", "forex", "futures")

NS_PER_MINUTE: Final = 60_000_000_000
NS_PER_DAY: Final = 1_440 * NS_PER_MINUTE

# Ordered from shortest to longest; the order defines "higher timeframe".
TIMEFRAME_NS: Final[dict[str, int]] = {
    "1m": NS_PER_MINUTE,
    "5m": 5 * NS_PER_MINUTE,
    "15m": 15 * NS_PER_MINUTE,
    "30m": 30 * NS_PER_MINUTE,
    "1h": 60 * NS_PER_MINUTE,
    "2h": 120 * NS_PER_MINUTE,
    "4h": 240 * NS_PER_MINUTE,
    "1d": NS_PER_DAY,
    "1w": 7 * NS_PER_DAY,
}
TIMEFRAMES: Final[tuple[str, ...]] = tuple(TIMEFRAME_NS)

# Price fields an operand, an indicator source or an order reference may read.
PRICE_FIELDS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "hl2", "hlc3", "ohlc4")
SERIES_FIELDS: Final[tuple[str, ...]] = (*PRICE_FIELDS, "volume")

COMPARISON_OPS: Final[tuple[str, ...]] = ("gt", "gte", "lt", "lte", "eq", "neq")
CROSS_OPS: Final[tuple[str, ...]] = ("cross_above", "cross_below")
GROUP_OPS: Final[tuple[str, ...]] = ("all", "any")
TEMPORAL_OPS: Final[tuple[str, ...]] = ("within_bars", "bars_since", "sequence")
CONDITION_OPS: Final[tuple[str, ...]] = (*GROUP_OPS, "not", *COMPARISON_OPS, *CROSS_OPS, *TEMPORAL_OPS)

ORDER_TYPES: Final[tuple[str, ...]] = ("market", "limit", "stop")
TIME_IN_FORCE_TYPES: Final[tuple[str, ...]] = ("bars", "gtc")
DISTANCE_UNITS: Final[tuple[str, ...]] = ("percent", "points", "atr")
EXIT_TYPES: Final[tuple[str, ...]] = (
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "time_exit",
    "bracket",
)
SIZING_MODES: Final[tuple[str, ...]] = (
    "fixed_quantity",
    "fixed_cash",
    "percent_equity",
    "risk_per_trade",
    "volatility_target",
)
SIDES: Final[tuple[str, ...]] = ("long", "short")

DEFAULT_ATR_PERIOD: Final = 14
DEFAULT_VOLATILITY_LOOKBACK: Final = 20

# Bars per year, used to annualise volatility for the volatility_target sizing mode. Intraday
# counts assume the usual session lengths: 6.5 h on 252 days for US stocks, 24 h on 260 days for
# forex, 23 h on 252 days for futures and 24 h on 365 days for crypto.
_TRADING_MINUTES_PER_YEAR: Final[dict[str, float]] = {
    "us_stocks": 252 * 390.0,
    "forex": 260 * 1440.0,
    "futures": 252 * 1380.0,
    "crypto": 365 * 1440.0,
}
_TRADING_DAYS_PER_YEAR: Final[dict[str, float]] = {
    "us_stocks": 252.0,
    "forex": 260.0,
    "futures": 252.0,
    "crypto": 365.0,
}


def timeframe_ns(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in nanoseconds."""
    return TIMEFRAME_NS[timeframe]


def timeframe_rank(timeframe: str) -> int:
    """Position of ``timeframe`` in TIMEFRAMES (larger = longer bars)."""
    return TIMEFRAMES.index(timeframe)


def bars_per_year(market: str, timeframe: str) -> float:
    """How many bars of ``timeframe`` a year of trading in ``market`` holds."""
    if timeframe == "1w":
        return 52.0
    if timeframe == "1d":
        return _TRADING_DAYS_PER_YEAR[market]
    minutes = TIMEFRAME_NS[timeframe] / NS_PER_MINUTE
    return _TRADING_MINUTES_PER_YEAR[market] / minutes
