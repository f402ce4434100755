"""Analysis views of a finished backtest, computed on demand from a ``BacktestResult``.

None of these run on the backtest's hot path: a job stores the result once and the API renders each
view when asked. Every view returns plain JSON-ready values (lists of rows, ``None`` for undefined).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import codes as c
from packages.domain.backtest._kernel import minmax_downsample
from packages.domain.backtest.result import BacktestResult, iso_times

Row = dict[str, Any]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_HOLDING_EDGES = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000)
_NS_PER_DAY = 86_400 * 1_000_000_000


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _closed(result: BacktestResult) -> npt.NDArray[np.float64]:
    trades = result.trades
    return trades[trades[:, c.T_IS_OPEN] == 0.0]


def _holding_bars(trades: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    fraction = np.array([0.0, 0.5, 1.0])
    exit_pos = trades[:, c.T_EXIT_BAR] + fraction[trades[:, c.T_EXIT_AT].astype(np.int64)]
    entry_pos = trades[:, c.T_ENTRY_BAR] + fraction[trades[:, c.T_ENTRY_AT].astype(np.int64)]
    return np.asarray(exit_pos - entry_pos, dtype=np.float64)


def trade_group_stats(trades: npt.NDArray[np.float64]) -> Row:
    """Count, win rate, pnl, average trade return (a fraction) and profit factor of a set of trade records."""
    pnl = trades[:, c.T_PNL]
    count = int(pnl.shape[0])
    wins = int(np.count_nonzero(pnl > 0))
    profit = float(pnl[pnl > 0].sum())
    loss = float(-pnl[pnl <= 0].sum())
    return {
        "trades": count,
        "wins": wins,
        "win_rate": wins / count if count else None,
        "pnl": float(pnl.sum()),
        "avg_pnl": float(pnl.mean()) if count else None,
        "avg_trade_return": float(trades[:, c.T_RETURN].mean()) if count else None,
        "fees": float((trades[:, c.T_ENTRY_FEE] + trades[:, c.T_EXIT_FEE]).sum()),
        "profit_factor": profit / loss if loss > 0 else None,
    }


def _grouped(
    trades: npt.NDArray[np.float64], keys: npt.NDArray[np.int64], labels: Sequence[Any], field: str
) -> list[Row]:
    return [{field: label, **trade_group_stats(trades[keys == k])} for k, label in enumerate(labels)]


def pnl_by_entry_hour(result: BacktestResult) -> list[Row]:
    """Closed trades grouped by the UTC hour of their entry bar."""
    trades = _closed(result)
    entry_ns = result.index[trades[:, c.T_ENTRY_BAR].astype(np.int64)]
    hours = (entry_ns // (3600 * 1_000_000_000)) % 24
    return _grouped(trades, hours, range(24), "hour")


def pnl_by_entry_weekday(result: BacktestResult) -> list[Row]:
    """Closed trades grouped by the UTC weekday of their entry bar (1970-01-01 was a Thursday)."""
    trades = _closed(result)
    entry_ns = result.index[trades[:, c.T_ENTRY_BAR].astype(np.int64)]
    weekdays = (entry_ns // _NS_PER_DAY + 3) % 7
    return _grouped(trades, weekdays, WEEKDAYS, "weekday")


def holding_period_bins(result: BacktestResult, edges: Sequence[int] = DEFAULT_HOLDING_EDGES) -> list[Row]:
    """Closed trades binned by holding time in bars: ``[edge_k, edge_k+1)`` plus a last open-ended bin."""
    trades = _closed(result)
    holding = _holding_bars(trades)
    bounds = [0.0, *[float(e) for e in edges], np.inf]
    rows = []
    for lo, hi in itertools.pairwise(bounds):
        mask = (holding >= lo) & (holding < hi)
        label = f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}"
        rows.append(
            {"bars": label, "min_bars": lo, "max_bars": _finite(hi), **trade_group_stats(trades[mask])}
        )
    return rows


def long_short_breakdown(result: BacktestResult) -> list[Row]:
    trades = _closed(result)
    direction = trades[:, c.T_DIRECTION]
    return [
        {"direction": "long", **trade_group_stats(trades[direction > 0])},
        {"direction": "short", **trade_group_stats(trades[direction < 0])},
    ]


def exit_reason_breakdown(result: BacktestResult) -> list[Row]:
    trades = _closed(result)
    reasons = trades[:, c.T_REASON].astype(np.int64)
    return [
        {"reason": result.reason_name(int(code)), **trade_group_stats(trades[reasons == code])}
        for code in np.unique(reasons)
    ]


def per_symbol_breakdown(result: BacktestResult) -> list[Row]:
    trades = _closed(result)
    symbols = trades[:, c.T_SYMBOL].astype(np.int64)
    return _grouped(trades, symbols, result.symbols, "symbol")


def monthly_returns(result: BacktestResult) -> dict[str, Any]:
    """Return of each calendar month (UTC) and year, from month-end equity."""
    if result.index.shape[0] == 0:
        return {"months": [], "years": []}
    months = result.index.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    last_of_month = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    month_end_equity = result.equity[last_of_month]
    previous = np.concatenate([[result.assumptions.initial_cash], month_end_equity[:-1]])
    month_returns = month_end_equity / previous - 1.0
    month_ids = months[last_of_month]
    rows = [
        {"year": int(m // 12 + 1970), "month": int(m % 12 + 1), "return": float(r)}
        for m, r in zip(month_ids, month_returns, strict=True)
    ]
    years = month_ids // 12
    year_rows = []
    for year in np.unique(years):
        growth = float(np.prod(1.0 + month_returns[years == year]) - 1.0)
        year_rows.append({"year": int(year + 1970), "return": growth})
    return {"months": rows, "years": year_rows}


def underwater_curve(result: BacktestResult, max_points: int = 2000, top: int = 5) -> dict[str, Any]:
    """Downsampled drawdown series and the ``top`` deepest drawdown episodes."""
    drawdown = result.drawdown
    keep = minmax_downsample(drawdown, max_points)
    underwater = drawdown < 0
    starts = np.flatnonzero(underwater & ~np.concatenate([[False], underwater[:-1]]))
    ends = np.flatnonzero(underwater & ~np.concatenate([underwater[1:], [False]]))
    episodes: list[dict[str, Any]] = []
    for start, end in zip(starts, ends, strict=True):
        trough = start + int(np.argmin(drawdown[start : end + 1]))
        recovered = end + 1 < drawdown.shape[0]
        episodes.append(
            {
                "start_bar": int(start),
                "trough_bar": int(trough),
                "recovery_bar": int(end + 1) if recovered else None,
                "depth": float(drawdown[trough]),
                "bars": int(end + 1 - start),
            }
        )
    episodes.sort(key=lambda e: (e["depth"], e["start_bar"]))
    for episode in episodes[:top]:
        for key in ("start_bar", "trough_bar", "recovery_bar"):
            bar = episode[key]
            episode[key.replace("_bar", "_time")] = (
                iso_times(result.index[[bar]])[0] if bar is not None else None
            )
    return {
        "time": result.index[keep].tolist(),
        "drawdown": drawdown[keep].tolist(),
        "worst_episodes": episodes[:top],
    }


def rolling_metrics(result: BacktestResult, window: int = 63, max_points: int = 2000) -> dict[str, Any]:
    """Rolling return, annualised volatility and Sharpe over ``window`` return periods.

    Periods are the ones the summary metrics use (UTC days for intraday bars, else bars).
    """
    index = result.index
    n = index.shape[0]
    if n == 0:
        return {"window": window, "time": [], "return": [], "volatility": [], "sharpe": []}
    intraday = n > 1 and (index[-1] - index[0]) / (n - 1) < _NS_PER_DAY
    if intraday:
        days = index // _NS_PER_DAY
        ends = np.flatnonzero(np.append(days[1:] != days[:-1], True))
    else:
        ends = np.arange(n)
    equity = result.equity[ends]
    returns = equity / np.concatenate([[result.assumptions.initial_cash], equity[:-1]]) - 1.0
    per_year = float(result.metrics.get("return_periods_per_year") or result.periods_per_year)
    if returns.shape[0] < window or window < 2:
        return {"window": window, "time": [], "return": [], "volatility": [], "sharpe": []}
    sums = np.cumsum(np.concatenate([[0.0], returns]))
    squares = np.cumsum(np.concatenate([[0.0], returns * returns]))
    total = sums[window:] - sums[:-window]
    mean = total / window
    variance = np.maximum((squares[window:] - squares[:-window]) - window * mean * mean, 0.0) / (window - 1)
    std = np.sqrt(variance)
    growth = np.log1p(returns)
    log_sums = np.cumsum(np.concatenate([[0.0], growth]))
    window_return = np.expm1(log_sums[window:] - log_sums[:-window])
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 0, mean / std * np.sqrt(per_year), np.nan)
    times = index[ends[window - 1 :]]
    keep = minmax_downsample(window_return, max_points)
    return {
        "window": window,
        "time": times[keep].tolist(),
        "return": [_finite(v) for v in window_return[keep]],
        "volatility": [_finite(v) for v in (std * np.sqrt(per_year))[keep]],
        "sharpe": [_finite(v) for v in sharpe[keep]],
    }


VIEWS: dict[str, Callable[[BacktestResult], Any]] = {
    "monthly_returns": monthly_returns,
    "pnl_by_entry_hour": pnl_by_entry_hour,
    "pnl_by_entry_weekday": pnl_by_entry_weekday,
    "holding_period_bins": holding_period_bins,
    "long_short": long_short_breakdown,
    "exit_reasons": exit_reason_breakdown,
    "per_symbol": per_symbol_breakdown,
    "underwater": underwater_curve,
    "rolling": rolling_metrics,
}
"""Every analysis view by the name the API and MCP tools expose it under."""


def analysis_view(result: BacktestResult, name: str) -> Any:
    try:
        view = VIEWS[name]
    except KeyError:
        raise KeyError(f"unknown analysis view {name!r}; available: {', '.join(sorted(VIEWS))}") from None
    return view(result)
