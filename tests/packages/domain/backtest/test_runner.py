"""The end-to-end path from a strategy document: compile, plan, simulate, metrics, snapshots."""

from __future__ import annotations

import copy
import json
from importlib import resources

import numpy as np
import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.metrics import BENCHMARK_METRICS, benchmark_comparison
from packages.domain.backtest.runner import run_backtest, sweep_backtest
from packages.domain.strategy.errors import StrategyValidationError
from tests.packages.domain.backtest.kit import stock_bars
from tests.support.forking import assert_forked_child_agrees


def example(name: str) -> dict:
    text = (resources.files("packages.domain.strategy") / "examples" / f"{name}.json").read_text()
    return json.loads(text)


def test_document_runs_end_to_end(stocks) -> None:
    document = example("sma_crossover_trend")
    bars = stock_bars(stocks, ["AAPL", "MSFT"])  # an extra symbol the universe does not use
    run = run_backtest(document, bars, ExecutionAssumptions())
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


def test_document_hash_changes_with_the_document(stocks) -> None:
    bars = stock_bars(stocks, ["AAPL"])
    document = example("sma_crossover_trend")
    tweaked = copy.deepcopy(document)
    tweaked["factors"][1]["params"]["period"] = 40
    first = run_backtest(document, bars).result
    second = run_backtest(tweaked, bars).result
    assert first.dsl_hash != second.dsl_hash
    assert first.data_hash == second.data_hash
    assert first.order_hash != second.order_hash


def test_invalid_document_is_refused(stocks) -> None:
    document = example("sma_crossover_trend")
    del document["trade"]
    with pytest.raises(StrategyValidationError):
        run_backtest(document, stock_bars(stocks, ["AAPL"]))


def test_missing_symbol_is_refused(stocks) -> None:
    with pytest.raises(ValueError, match="no data for symbols"):
        run_backtest(example("sma_crossover_trend"), stock_bars(stocks, ["MSFT"]))


def test_universe_selection_keeps_columns(aapl: UniverseBars, stocks) -> None:
    bars = stock_bars(stocks, ["MSFT", "AAPL"])
    selected = bars.select(("AAPL",))
    np.testing.assert_array_equal(selected.close[:, 0], bars.close[:, 1])
    assert bars.select(bars.symbols) is bars


def test_document_sweep_matches_single_runs(stocks) -> None:
    document = example("sma_crossover_trend")
    bars = stock_bars(stocks, ["AAPL"])
    grid = [
        {"/factors/0/params/period": fast, "/factors/1/params/period": slow}
        for fast in (5, 10)
        for slow in (20, 40)
    ]
    sweep = sweep_backtest(document, bars, grid)
    for k, values in enumerate(grid):
        tweaked = copy.deepcopy(document)
        tweaked["factors"][0]["params"]["period"] = values["/factors/0/params/period"]
        tweaked["factors"][1]["params"]["period"] = values["/factors/1/params/period"]
        single = run_backtest(tweaked, bars).result
        assert sweep.metric("final_equity")[k] == pytest.approx(single.metrics["final_equity"], rel=1e-12)
        assert sweep.metric("trades")[k] == single.metrics["trades"]


def test_benchmark_comparison_against_another_series(stocks) -> None:
    run = run_backtest(example("sma_crossover_trend"), stock_bars(stocks, ["AAPL"]), ExecutionAssumptions())
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
        import hashlib, json
        from importlib import resources
        from packages.domain.backtest.assumptions import ExecutionAssumptions
        from packages.domain.backtest.runner import run_backtest
        from tests.packages.domain.backtest.kit import stock_bars, stocks_frame

        examples = resources.files("packages.domain.strategy") / "examples"
        document = json.loads((examples / "sma_crossover_trend.json").read_text())
        bars = stock_bars(stocks_frame(), ["AAPL"])
        """,
        "hashlib.sha256(run_backtest(document, bars, ExecutionAssumptions()).result.to_json_bytes()).hexdigest()",
    )
