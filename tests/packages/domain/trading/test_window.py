"""What the cycle reads: the plan over a bounded window equals the backtest's plan over all history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packages.domain.strategy.compiler import compile_strategy
from packages.domain.trading.window import bars_window, evaluate_window, window_bars
from tests.packages.domain.backtest.kit import stock_bars, stocks_frame

EXAMPLES = Path(__file__).parents[4] / "packages" / "domain" / "strategy" / "examples"


def example(name: str) -> dict[str, object]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def test_the_window_reads_what_the_backtests_plan_holds_at_that_bar() -> None:
    strategy = compile_strategy(example("ema_crossover_long_short"))
    bars = stock_bars(stocks_frame(), ["MSFT"])
    plan = strategy.build_plan(bars)
    length = window_bars(strategy)
    assert length == strategy.warmup_bars * 41  # 40 settling bars per warm-up bar, below the cap
    for row in (1_500, 2_000, 2_500):
        read = evaluate_window(strategy, bars_window(bars, row, length))
        assert read.time == bars.index[row] and read.warmed_up
        for side_plan, side_read in zip(plan.sides, read.sides, strict=True):
            assert side_read.entry.tolist() == side_plan.entry[row].tolist()
            for rule_plan, rule_read in zip(side_plan.exits, side_read.exits, strict=True):
                if rule_plan.signal is not None:
                    assert rule_read.signal.tolist() == rule_plan.signal[row].tolist()  # type: ignore[union-attr]
                if rule_plan.distance is not None:
                    assert rule_read.distance == pytest.approx(rule_plan.distance[row], rel=1e-12)
    early = evaluate_window(strategy, bars_window(bars, 10, length))
    assert not early.warmed_up  # fewer bars than the warm-up exist before bar 10


@pytest.mark.parametrize(
    ("name", "warmup", "expected", "unsettled"),
    [
        ("sma_crossover_trend", 30, 30 + 40 * 30, 30),  # settled 40 times the warm-up
        ("momentum_rotation", 126, 126 + 2_000, 126),  # settling capped at 2,000 bars
        ("keltner_squeeze_breakout", 28, 28 + 40 * 28, 32),  # its 30-bar time exit needs 32 bars
    ],
)
def test_window_lengths(name: str, warmup: int, expected: int, unsettled: int) -> None:
    strategy = compile_strategy(example(name))
    assert strategy.warmup_bars == warmup
    assert window_bars(strategy) == expected
    assert window_bars(strategy, settle_per_warmup_bar=0) == unsettled
