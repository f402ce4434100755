"""Trade snapshots rebuilt from the rows a packed backtest keeps, against the engine's over the run."""

from __future__ import annotations

import numpy as np
from pandas import Timestamp

from packages.domain.backtest import codes
from packages.domain.backtest.artifacts import unpack_artifacts
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.pipeline import (
    BacktestInputs,
    PackedBacktest,
    SnapshotContext,
    bars_rows,
    pack_backtest,
)
from packages.domain.backtest.result import BacktestResult
from packages.domain.backtest.snapshot_context import SNAPSHOT_SPAN_LIMIT, rebuild_trade_snapshot
from packages.domain.strategy.compiler import compile_strategy
from packages.domain.strategy.examples import get_example


def _index_run(indices: UniverseBars, max_values: int) -> PackedBacktest:
    """index_macd_long_short over 2003-2012, with its warm-up history before the range."""
    compiled = compile_strategy(get_example("index_macd_long_short"))
    moments = [Timestamp("2003-01-01").value, Timestamp("2013-01-01").value]
    first, stop = (int(row) for row in np.searchsorted(indices.index, moments))
    bars = bars_rows(indices, slice(first - compiled.warmup_bars, stop))
    snapshots = SnapshotContext(context_bars=20, max_values=max_values)
    return pack_backtest(BacktestInputs(compiled, bars, first_row=compiled.warmup_bars, snapshots=snapshots))


def test_snapshots_from_kept_rows_equal_the_engines_over_the_whole_run(indices: UniverseBars) -> None:
    packed = _index_run(indices, max_values=500_000)
    blobs = unpack_artifacts(packed.artifacts)
    result = BacktestResult.from_storage(packed.summary, blobs)
    assert result.n_trades > 10 and packed.summary["snapshot"]["trades_kept"] == result.n_trades
    labels = packed.summary["snapshot"]["leaf_labels"]
    for trade in range(result.n_trades):
        expected = packed.run.trade_snapshot(trade, bars_before=7, bars_after=4)
        rebuilt = rebuild_trade_snapshot(result, blobs, labels, trade, bars_before=7, bars_after=4)
        window = expected["window"]
        span = window["first_bar"] + np.arange(len(window["time"]))
        assert rebuilt["entry"] == expected["entry"] and rebuilt["exit"] == expected["exit"]
        assert rebuilt["leaves_at_entry"] == expected["leaves_at_entry"]
        assert rebuilt["leaves_at_exit"] == expected["leaves_at_exit"]
        if rebuilt["window"]["bar"] != span.tolist():
            # A trade longer than the span limit keeps only the bars around its entry and exit.
            record = result.trades[trade]
            assert record[codes.T_EXIT_BAR] - record[codes.T_SIGNAL_BAR] > SNAPSHOT_SPAN_LIMIT
            keep = np.isin(span, rebuilt["window"]["bar"])
        else:
            keep = np.ones(span.shape[0], dtype=bool)
        for name in ("time", "open", "high", "low", "close", "volume"):
            assert rebuilt["window"][name] == np.asarray(window[name], dtype=object)[keep].tolist()
        for name, values in expected["factors"].items():
            assert rebuilt["factors"][name] == np.asarray(values, dtype=object)[keep].tolist()


def test_a_small_snapshot_budget_keeps_the_first_trades_only(indices: UniverseBars) -> None:
    packed = _index_run(indices, max_values=20_000)
    kept = packed.summary["snapshot"]["trades_kept"]
    assert 0 < kept < packed.summary["counts"]["trades"]
