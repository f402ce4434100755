"""The backtest pipeline on real daily data: compile, plan over warm-up history and range, simulate
exactly the range, measure, pack what a job stores; sweeps and parameter runs over the same ranges."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from packages.domain.backtest import codes
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import BacktestCancelled, simulate
from packages.domain.backtest.metrics import BENCHMARK_METRICS, benchmark_comparison
from packages.domain.backtest.pipeline import (
    BENCHMARK_POINTER,
    RANGE_POINTER,
    SYMBOLS_POINTER,
    Backtester,
    BacktestInputError,
    BacktestInputs,
    Benchmark,
    PackedBacktest,
    bars_rows,
    pack_backtest,
    plan_rows,
)
from packages.domain.strategy.compiler import compile_strategy
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.strategy.examples import get_example
from tests.packages.domain.backtest.kit import stock_bars
from tests.support.forking import assert_forked_child_agrees

SLOW_PERIOD = "/factors/1/params/period"


def history_and_range(
    bars: UniverseBars, start: str | None, end: str | None, warmup_bars: int
) -> tuple[UniverseBars, int]:
    """The bars a job reads for ``[start, end)``: up to ``warmup_bars`` rows of history before
    ``start``, then the range; and the row where the range begins."""

    def row(moment: str | None, default: int) -> int:
        if moment is None:
            return default
        return int(np.searchsorted(bars.index, pd.Timestamp(moment).value, side="left"))

    first, stop = row(start, 0), row(end, bars.n_bars)
    lowest = max(first - warmup_bars, 0)
    return bars_rows(bars, slice(lowest, stop)), first - lowest


def packed_run(
    slug: str, bars: UniverseBars, start: str | None, end: str | None, **changes: Any
) -> PackedBacktest:
    compiled = compile_strategy(get_example(slug))
    window, first_row = history_and_range(bars, start, end, compiled.warmup_bars)
    values: dict[str, Any] = {"max_cells": 2_000_000, "chart_points": 500, **changes}
    return pack_backtest(BacktestInputs(compiled, window, first_row=first_row, **values))


# --- the whole of the bars ----------------------------------------------------------------------


def test_document_runs_end_to_end(stocks: pd.DataFrame) -> None:
    document = get_example("sma_crossover_trend")
    bars = stock_bars(stocks, ["AAPL", "MSFT"])  # an extra symbol the universe does not use
    run = Backtester(document, bars, ExecutionAssumptions()).run()
    result = run.result
    assert result.symbols == ("AAPL",)
    assert result.dsl_version == document["dsl_version"]
    assert len(result.dsl_hash) == 64
    assert result.n_trades > 10
    assert set(result.trade_columns()["exit_reason"]) <= {"fast_below_slow", "end_of_data"}
    # The same plan run directly gives the same result.
    direct = simulate(
        run.plan, run.bars, ExecutionAssumptions(), dsl_version=result.dsl_version, dsl_hash=result.dsl_hash
    )
    assert direct.to_json_bytes() == result.to_json_bytes()
    snapshot = run.trade_snapshot(0)
    assert set(snapshot["factors"]) == {"sma_fast", "sma_slow"}
    labels = {leaf["label"] for leaf in snapshot["leaves_at_entry"]}
    assert len(labels) == 2 and all("sma_fast" in label for label in labels)
    entry = {leaf["leaf"]: leaf["value"] for leaf in snapshot["leaves_at_entry"]}
    assert entry["/trade/long/entry/condition"] is True


def test_document_hash_changes_with_the_document(aapl: UniverseBars) -> None:
    document = get_example("sma_crossover_trend")
    tweaked = copy.deepcopy(document)
    tweaked["factors"][1]["params"]["period"] = 40
    first = Backtester(document, aapl).run().result
    second = Backtester(tweaked, aapl).run().result
    assert first.dsl_hash != second.dsl_hash
    assert first.data_hash == second.data_hash
    assert first.order_hash != second.order_hash


def test_parameters_run_as_the_document_with_those_values(aapl: UniverseBars) -> None:
    document = get_example("sma_crossover_trend")
    tweaked = copy.deepcopy(document)
    tweaked["factors"][1]["params"]["period"] = 40
    backtester = Backtester(document, aapl)
    overridden = backtester.run({SLOW_PERIOD: 40}).result
    assert overridden.to_json_bytes() == Backtester(tweaked, aapl).run().result.to_json_bytes()
    # The backtester itself keeps the document's values.
    assert backtester.run().result.to_json_bytes() == Backtester(document, aapl).run().result.to_json_bytes()


def test_invalid_document_is_refused(aapl: UniverseBars) -> None:
    document = get_example("sma_crossover_trend")
    del document["trade"]
    with pytest.raises(StrategyValidationError):
        Backtester(document, aapl)


def test_missing_symbol_is_refused(stocks: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no data for symbols") as caught:
        Backtester(get_example("sma_crossover_trend"), stock_bars(stocks, ["MSFT"]))
    assert isinstance(caught.value, BacktestInputError)
    assert (caught.value.code, caught.value.pointer) == ("missing_symbols", SYMBOLS_POINTER)


def test_universe_selection_keeps_columns(aapl: UniverseBars, stocks: pd.DataFrame) -> None:
    bars = stock_bars(stocks, ["MSFT", "AAPL"])
    selected = bars.select(("AAPL",))
    np.testing.assert_array_equal(selected.close[:, 0], bars.close[:, 1])
    assert bars.select(bars.symbols) is bars


def test_document_sweep_matches_single_runs(aapl: UniverseBars) -> None:
    document = get_example("sma_crossover_trend")
    grid = [{"/factors/0/params/period": fast, SLOW_PERIOD: slow} for fast in (5, 10) for slow in (20, 40)]
    sweep = Backtester(document, aapl).sweep(grid)
    for k, values in enumerate(grid):
        tweaked = copy.deepcopy(document)
        tweaked["factors"][0]["params"]["period"] = values["/factors/0/params/period"]
        tweaked["factors"][1]["params"]["period"] = values[SLOW_PERIOD]
        single = Backtester(tweaked, aapl).run().result
        assert sweep.metric("final_equity")[k] == pytest.approx(single.metrics["final_equity"], rel=1e-12)
        assert sweep.metric("trades")[k] == single.metrics["trades"]


def test_benchmark_comparison_against_another_series(stocks: pd.DataFrame) -> None:
    run = Backtester(
        get_example("sma_crossover_trend"), stock_bars(stocks, ["AAPL"]), ExecutionAssumptions()
    ).run()
    result = run.result
    # Against the universe's own close it reproduces the result's benchmark metrics ...
    own = benchmark_comparison(result, run.bars.close[:, 0])
    assert own == {name: result.metrics[name] for name in BENCHMARK_METRICS}
    # ... and against another symbol it measures that one's buy and hold.
    msft = stock_bars(stocks, ["AAPL", "MSFT"]).select(("MSFT",)).close[:, 0]
    other = benchmark_comparison(result, msft)
    assert other["benchmark_return"] == pytest.approx(msft[-1] / msft[0] - 1, rel=1e-12)
    assert other["beta"] != own["beta"]


def test_a_forked_child_runs_backtests_after_its_parent_did() -> None:
    # The CPU worker warms up in its parent process, then forks its pool processes: the shared side
    # threads of the parent do not exist in a child, which must start its own instead of waiting.
    assert_forked_child_agrees(
        """
        import hashlib
        from packages.domain.backtest.assumptions import ExecutionAssumptions
        from packages.domain.backtest.pipeline import Backtester
        from packages.domain.strategy.examples import get_example
        from tests.packages.domain.backtest.kit import stock_bars, stocks_frame

        document = get_example("sma_crossover_trend")
        bars = stock_bars(stocks_frame(), ["AAPL"])
        """,
        "hashlib.sha256(Backtester(document, bars, ExecutionAssumptions()).run().result.to_json_bytes()).hexdigest()",
    )


# --- a range after warm-up history ---------------------------------------------------------------


def test_the_range_starts_with_warm_indicators_read_from_earlier_history(aapl: UniverseBars) -> None:
    compiled = compile_strategy(get_example("sma_crossover_trend"))
    bars, first_row = history_and_range(aapl, "2011-01-01", "2012-01-01", compiled.warmup_bars)
    assert first_row == compiled.warmup_bars == 30  # history read before the range
    full_plan = compiled.build_plan(bars)
    plan = plan_rows(full_plan, slice(first_row, bars.n_bars))
    assert plan.warmup_bars == 0 and plan.index[0] == np.datetime64("2011-01-03", "ns").astype(np.int64)
    # The slow SMA on the first day of the range is the mean of the 30 closes up to it (real AAPL data).
    closes = bars.close[: first_row + 1, 0]
    assert plan.factors["sma_slow"][0, 0] == pytest.approx(closes[-30:].mean(), rel=1e-12)
    packed = pack_backtest(BacktestInputs(compiled, bars, first_row=first_row))
    assert packed.summary["range"]["start"] == "2011-01-03T00:00:00Z"
    assert packed.summary["range"]["end"] == "2011-12-30T00:00:00Z"
    assert packed.summary["counts"]["bars"] == 252
    assert not any("warm-up" in w for w in packed.summary["warnings"])


def test_a_range_at_the_start_of_the_data_warns_about_missing_warm_up(aapl: UniverseBars) -> None:
    packed = packed_run("sma_crossover_trend", aapl, None, "2001-01-01")
    assert packed.run.first_row == 0
    warnings = packed.summary["warnings"]
    assert any("warm-up" in w and "30" in w for w in warnings), warnings


def test_identical_inputs_give_identical_bytes_and_any_change_changes_the_hash(
    indices: UniverseBars,
) -> None:
    first = packed_run("index_macd_long_short", indices, "2005-01-01", "2010-01-01")
    second = packed_run("index_macd_long_short", indices, "2005-01-01", "2010-01-01")
    assert first.artifacts == second.artifacts and first.summary == second.summary
    assert first.result_hash == second.result_hash
    costlier = packed_run(
        "index_macd_long_short",
        indices,
        "2005-01-01",
        "2010-01-01",
        assumptions=ExecutionAssumptions(fee_bps=20.0),
    )
    assert costlier.result_hash != first.result_hash
    assert costlier.summary["metrics"]["fees_paid"] > first.summary["metrics"]["fees_paid"]


def test_too_many_bars_fail_the_run_with_a_pointer(aapl: UniverseBars) -> None:
    with pytest.raises(BacktestInputError) as caught:
        packed_run("sma_crossover_trend", aapl, "2011-01-01", "2012-01-01", max_cells=100)
    assert caught.value.code == "too_many_bars" and caught.value.pointer == RANGE_POINTER
    assert "at most 100" in caught.value.message


def test_an_empty_or_impossible_range_is_refused(aapl: UniverseBars) -> None:
    backtester = Backtester(get_example("sma_crossover_trend"), aapl)
    with pytest.raises(BacktestInputError) as empty:
        backtester.run(first_row=100, stop_row=100)
    assert empty.value.code == "empty_range" and empty.value.pointer == RANGE_POINTER
    with pytest.raises(BacktestInputError) as outside:
        backtester.sweep([{}], first_row=10, stop_row=aapl.n_bars + 1)
    assert outside.value.code == "bad_range" and outside.value.pointer == RANGE_POINTER


# --- a range inside longer history: what stress tests run ----------------------------------------


def test_a_range_inside_longer_history_is_the_range_at_the_end_of_shorter_history(
    indices: UniverseBars,
) -> None:
    compiled = compile_strategy(get_example("index_macd_long_short"))
    first, stop = 1500, 2500
    close = indices.close[:, 0].copy()
    close[stop:] = np.nan  # bars after the range are not the range's: none is missing
    benchmark = Benchmark("SPX", close)
    inside = pack_backtest(
        BacktestInputs(compiled, indices, first_row=first, stop_row=stop, benchmark=benchmark)
    )
    shorter = bars_rows(indices, slice(0, stop))
    at_end = pack_backtest(
        BacktestInputs(compiled, shorter, first_row=first, benchmark=Benchmark("SPX", benchmark.close[:stop]))
    )
    assert inside.result_hash == at_end.result_hash and inside.artifacts == at_end.artifacts
    # The metrics, curves and trades cover exactly the range.
    result = inside.result
    np.testing.assert_array_equal(result.index, indices.index[first:stop])
    assert result.trades.shape[0] > 5
    entry_bars = result.trades[:, codes.T_ENTRY_BAR]  # bar numbers count from the range's first row
    assert entry_bars.min() >= 0 and entry_bars.max() < stop - first
    assert result.metrics["total_return"] == pytest.approx(result.final_equity / 100_000 - 1, rel=1e-12)
    spx = indices.close[first:stop, 0]
    assert inside.summary["benchmark"]["benchmark_return"] == pytest.approx(spx[-1] / spx[0] - 1, rel=1e-12)
    assert inside.summary["benchmark"]["missing_bars"] == 0


def test_a_sweep_over_a_range_matches_single_runs_over_it(aapl: UniverseBars) -> None:
    backtester = Backtester(get_example("sma_crossover_trend"), aapl)
    first, stop = 800, 2000
    grid = [{"/factors/0/params/period": fast, SLOW_PERIOD: slow} for fast in (5, 12) for slow in (30, 60)]
    sweep = backtester.sweep(grid, first_row=first, stop_row=stop)
    for k, values in enumerate(grid):
        single = backtester.run(values, first_row=first, stop_row=stop).result
        assert single.index.shape[0] == stop - first
        assert sweep.metric("final_equity")[k] == pytest.approx(single.metrics["final_equity"], rel=1e-12)
        assert sweep.metric("trades")[k] == single.metrics["trades"]
        assert sweep.metric("sharpe")[k] == pytest.approx(single.metrics["sharpe"], rel=1e-9)
    # Bars after the range change nothing.
    shorter = Backtester(get_example("sma_crossover_trend"), bars_rows(aapl, slice(0, stop)))
    again = shorter.sweep(grid, first_row=first)
    np.testing.assert_array_equal(again.values, sweep.values)
    assert again.data_hash == sweep.data_hash


# --- hooks and inputs ----------------------------------------------------------------------------


def test_packing_reports_progress_and_stops_when_cancelled(aapl: UniverseBars) -> None:
    compiled = compile_strategy(get_example("sma_crossover_trend"))
    seen: list[tuple[float, str]] = []
    pack_backtest(
        BacktestInputs(compiled, aapl), progress=lambda fraction, stage: seen.append((fraction, stage))
    )
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] < 1
    assert seen[0] == (0.1, "computing indicators") and seen[-1] == (0.85, "storing")
    assert {"simulating", "metrics"} <= {stage for _, stage in seen}
    with pytest.raises(BacktestCancelled):
        pack_backtest(BacktestInputs(compiled, aapl), should_cancel=lambda: True)


def test_a_benchmark_must_cover_every_row(aapl: UniverseBars) -> None:
    with pytest.raises(BacktestInputError) as caught:
        Backtester(get_example("sma_crossover_trend"), aapl).run(
            benchmark=Benchmark("SPX", np.ones(aapl.n_bars - 1))
        )
    assert caught.value.code == "benchmark_misaligned" and caught.value.pointer == BENCHMARK_POINTER
