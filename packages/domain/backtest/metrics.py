"""Name the kernel's metric vectors and add the few metrics that need timestamps or run totals."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import _kernel as k
from packages.domain.backtest._kernel import EQUITY_METRICS, TRADE_METRICS
from packages.domain.backtest.result import BacktestResult, MetricValue, iso_times

_NS_PER_DAY = 86_400 * 1_000_000_000
BENCHMARK_METRICS = ("benchmark_return", "alpha", "beta", "correlation", "information_ratio")

COUNT_METRICS = frozenset(
    {
        "max_drawdown_duration_bars",
        "max_drawdown_start_bar",
        "max_drawdown_end_bar",
        "return_periods",
        "drawdown_episodes",
        "trades",
        "long_trades",
        "short_trades",
        "winning_trades",
        "losing_trades",
        "max_consecutive_wins",
        "max_consecutive_losses",
        "open_trades",
        "bars",
        "orders",
        "rejected_orders",
    }
)


def _clean(name: str, value: float) -> MetricValue:
    if not math.isfinite(value):
        return None
    if name in COUNT_METRICS:
        return int(value)
    return float(value)


def assemble_metrics(
    equity_values: npt.NDArray[np.float64],
    trade_values: npt.NDArray[np.float64],
    state_g: npt.NDArray[np.float64],
    index: npt.NDArray[np.int64],
    initial_cash: float,
    periods_per_year: float,
) -> dict[str, MetricValue]:
    metrics: dict[str, MetricValue] = {}
    for name, value in zip(EQUITY_METRICS, equity_values, strict=True):
        metrics[name] = _clean(name, float(value))
    for name, value in zip(TRADE_METRICS, trade_values, strict=True):
        metrics[name] = _clean(name, float(value))
    n_bars = int(index.shape[0])
    years = n_bars / periods_per_year
    start, end = iso_times(index[[0, -1]]) if n_bars else (None, None)
    mean_equity = metrics["avg_equity"]
    turnover = float(state_g[k.G_TURNOVER])
    final = metrics["final_equity"]
    max_dd_cash = metrics["max_drawdown_cash"]
    net = (final - initial_cash) if isinstance(final, float) else None
    dd_start = metrics["max_drawdown_start_bar"]
    dd_end = metrics["max_drawdown_end_bar"]
    dd_days = None
    if isinstance(dd_start, int) and isinstance(dd_end, int) and dd_end >= 0:
        dd_days = float(index[dd_end] - index[max(dd_start, 0)]) / _NS_PER_DAY
    fees = float(state_g[k.G_FEES])
    gross_profit = metrics["gross_profit"]
    metrics.update(
        {
            "initial_cash": float(initial_cash),
            "bars": n_bars,
            "years": years,
            "start": start,
            "end": end,
            "duration_days": float(index[-1] - index[0]) / _NS_PER_DAY if n_bars else 0.0,
            "fees_paid": fees,
            "slippage_paid": float(state_g[k.G_SLIPPAGE]),
            "borrow_paid": float(state_g[k.G_BORROW]),
            "orders": int(state_g[k.G_N_ORDERS]),
            "rejected_orders": int(state_g[k.G_REJECTED]),
            "traded_notional": turnover,
            "turnover": turnover / mean_equity
            if isinstance(mean_equity, float) and mean_equity > 0
            else None,
            "annual_turnover": (
                turnover / mean_equity / years
                if isinstance(mean_equity, float) and mean_equity > 0 and years > 0
                else None
            ),
            "recovery_factor": (net / max_dd_cash)
            if net is not None and isinstance(max_dd_cash, float) and max_dd_cash > 0
            else None,
            "max_drawdown_duration_days": dd_days,
            "fees_to_gross_profit": fees / gross_profit
            if isinstance(gross_profit, float) and gross_profit > 0
            else None,
            "liquidated": bool(state_g[k.G_LIQUIDATED]),
        }
    )
    return metrics


def benchmark_comparison(result: BacktestResult, close: npt.NDArray[np.float64]) -> dict[str, MetricValue]:
    """The result's benchmark metrics against a buy and hold of ``close`` (one price per bar of
    ``result.index``, NaN where the benchmark has no bar) instead of the universe's own."""
    values, _, _ = k.equity_metrics(
        result.equity,
        result.gross_exposure,
        np.ascontiguousarray(np.asarray(close, dtype=np.float64).reshape(-1, 1)),
        result.index,
        result.assumptions.initial_cash,
        result.periods_per_year,
        result.assumptions.risk_free_rate,
        np.empty(result.index.shape[0]),
    )
    named = dict(zip(EQUITY_METRICS, values.tolist(), strict=True))
    return {name: _clean(name, named[name]) for name in BENCHMARK_METRICS}
