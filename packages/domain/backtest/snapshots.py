"""Trade snapshots: the bars around one trade, its factor values and the condition leaves at entry/exit.

A snapshot needs the plan (factor series, condition leaves) and the bars: a ``pipeline.BacktestRun``
holds both; a packed (stored) result keeps only the rows around its trades, and
``snapshot_context.rebuild_trade_snapshot`` computes its snapshots from those.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from packages.domain.backtest import codes as c
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.result import BacktestResult, iso_times
from packages.domain.strategy.plan import StrategyPlan

DEFAULT_BARS_BEFORE = 20
DEFAULT_BARS_AFTER = 10


def _leaf_states(
    plan: StrategyPlan, bar: int, column: int, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    if bar < 0:
        return []
    return [
        {"leaf": pointer, "label": labels.get(pointer, pointer), "value": bool(values[bar, column])}
        for pointer, values in sorted(plan.leaves.items())
    ]


def trade_snapshot(
    result: BacktestResult,
    plan: StrategyPlan,
    bars: UniverseBars,
    trade_index: int,
    *,
    bars_before: int = DEFAULT_BARS_BEFORE,
    bars_after: int = DEFAULT_BARS_AFTER,
    leaf_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Snapshot of trade ``trade_index`` (its row in ``result.trades``)."""
    if not 0 <= trade_index < result.n_trades:
        raise IndexError(f"trade {trade_index} does not exist ({result.n_trades} trades)")
    record = result.trades[trade_index]
    column = int(record[c.T_SYMBOL])
    signal_bar = int(record[c.T_SIGNAL_BAR])
    entry_bar = int(record[c.T_ENTRY_BAR])
    exit_bar = int(record[c.T_EXIT_BAR])
    exit_signal_bar = int(record[c.T_EXIT_SIGNAL_BAR])
    first = max(min(signal_bar, entry_bar) - bars_before, 0)
    last = min(exit_bar + bars_after, bars.n_bars - 1)
    rows = slice(first, last + 1)
    labels = leaf_labels or {}
    return {
        "trade_index": trade_index,
        "trade_id": int(record[c.T_ID]),
        "symbol": result.symbols[column],
        "direction": "long" if record[c.T_DIRECTION] > 0 else "short",
        "exit_reason": result.reason_name(int(record[c.T_REASON])),
        "entry": {
            "signal_bar": signal_bar,
            "bar": entry_bar,
            "time": iso_times(bars.index[[entry_bar]])[0],
            "price": float(record[c.T_ENTRY_PRICE]),
            "at": c.AT_NAMES[int(record[c.T_ENTRY_AT])],
        },
        "exit": {
            "signal_bar": exit_signal_bar,
            "bar": exit_bar,
            "time": iso_times(bars.index[[exit_bar]])[0],
            "price": float(record[c.T_EXIT_PRICE]),
            "at": c.AT_NAMES[int(record[c.T_EXIT_AT])],
        },
        "pnl": float(record[c.T_PNL]),
        "trade_return": float(record[c.T_RETURN]),
        "window": {
            "first_bar": first,
            "time": bars.index[rows].tolist(),
            "open": bars.open[rows, column].tolist(),
            "high": bars.high[rows, column].tolist(),
            "low": bars.low[rows, column].tolist(),
            "close": bars.close[rows, column].tolist(),
            "volume": bars.volume[rows, column].tolist(),
        },
        "factors": {
            name: [v if np.isfinite(v) else None for v in values[rows, column].tolist()]
            for name, values in sorted(plan.factors.items())
        },
        # Entry leaves are read on the signal bar's close, when the decision was made; exit leaves
        # on the bar whose close decided the exit (the exit bar itself for stops and targets).
        "leaves_at_entry": _leaf_states(plan, signal_bar, column, labels),
        "leaves_at_exit": _leaf_states(plan, exit_signal_bar, column, labels),
    }
