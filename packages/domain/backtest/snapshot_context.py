"""What a stored result keeps for trade snapshots, and how a snapshot is rebuilt from it.

The engine's ``trade_snapshot`` reads bars, factor values and condition leaves around one trade.
A packed backtest (``pipeline.pack_backtest``) keeps exactly those rows: for every trade the bars
from ``context`` before its signal to ``context`` after its exit (only the two ends for trades longer
than ``SNAPSHOT_SPAN_LIMIT`` bars), for every symbol, for as many trades (in entry order) as fit a
budget of stored values. A snapshot request rebuilds bars and plan over the kept rows and maps the
trade's bar numbers into them and back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import codes as c
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.result import BacktestResult
from packages.domain.backtest.serialization import decode_array, encode_array
from packages.domain.backtest.snapshots import trade_snapshot
from packages.domain.strategy.plan import PortfolioPlan, StrategyPlan

SNAPSHOT_SPAN_LIMIT = 250
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")
_ROWS = "snapshot.rows"
_BAR_PREFIX = "snapshot.bars."
_FACTOR_PREFIX = "snapshot.factor."
_LEAF_PREFIX = "snapshot.leaf."
_BAR_COLUMNS = (c.T_SIGNAL_BAR, c.T_ENTRY_BAR, c.T_EXIT_SIGNAL_BAR, c.T_EXIT_BAR)


@dataclasses.dataclass(frozen=True)
class TradeWindows:
    """Bar ranges of one trade (inclusive): around the entry, around the exit, and whether it is long."""

    entry_first: int
    entry_last: int
    exit_first: int
    exit_last: int
    long: bool

    def contains(self, bars: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        inside = (bars >= self.entry_first) & (bars <= self.exit_last)
        if self.long:
            inside &= (bars <= self.entry_last) | (bars >= self.exit_first)
        return inside


def trade_windows(record: npt.NDArray[np.float64], before: int, after: int, n_bars: int) -> TradeWindows:
    start = int(min(record[c.T_SIGNAL_BAR], record[c.T_ENTRY_BAR]))
    entry = int(record[c.T_ENTRY_BAR])
    exit_bar = int(record[c.T_EXIT_BAR])
    exit_start = int(min(max(record[c.T_EXIT_SIGNAL_BAR], 0), exit_bar))
    last = n_bars - 1
    return TradeWindows(
        entry_first=max(start - before, 0),
        entry_last=min(entry + after, last),
        exit_first=max(exit_start - before, 0),
        exit_last=min(exit_bar + after, last),
        long=exit_bar - start > SNAPSHOT_SPAN_LIMIT,
    )


def _spans(
    trades: npt.NDArray[np.float64], n_bars: int, context: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First and last kept bar of each trade's one or two windows, as (n_trades, 2) arrays."""
    start = np.minimum(trades[:, c.T_SIGNAL_BAR], trades[:, c.T_ENTRY_BAR]).astype(np.int64)
    entry = trades[:, c.T_ENTRY_BAR].astype(np.int64)
    exit_bar = trades[:, c.T_EXIT_BAR].astype(np.int64)
    exit_start = np.minimum(np.maximum(trades[:, c.T_EXIT_SIGNAL_BAR], 0).astype(np.int64), exit_bar)
    long = exit_bar - start > SNAPSHOT_SPAN_LIMIT
    first = np.stack([start - context, np.where(long, exit_start - context, start - context)], axis=1)
    last = np.stack([np.where(long, entry + context, exit_bar + context), exit_bar + context], axis=1)
    return np.clip(first, 0, n_bars - 1), np.clip(last, 0, n_bars - 1)


def kept_trades(
    trades: npt.NDArray[np.float64], n_bars: int, context: int, values_per_row: int, budget: int
) -> int:
    """How many trades (in entry order) get snapshot rows within ``budget`` stored values."""
    if trades.shape[0] == 0:
        return 0
    first, last = _spans(trades, n_bars, context)
    # A trade's two windows may overlap; counting both is conservative.
    rows = (last - first + 1).sum(axis=1)
    within = np.cumsum(rows) * values_per_row <= budget
    return int(np.count_nonzero(within))


