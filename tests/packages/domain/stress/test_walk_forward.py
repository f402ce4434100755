"""Walk-forward validation: fold arithmetic by hand, and on SYNTHETIC price paths built here, a strategy
optimised on pure noise collapses out of sample while one that captures a planted cycle keeps its
edge in every fold with the same parameter."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

import numpy as np
import pytest

from packages.domain.stress import methods, walk_forward
from packages.domain.stress.errors import StressInputError
from packages.domain.stress.methods import StressContext
from packages.domain.stress.optimisation import Dimension, Objective, OptimisationSpec
from packages.domain.stress.walk_forward import COLLAPSE_EFFICIENCY, Fold, WalkForwardSpec
from tests.packages.domain.stress.stress_kit import context, document, sma_cross_document, synthetic_bars

FAST, SLOW = "/factors/0/params/period", "/factors/1/params/period"
SHARPE = (Objective("sharpe"),)
# Four rolling folds: 450 in-sample bars, a 60-bar purge (no SMA of the grid reaches across it),
# 150 out-of-sample bars; 100 bars of warm-up before the range.
WARM_UP, IN_SAMPLE, PURGE, OUT_OF_SAMPLE, FOLDS = 100, 450, 60, 150, 4
N_BARS = WARM_UP + IN_SAMPLE + PURGE + FOLDS * OUT_OF_SAMPLE


def grid_spec(*dimensions: Dimension) -> OptimisationSpec:
    return OptimisationSpec("grid", dimensions, SHARPE, budget=100)


def run(ctx: StressContext, spec: WalkForwardSpec, *, reverse: bool = False) -> dict[str, Any]:
    parts = methods.walk_forward_plan(ctx, spec)
    folds = [methods.walk_forward_part(ctx, spec, part) for part in (reversed(parts) if reverse else parts)]
    return methods.walk_forward_merge(ctx, spec, folds)


def rolling(search: OptimisationSpec) -> WalkForwardSpec:
    return WalkForwardSpec(search, FOLDS, "rolling", IN_SAMPLE, OUT_OF_SAMPLE, PURGE)


def random_walk_closes(seed: int) -> np.ndarray:
    """SYNTHETIC: a driftless geometric random walk, 1% daily volatility. Nothing to predict."""
    return 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.01, N_BARS)))


def cycle_closes(seed: int) -> np.ndarray:
    """SYNTHETIC: a ±10% price cycle of 64 bars (planted) on top of a 0.5%-a-day random walk."""
    t = np.arange(N_BARS)
    noise = np.cumsum(np.random.default_rng(seed).normal(0.0, 0.005, N_BARS))
    return 100.0 * np.exp(0.1 * np.sin(2 * np.pi * t / 64) + noise)


def close_over_sma(period: int) -> dict[str, Any]:
    """Long while the close is above its SMA: in on the cross above, out on the cross below."""
    close, trend = {"field": "close"}, {"factor": "trend"}
    return document(
        "SYNTH",
        [{"id": "trend", "indicator": "sma", "params": {"period": period}}],
        {"op": "cross_above", "left": close, "right": trend},
        [
            {
                "name": "below",
                "type": "signal",
                "condition": {"op": "cross_below", "left": close, "right": trend},
            }
        ],
    )


def test_an_sma_crossover_fitted_to_noise_does_not_survive_out_of_sample() -> None:
    """66 SMA crossovers per fold on eight random walks (default costs). The best of them in sample
    is the luckiest fit; out of sample the walk has no edge to keep, only costs. Most walks must be
    flagged collapsed, and taken together their out-of-sample annual return must fall below the
    collapse line of their in-sample one."""
    search = grid_spec(Dimension(FAST, 2, 12, 2), Dimension(SLOW, 10, 60, 5))
    summaries = []
    for seed in range(8):
        ctx = context(
            sma_cross_document("SYNTH", 5, 30), synthetic_bars(random_walk_closes(seed)), first_row=WARM_UP
        )
        summaries.append(run(ctx, rolling(search))["summary"])
    collapsed = [s["collapsed"] for s in summaries]
    assert sum(collapsed) >= 6, collapsed
    in_sample = np.mean([s["mean_in_sample_annual_return"] for s in summaries])
    out_of_sample = np.mean([s["mean_out_of_sample_annual_return"] for s in summaries])
    assert in_sample > 0  # the optimiser found gains in noise...
    assert out_of_sample < COLLAPSE_EFFICIENCY * in_sample  # ...that did not survive
    for summary in summaries:
        if summary["collapsed"]:
            assert summary["collapse_reason"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_strategy_that_captures_a_planted_cycle_keeps_its_edge_in_every_fold(seed: int) -> None:
    """On a 64-bar cycle an SMA a few bars long turns up soon after each trough and down soon after
    each peak; SMAs of half a cycle or more lag too far behind it. The best period in sample is
    the best out of sample because the cycle does not change, so a short period wins in every fold
    (the same one in most), every out-of-sample window gains and the efficiency stays well above
    the collapse line."""
    ctx = context(close_over_sma(20), synthetic_bars(cycle_closes(seed)), first_row=WARM_UP)
    report = run(ctx, rolling(grid_spec(Dimension(FAST, 4, 64, 4))))
    summary, folds = report["summary"], report["items"]
    assert not summary["collapsed"] and summary["collapse_reason"] is None
    assert summary["efficiency"] >= 0.6
    winners = [fold["winner"][FAST] for fold in folds]
    assert max(winners) <= 12, winners  # a short SMA in every fold, never half a cycle
    assert Counter(winners).most_common(1)[0][1] >= FOLDS // 2
    assert summary["parameter_stability"][FAST] >= 0.9
    for fold in folds:
        assert fold["out_of_sample_metrics"]["annual_return"] > 0
        assert fold["efficiency"] > COLLAPSE_EFFICIENCY
    # The stitched curve compounds the out-of-sample windows one after the other, each from its
    # own starting cash.
    product = np.prod([1 + fold["out_of_sample_metrics"]["total_return"] for fold in folds]) - 1
    assert summary["stitched_out_of_sample"]["total_return"] == pytest.approx(product, rel=1e-9)
    assert summary["stitched_out_of_sample"]["bars"] == FOLDS * OUT_OF_SAMPLE


def test_fold_arithmetic_by_hand() -> None:
    search = grid_spec(Dimension(FAST, 2, 4))
    spec = WalkForwardSpec(search, 4, "rolling", in_sample_bars=300, out_of_sample_bars=100, purge_bars=10)
    # Fold k: out of sample from 50 + 300 + 10 + 100k; in sample the 300 bars ending 10 before it.
    assert walk_forward.plan_folds(50, 1_050, spec) == [
        Fold(0, (50, 350), (360, 460)),
        Fold(1, (150, 450), (460, 560)),
        Fold(2, (250, 550), (560, 660)),
        Fold(3, (350, 650), (660, 760)),
    ]
    anchored = WalkForwardSpec(
        search, 4, "anchored", in_sample_bars=300, out_of_sample_bars=100, purge_bars=10
    )
    assert walk_forward.plan_folds(50, 1_050, anchored) == [
        Fold(0, (50, 350), (360, 460)),
        Fold(1, (50, 450), (460, 560)),
        Fold(2, (50, 550), (560, 660)),
        Fold(3, (50, 650), (660, 760)),
    ]
    # Without lengths: (1000 - 10) // (5 + 4) = 110 out-of-sample bars, 440 in sample when
    # rolling; anchored windows start at the first bar and the first takes 1000 - 10 - 5 * 110 =
    # 440. Either way the folds end on the range's last bar.
    modes: tuple[Literal["rolling", "anchored"], ...] = ("rolling", "anchored")
    for mode in modes:
        folds = walk_forward.plan_folds(0, 1_000, WalkForwardSpec(search, 5, mode, purge_bars=10))
        assert [f.out_of_sample for f in folds] == [(450 + 110 * k, 560 + 110 * k) for k in range(5)]
        assert folds[0].in_sample == (0, 440)
        assert folds[4].in_sample == ((0 if mode == "anchored" else 440), 880)
        assert folds[-1].out_of_sample[1] == 1_000


def test_a_range_too_short_for_the_folds_says_what_it_needs() -> None:
    search = grid_spec(Dimension(FAST, 2, 4))
    with pytest.raises(StressInputError) as raised:
        walk_forward.plan_folds(0, 170, WalkForwardSpec(search, 5))
    assert raised.value.code == "range_too_short" and raised.value.pointer == "/folds"
    assert "the range has 170" in raised.value.message and "at least 20" in raised.value.message
    explicit = WalkForwardSpec(
        search, 8, "rolling", in_sample_bars=300, out_of_sample_bars=100, purge_bars=10
    )
    with pytest.raises(StressInputError) as too_many:
        walk_forward.plan_folds(0, 1_000, explicit)
    assert "need 1110 bars" in too_many.value.message and "a 10-bar purge" in too_many.value.message
    with pytest.raises(StressInputError) as none:
        walk_forward.plan_folds(0, 1_000, WalkForwardSpec(search, 0))
    assert none.value.pointer == "/folds"


def test_walk_forward_refusals_point_into_the_walk_forward_request() -> None:
    ctx = context(close_over_sma(20), synthetic_bars(cycle_closes(0)), first_row=WARM_UP)
    cases = [
        (
            rolling(grid_spec(Dimension("/factors/7/params/period", 2, 4))),
            "/optimisation/dimensions/0/pointer",
        ),
        (
            rolling(OptimisationSpec("grid", (Dimension(FAST, 4, 64, 1),), SHARPE, budget=20)),
            "/optimisation/budget",
        ),
        (WalkForwardSpec(grid_spec(Dimension(FAST, 4, 8)), 12, "rolling", 450, 150), "/folds"),
    ]
    for spec, pointer in cases:
        with pytest.raises(StressInputError) as raised:
            methods.walk_forward_plan(ctx, spec)
        assert raised.value.pointer == pointer


def test_folds_run_in_any_order_merge_to_the_same_report() -> None:
    ctx = context(close_over_sma(20), synthetic_bars(cycle_closes(4)), first_row=WARM_UP)
    spec = WalkForwardSpec(
        grid_spec(Dimension(FAST, 4, 32, 4)), FOLDS, "anchored", None, OUT_OF_SAMPLE, PURGE
    )
    forward = run(ctx, spec)
    assert run(ctx, spec, reverse=True) == forward
    assert [item["fold"] for item in forward["items"]] == list(range(FOLDS))
    assert all(
        item["in_sample"]["start"] == forward["items"][0]["in_sample"]["start"] for item in forward["items"]
    )


def test_efficiency_and_parameter_stability_by_hand() -> None:
    assert walk_forward.efficiency(0.2, 0.1) == 0.5
    assert walk_forward.efficiency(0.2, -0.1) == -0.5
    assert walk_forward.efficiency(0.0, 0.1) is None and walk_forward.efficiency(-0.1, 0.1) is None
    spec = rolling(grid_spec(Dimension(FAST, 10, 30)))
    # Winners 10, 10, 20 over a range 20 wide: 1 - 2 * std / 20, std = sqrt(200 / 9).
    stability = walk_forward.parameter_stability(spec, [{FAST: 10.0}, {FAST: 10.0}, None, {FAST: 20.0}])
    assert stability[FAST] == round(1 - 2 * np.sqrt(200 / 9) / 20, 4)
    assert walk_forward.parameter_stability(spec, [{FAST: 10.0}, None])[FAST] is None
    assert walk_forward.stitch([np.array([0.1, -0.1]), np.array([0.5])]).tolist() == pytest.approx(
        [1.0, 1.1, 0.99, 1.485]
    )
