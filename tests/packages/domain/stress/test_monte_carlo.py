"""Monte Carlo trials: reproducible from a seed, the same in any chunking, and right on series whose
answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from packages.domain.stress.errors import StressInputError
from packages.domain.stress.monte_carlo import (
    METHODS,
    MonteCarloSource,
    MonteCarloSpec,
    chunk_bounds,
    merge_chunks,
    plan_trials,
    run_chunk,
)


def _source(bar_returns: np.ndarray, trade_returns: np.ndarray | None = None) -> MonteCarloSource:
    trades = trade_returns if trade_returns is not None else bar_returns[:50]
    return MonteCarloSource(
        bar_returns=np.ascontiguousarray(bar_returns, dtype=np.float64),
        trade_returns=np.ascontiguousarray(trades, dtype=np.float64),
        periods_per_year=252.0,
        trades_per_year=12.0,
        risk_free_rate=0.0,
        total_return=float(np.prod(1 + bar_returns) - 1),
        max_drawdown=-0.1,
        sharpe=None,
    )


def _run(source: MonteCarloSource, spec: MonteCarloSpec, chunk: int | None = None) -> dict:
    plan = plan_trials(source, spec)
    size = chunk or spec.trials
    return merge_chunks(
        source, spec, plan, [run_chunk(source, plan, a, n) for a, n in chunk_bounds(spec.trials, size)]
    )


# SYNTHETIC returns (seeded normal draws), labelled as such: only the statistics' properties are tested.
NOISE = np.random.default_rng(7).normal(0.0005, 0.01, 1_000)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_any_chunking_gives_the_trials_of_one_run(method: str) -> None:
    source = _source(NOISE)
    spec = MonteCarloSpec(
        method=method,  # type: ignore[arg-type]
        trials=300,
        seed=11,
        block_length=5 if method == "block_bootstrap" else None,
    )
    whole = _run(source, spec)
    assert _run(source, spec, chunk=7) == whole
    assert _run(source, spec, chunk=299) == whole
    plan = plan_trials(source, spec)
    shuffled = [run_chunk(source, plan, a, n) for a, n in reversed(chunk_bounds(spec.trials, 50))]
    assert merge_chunks(source, spec, plan, shuffled) == whole


def test_a_seed_fixes_the_trials_and_another_seed_changes_them() -> None:
    source = _source(NOISE)
    spec = MonteCarloSpec(method="iid_bootstrap", trials=200, seed=3)
    assert _run(source, spec) == _run(source, spec)
    other = _run(source, MonteCarloSpec(method="iid_bootstrap", trials=200, seed=4))
    assert other["final_return"]["percentiles"] != _run(source, spec)["final_return"]["percentiles"]


def test_a_constant_return_gives_one_known_outcome() -> None:
    # Every draw is +0.1%: every trial ends at 1.001**n - 1 and never draws down.
    source = _source(np.full(250, 0.001))
    report = _run(source, MonteCarloSpec(method="iid_bootstrap", trials=50, seed=1))
    expected = 1.001**250 - 1
    assert report["final_return"]["min"] == pytest.approx(expected, rel=1e-12)
    assert report["final_return"]["max"] == pytest.approx(expected, rel=1e-12)
    assert report["max_drawdown"]["min"] == 0.0
    assert report["probability_of_ruin"] == 0.0
    assert report["fan_chart"]["p50"][-1] == pytest.approx(1 + expected)
    assert report["fan_chart"]["p5"][0] == 1.0


def test_a_trade_shuffle_keeps_the_final_return_and_only_moves_drawdowns() -> None:
    trades = np.array([0.10, -0.05, 0.08, -0.12, 0.03, 0.04, -0.02, 0.06])
    report = _run(_source(NOISE, trades), MonteCarloSpec(method="trade_shuffle", trials=400, seed=5))
    product = float(np.prod(1 + trades) - 1)
    assert report["final_return"]["min"] == pytest.approx(product, rel=1e-12)
    assert report["final_return"]["max"] == pytest.approx(product, rel=1e-12)
    # The deepest drawdown any order can have: all losses in a row, 1 - 0.95*0.88*0.98.
    worst_possible = 0.95 * 0.88 * 0.98 - 1
    assert report["max_drawdown"]["min"] >= worst_possible - 1e-12
    assert report["max_drawdown"]["max"] > report["max_drawdown"]["min"]  # orders differ
    # The shallowest: each loss alone, so at most the single largest loss.
    assert report["max_drawdown"]["max"] <= -0.12 + 1e-12


def test_risk_figures_agree_with_their_definitions() -> None:
    source = _source(NOISE)
    spec = MonteCarloSpec(method="iid_bootstrap", trials=500, seed=9, ruin_threshold=-0.2, confidence=0.9)
    plan = plan_trials(source, spec)
    chunk = run_chunk(source, plan, 0, spec.trials)
    report = merge_chunks(source, spec, plan, [chunk])
    cutoff = np.percentile(chunk.final_returns, 10)
    assert report["value_at_risk"]["loss"] == pytest.approx(-cutoff)
    assert report["conditional_value_at_risk"]["loss"] == pytest.approx(
        -chunk.final_returns[chunk.final_returns <= cutoff].mean()
    )
    assert report["conditional_value_at_risk"]["loss"] >= report["value_at_risk"]["loss"]
    assert report["probability_of_ruin"] == pytest.approx(np.mean(chunk.lowest_equity <= 0.8))
    interval = report["final_return"]["confidence_interval"]
    assert (interval["low"], interval["high"]) == pytest.approx(
        tuple(np.percentile(chunk.final_returns, [5, 95]))
    )
    # Each trial's Sharpe: its own draws' mean over their standard deviation (ddof 1), annualised.
    assert np.all(np.isfinite(chunk.sharpes))
    fan = report["fan_chart"]
    assert all(a <= b for a, b in zip(fan["p5"], fan["p95"], strict=True))
    assert fan["step"][0] == 0 and fan["step"][-1] == plan.steps


def test_blocks_keep_what_iid_draws_destroy() -> None:
    # An alternating series (+1%, -1%, ...) compounds to almost nothing when kept in order; long
    # blocks keep most of that order, iid draws do not, so block trials spread far less.
    alternating = np.tile([0.01, -0.01], 500)
    source = _source(alternating)
    iid = _run(source, MonteCarloSpec(method="iid_bootstrap", trials=300, seed=2))
    blocks = _run(source, MonteCarloSpec(method="block_bootstrap", trials=300, seed=2, block_length=50))
    assert blocks["final_return"]["std"] < iid["final_return"]["std"] / 3


def test_the_block_length_is_chosen_from_the_series_when_not_given() -> None:
    # A persistent AR(1) series (SYNTHETIC, seeded) needs blocks longer than one return.
    rng = np.random.default_rng(1)
    series = np.empty(2_000)
    series[0] = 0.0
    for i in range(1, series.shape[0]):
        series[i] = 0.9 * series[i - 1] + rng.normal(0, 0.001)
    plan = plan_trials(_source(series), MonteCarloSpec(method="block_bootstrap", trials=10, seed=1))
    assert plan.block_length > 5
    noise_plan = plan_trials(_source(NOISE), MonteCarloSpec(method="block_bootstrap", trials=10, seed=1))
    assert noise_plan.block_length < plan.block_length


def test_trade_methods_need_trades_and_say_what_to_do_instead() -> None:
    source = _source(NOISE, np.array([0.01]))
    with pytest.raises(StressInputError) as raised:
        plan_trials(source, MonteCarloSpec(method="trade_resample", trials=10, seed=1))
    assert raised.value.code == "too_few_trades" and raised.value.pointer == "/method"
    assert "iid_bootstrap" in raised.value.message
    with pytest.raises(StressInputError) as too_long:
        plan_trials(
            _source(NOISE), MonteCarloSpec(method="block_bootstrap", trials=10, seed=1, block_length=5_000)
        )
    assert too_long.value.pointer == "/block_length"
