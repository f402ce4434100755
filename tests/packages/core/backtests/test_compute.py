"""The worker's computation in-process, on the real data the session's cold start stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from packages.core.backtests.artifacts import ArtifactsCorrupt, pack_artifacts, unpack_artifacts
from packages.core.backtests.compute import (
    RunInputs,
    bars_from_row,
    compile_document,
    plan_from_row,
    run_backtest_job,
)
from packages.core.backtests.results import decode_result
from packages.core.backtests.schemas import ANALYSIS_VIEWS
from packages.core.backtests.snapshot_context import SNAPSHOT_SPAN_LIMIT, rebuild_trade_snapshot
from packages.core.errors import ValidationFailed
from packages.core.market_data.universe import read_universe, resolve_universe, to_ns
from packages.domain.backtest import codes
from packages.domain.backtest.analytics import VIEWS
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.snapshots import trade_snapshot
from packages.domain.strategy.examples import get_example


def _inputs(settings: Any, slug: str, start: str | None, end: str | None, **changes: Any) -> RunInputs:
    document = get_example(slug)
    compiled = compile_document(document)
    universe = document["universe"]
    source = resolve_universe(
        settings,
        uuid.uuid4(),
        universe["market"],
        universe["symbols"],
        document["timeframe"],
        symbol_pointer=lambda i: f"/symbols/{i}",
        timeframe_pointer="/timeframe",
    )

    def moment(text: str | None) -> int | None:
        return None if text is None else to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))

    bars, first_row = read_universe(source, moment(start), moment(end), compiled.warmup_bars)
    values = {
        "compiled": compiled,
        "assumptions": ExecutionAssumptions(),
        "bars": bars,
        "first_row": first_row,
        "benchmark_symbol": None,
        "benchmark_close": None,
        "max_cells": 2_000_000,
        "context_bars": 20,
        "snapshot_budget": 500_000,
        "chart_points": 500,
        **changes,
    }
    return RunInputs(**values)


def _run(inputs: RunInputs) -> Any:
    return run_backtest_job(inputs, lambda fraction, stage: None, lambda: False)


def test_the_range_starts_with_warm_indicators_read_from_earlier_history(
    settings: Any, market_data_ready: dict[str, Any]
) -> None:
    inputs = _inputs(settings, "sma_crossover_trend", "2011-01-01", "2012-01-01")
    assert inputs.first_row == inputs.compiled.warmup_bars == 30  # history read before the range
    full_plan = inputs.compiled.build_plan(inputs.bars)
    plan = plan_from_row(full_plan, inputs.first_row)
    assert plan.warmup_bars == 0 and plan.index[0] == np.datetime64("2011-01-03", "ns").astype(np.int64)
    # The slow SMA on the first day of the range is the mean of the 30 closes up to it (real AAPL data).
    closes = inputs.bars.close[: inputs.first_row + 1, 0]
    assert plan.factors["sma_slow"][0, 0] == pytest.approx(closes[-30:].mean(), rel=1e-12)
    result = _run(inputs)
    assert result.summary["range"]["start"] == "2011-01-03T00:00:00Z"
    assert result.summary["range"]["end"] == "2011-12-30T00:00:00Z"
    assert result.summary["counts"]["bars"] == 252
    assert not any("warm-up" in w for w in result.summary["warnings"])


def test_a_range_at_the_start_of_the_data_warns_about_missing_warm_up(
    settings: Any, market_data_ready: dict[str, Any]
) -> None:
    inputs = _inputs(settings, "sma_crossover_trend", None, "2001-01-01")
    assert inputs.first_row == 0
    warnings = _run(inputs).summary["warnings"]
    assert any("warm-up" in w and "30" in w for w in warnings), warnings


def test_identical_inputs_give_identical_bytes_and_any_change_changes_the_hash(
    settings: Any, market_data_ready: dict[str, Any]
) -> None:
    first = _run(_inputs(settings, "index_macd_long_short", "2005-01-01", "2010-01-01"))
    second = _run(_inputs(settings, "index_macd_long_short", "2005-01-01", "2010-01-01"))
    assert first.artifacts == second.artifacts and first.summary == second.summary
    assert first.result_hash == second.result_hash
    costlier = _run(
        _inputs(
            settings,
            "index_macd_long_short",
            "2005-01-01",
            "2010-01-01",
            assumptions=ExecutionAssumptions(fee_bps=20.0),
        )
    )
    assert costlier.result_hash != first.result_hash
    assert costlier.summary["metrics"]["fees_paid"] > first.summary["metrics"]["fees_paid"]


def test_snapshots_from_kept_rows_equal_the_engines_over_the_whole_run(
    settings: Any, market_data_ready: dict[str, Any]
) -> None:
    inputs = _inputs(settings, "index_macd_long_short", "2003-01-01", "2013-01-01")
    computed = _run(inputs)
    stored = decode_result(computed.summary, computed.artifacts)
    result = stored.result
    assert result.n_trades > 10 and computed.summary["snapshot"]["trades_kept"] == result.n_trades
    full_plan = plan_from_row(inputs.compiled.build_plan(inputs.bars), inputs.first_row)
    full_bars = bars_from_row(inputs.bars, inputs.first_row)
    labels = computed.summary["snapshot"]["leaf_labels"]
    for trade in range(result.n_trades):
        expected = trade_snapshot(
            result, full_plan, full_bars, trade, bars_before=7, bars_after=4, leaf_labels=labels
        )
        rebuilt = rebuild_trade_snapshot(result, stored.blobs, labels, trade, bars_before=7, bars_after=4)
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


def test_a_small_snapshot_budget_keeps_the_first_trades_only(
    settings: Any, market_data_ready: dict[str, Any]
) -> None:
    computed = _run(
        _inputs(settings, "index_macd_long_short", "2003-01-01", "2013-01-01", snapshot_budget=20_000)
    )
    kept = computed.summary["snapshot"]["trades_kept"]
    assert 0 < kept < computed.summary["counts"]["trades"]


def test_too_many_bars_fail_the_run_with_a_pointer(settings: Any, market_data_ready: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _run(_inputs(settings, "sma_crossover_trend", "2011-01-01", "2012-01-01", max_cells=100))
    assert caught.value.errors[0].code == "too_many_bars" and caught.value.errors[0].pointer == "/start"


def test_artifacts_round_trip_and_refuse_damage() -> None:
    blobs = {"b": b"\x00\x01", "a": b"xyz", "empty": b""}
    packed = pack_artifacts(blobs)
    assert unpack_artifacts(packed) == blobs
    assert pack_artifacts(dict(reversed(list(blobs.items())))) == packed
    with pytest.raises(ArtifactsCorrupt):
        unpack_artifacts(packed[:-1])
    with pytest.raises(ArtifactsCorrupt):
        unpack_artifacts(b"something else")


def test_every_engine_view_is_exposed_under_its_name() -> None:
    assert set(ANALYSIS_VIEWS) == set(VIEWS)