def context_rows(trades: npt.NDArray[np.float64], n_bars: int, context: int) -> npt.NDArray[np.int64]:
    """Sorted bar numbers covering the snapshot windows of ``trades``."""
    covered = np.zeros(n_bars + 1, dtype=np.int64)
    if trades.shape[0]:
        first, last = _spans(trades, n_bars, context)
        np.add.at(covered, first.ravel(), 1)
        np.add.at(covered, last.ravel() + 1, -1)
    return np.flatnonzero(np.cumsum(covered[:n_bars]) > 0).astype(np.int64)


def context_blobs(
    result: BacktestResult, bars: UniverseBars, plan: StrategyPlan, context: int, budget: int
) -> tuple[dict[str, bytes], int]:
    """The kept rows of bars, factors and leaves, and how many trades they serve."""
    values_per_row = bars.n_symbols * (len(_PRICE_FIELDS) + len(plan.factors) + len(plan.leaves))
    kept = kept_trades(result.trades, bars.n_bars, context, values_per_row, budget)
    rows = context_rows(result.trades[:kept], bars.n_bars, context)
    blobs = {_ROWS: encode_array(rows)}
    for name in _PRICE_FIELDS:
        blobs[_BAR_PREFIX + name] = encode_array(getattr(bars, name)[rows])
    for name, values in plan.factors.items():
        blobs[_FACTOR_PREFIX + name] = encode_array(values[rows])
    for pointer, truth in plan.leaves.items():
        blobs[_LEAF_PREFIX + pointer] = encode_array(truth[rows])
    return blobs, kept


def _with_prefix(blobs: Mapping[str, bytes], prefix: str) -> dict[str, npt.NDArray[Any]]:
    return {
        name[len(prefix) :]: decode_array(blob) for name, blob in blobs.items() if name.startswith(prefix)
    }


def _remap_bars(values: npt.NDArray[np.float64], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Bar numbers of the full run -> positions among the kept rows (-1 where a bar was not kept)."""
    positions = np.searchsorted(rows, values.astype(np.int64))
    clipped = np.minimum(positions, rows.shape[0] - 1)
    kept = (values >= 0) & (rows[clipped] == values)
    return np.where(kept, positions, -1).astype(np.float64)


def rebuild_trade_snapshot(
    result: BacktestResult,
    blobs: Mapping[str, bytes],
    leaf_labels: Mapping[str, str],
    trade_index: int,
    *,
    bars_before: int,
    bars_after: int,
) -> dict[str, Any]:
    """The engine's snapshot of one trade, computed over the kept rows, with real bar numbers."""
    rows = decode_array(blobs[_ROWS]).astype(np.int64)
    prices = _with_prefix(blobs, _BAR_PREFIX)
    kept_bars = UniverseBars(
        index=result.index[rows], symbols=result.symbols, **{name: prices[name] for name in _PRICE_FIELDS}
    )
    kept_plan = StrategyPlan(
        index=kept_bars.index,
        symbols=result.symbols,
        sides=(),
        portfolio=PortfolioPlan(max_open_positions=max(len(result.symbols), 1)),
        warmup_bars=0,
        factors=_with_prefix(blobs, _FACTOR_PREFIX),
        leaves=_with_prefix(blobs, _LEAF_PREFIX),
    )
    trades = result.trades.copy()
    for column in _BAR_COLUMNS:
        trades[:, column] = _remap_bars(result.trades[:, column], rows)
    snapshot = trade_snapshot(
        dataclasses.replace(result, trades=trades),
        kept_plan,
        kept_bars,
        trade_index,
        bars_before=bars_before,
        bars_after=bars_after,
        leaf_labels=leaf_labels,
    )
    record = result.trades[trade_index]
    for part in ("entry", "exit"):
        for key in ("signal_bar", "bar"):
            position = int(snapshot[part][key])
            snapshot[part][key] = int(rows[position]) if position >= 0 else -1
    window = snapshot["window"]
    first = int(window["first_bar"])
    count = len(window["time"])
    real_bars = rows[first : first + count]
    keep = trade_windows(record, bars_before, bars_after, result.index.shape[0]).contains(real_bars)
    window["bar"] = real_bars[keep].tolist()
    for name in ("time", *_PRICE_FIELDS):
        window[name] = [value for value, kept in zip(window[name], keep, strict=True) if kept]
    snapshot["factors"] = {
        name: [value for value, kept in zip(values, keep, strict=True) if kept]
        for name, values in snapshot["factors"].items()
    }
    window["first_bar"] = int(real_bars[keep][0]) if keep.any() else first
    return snapshot
