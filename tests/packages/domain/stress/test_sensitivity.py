"""Sensitivity scans on the real SPX bars: a parameter the strategy cannot feel has a flat response and
a stability of 1, a used one moves; points the language refuses are reported and never run; the
± span arithmetic, the rounding and the heatmap's shape are worked out by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from packages.domain.backtest.bars import UniverseBars
from packages.domain.strategy.tunables import ParameterSpace
from packages.domain.stress import methods, sensitivity
from packages.domain.stress.errors import StressInputError
from packages.domain.stress.methods import StressContext
from packages.domain.stress.sensitivity import SensitivitySpec
from tests.packages.domain.stress.stress_kit import context, document, sma_cross_document

FAST, SLOW, UNUSED_RSI = "/factors/0/params/period", "/factors/1/params/period", "/factors/2/params/period"
MAX_OPEN = "/portfolio/max_open_positions"
WARM_UP_ROWS = 250


class RecordingContext(StressContext):
    """A context that remembers every parameter set it was asked to run."""

    ran: list[dict[str, float]]

    def sweep_metrics(
        self, parameter_sets: Sequence[Mapping[str, float]], first_row: int, stop_row: int
    ) -> list[dict[str, Any]]:
        self.ran.extend(dict(s) for s in parameter_sets)
        return super().sweep_metrics(parameter_sets, first_row, stop_row)


def recording(strategy: dict[str, Any], spx: UniverseBars) -> RecordingContext:
    plain = context(strategy, spx, first_row=WARM_UP_ROWS)
    recorder = RecordingContext(plain.backtester, plain.first_row, plain.stop_row, threads=1)
    recorder.ran = []
    return recorder


def scan(ctx: StressContext, spec: SensitivitySpec, chunk_size: int = 1_000) -> dict[str, Any]:
    parts = methods.sensitivity_plan(ctx, spec, chunk_size)
    return methods.sensitivity_merge(
        ctx, spec, parts, [methods.sensitivity_part(ctx, part) for part in parts]
    )


def with_unused_knobs() -> dict[str, Any]:
    """SMA 10/30 crossover on SPX plus an RSI factor no condition reads, and a cap of two open
    positions on a one-symbol, one-side strategy that can never hold more than one."""
    return sma_cross_document(
        "SPX",
        10,
        30,
        more_factors=[{"id": "unused_rsi", "indicator": "rsi", "params": {"period": 14}}],
        portfolio={"max_open_positions": 2},
    )


def by_pointer(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["pointer"]: p for p in report["summary"]["parameters"]}


def test_a_parameter_the_strategy_does_not_use_has_a_flat_response(spx: UniverseBars) -> None:
    """By hand, span 0.5 in 2 steps moves a value v by ±v/4 and ±v/2, rounded to whole numbers
    with halves to even: RSI 14 -> 7, 10 (10.5), 18 (17.5), 21; max_open_positions 2 -> 1, 3 (1.5
    and 2.5 round back to 2 and are not scanned again); SMA 10 -> 5, 8 (7.5), 12 (12.5), 15."""
    ctx = recording(with_unused_knobs(), spx)
    spec = SensitivitySpec(parameters=(UNUSED_RSI, MAX_OPEN, FAST), span=0.5, steps=2, metric="sharpe")
    report = scan(ctx, spec)
    parameters = by_pointer(report)
    values = {p: [row["value"] for row in parameters[p]["curve"]] for p in parameters}
    assert values == {
        UNUSED_RSI: [7.0, 10.0, 14, 18.0, 21.0],
        MAX_OPEN: [1.0, 2, 3.0],
        FAST: [5.0, 8.0, 10, 12.0, 15.0],
    }
    assert report["summary"]["points"] == 1 + 4 + 2 + 4
    base = report["summary"]["base"]
    assert base["trades"] > 30
    for flat in (UNUSED_RSI, MAX_OPEN):
        assert all(row["metrics"] == base for row in parameters[flat]["curve"]), flat
        assert parameters[flat]["stability"] == 1.0
    used = parameters[FAST]
    assert any(row["metrics"]["trades"] != base["trades"] for row in used["curve"])
    assert used["stability"] < 1.0
    assert report["summary"]["most_fragile"][0] == FAST

    # The curve of the used parameter is what single backtests give, and its stability is
    # 1 - mean |sharpe - base sharpe| / max(|base sharpe|, 0.25), rounded to 4 places.
    backtester = ctx.backtester
    written = backtester.run(first_row=ctx.first_row).result.metrics["sharpe"]
    assert isinstance(written, float)
    moved: list[float] = []
    for row in used["curve"]:
        sharpe = backtester.run({FAST: row["value"]}, first_row=ctx.first_row).result.metrics["sharpe"]
        assert isinstance(sharpe, float)
        assert row["metrics"]["sharpe"] == pytest.approx(sharpe, rel=1e-12)
        if row["value"] != 10:
            moved.append(sharpe)
    drift = sum(abs(s - written) for s in moved) / len(moved)
    assert used["stability"] == round(min(max(1 - drift / max(abs(written), 0.25), 0.0), 1.0), 4)


def test_invalid_points_are_reported_and_never_run_and_the_heatmap_has_its_shape(spx: UniverseBars) -> None:
    """SMA 10/12: moving the fast period to 12 makes both sides one series, which the language
    refuses. The heatmap crosses fast {8, 9, 10, 11, 12} (10 ± 1, ± 2) with slow {10, 11, 12, 13, 14}
    (12 ± 1.2, ± 2.4, rounded): its cells with equal periods are refused, the others run."""
    ctx = recording(sma_cross_document("SPX", 10, 12), spx)
    spec = SensitivitySpec(
        parameters=(FAST,), pairs=((FAST, SLOW),), span=0.2, steps=2, metric="total_return"
    )
    report = scan(ctx, spec, chunk_size=4)
    summary = report["summary"]
    curve = {row["value"]: row for row in by_pointer(report)[FAST]["curve"]}
    assert sorted(curve) == [8.0, 9.0, 10, 11.0, 12.0]
    assert curve[12.0]["metrics"] is None and "same series" in curve[12.0]["invalid"]
    assert all(curve[v]["invalid"] is None and curve[v]["metrics"] for v in (8.0, 9.0, 11.0))
    refused = [item for item in report["items"] if item["invalid"]]
    assert summary["invalid_points"] == len(refused) == 1 + 3  # the line's 12 and the grid's diagonal
    assert all(item["metrics"] is None for item in refused)
    assert not any(dict(item["values"]) in ctx.ran for item in refused)
    assert len(ctx.ran) == summary["points"] - len(refused)

    (heatmap,) = summary["heatmaps"]
    assert heatmap["x"] == FAST and heatmap["y"] == SLOW and heatmap["metric"] == "total_return"
    assert heatmap["x_values"] == [8.0, 9.0, 10, 11.0, 12.0]
    assert heatmap["y_values"] == [10.0, 11.0, 12, 13.0, 14.0]
    assert len(heatmap["values"]) == 5 and all(len(row) == 5 for row in heatmap["values"])
    for y_index, slow in enumerate(heatmap["y_values"]):
        for x_index, fast in enumerate(heatmap["x_values"]):
            cell = heatmap["values"][y_index][x_index]
            assert (cell is None) == (fast == slow), (fast, slow)
    # A cell is the run of its two values.
    reversed_cell = ctx.backtester.run({FAST: 12, SLOW: 10}, first_row=ctx.first_row).result.metrics
    assert heatmap["values"][0][4] == pytest.approx(reversed_cell["total_return"], rel=1e-12)


def scan_values(strategy: dict[str, Any], pointer: str, span: float, steps: int) -> list[float]:
    space = ParameterSpace.of(strategy)
    points = sensitivity.plan_scan(space, SensitivitySpec(parameters=(pointer,), span=span, steps=steps))
    return [p.values[pointer] for p in points if p.kind == "line"]


def test_span_arithmetic_bounds_and_rounding_by_hand() -> None:
    stop = {"name": "stop", "type": "stop_loss", "distance": {"unit": "percent", "value": 95}}
    strategy = document(
        "SPX",
        [{"id": "fast", "indicator": "sma", "params": {"period": 3}}],
        {"op": "gt", "left": {"field": "close"}, "right": 0},
        [stop, {"name": "t", "type": "time_exit", "bars": 10}],
    )
    # Floats move by exact fractions: the threshold 0 moves by the span itself, ±0.1 and ±0.2.
    assert scan_values(strategy, "/trade/long/entry/condition/right", 0.2, 2) == [-0.2, -0.1, 0.1, 0.2]
    # An SMA period of 3 (at least 2): 3 ± 0.75 and ± 1.5 -> 2 (2.25), 2 (1.5, halves to even),
    # 4 (3.75), 4 (4.5): the low side stops at 2 and repeats are scanned once.
    assert scan_values(strategy, "/factors/0/params/period", 0.5, 2) == [2.0, 4.0]
    # A long stop of 95% must stay below 100% (the bound is exclusive): 95 ± 4.75 and ± 9.5 ->
    # 85.5, 90.25 and 99.75; 104.5 would be cut to 100, which a stop can never be, so it is dropped.
    assert scan_values(strategy, "/trade/long/exits/0/distance/value", 0.1, 2) == [85.5, 90.25, 99.75]
    # Time exits take whole bars from 1: 10 ± 10 and ± 20 -> 1 (0 and -10 are cut to 1), 20, 30.
    assert scan_values(strategy, "/trade/long/exits/1/bars", 2.0, 2) == [1.0, 20.0, 30.0]


def test_stability_score_by_hand() -> None:
    assert sensitivity.stability_score(1.0, [1.0, 1.0], "sharpe") == 1.0
    assert sensitivity.stability_score(1.0, [0.5, 1.5], "sharpe") == 0.5
    assert sensitivity.stability_score(1.0, [3.0, -1.0], "sharpe") == 0.0  # clipped
    # A base near zero is measured against the metric's floor (0.25 for Sharpe).
    assert sensitivity.stability_score(0.0, [0.05, -0.05], "sharpe") == 0.8
    assert sensitivity.stability_score(1.0, [None, None], "sharpe") is None
    assert sensitivity.stability_score(None, [1.0], "sharpe") is None


def test_requests_the_scan_cannot_honour_point_at_their_field() -> None:
    space = ParameterSpace.of(sma_cross_document("SPX", 10, 30))
    cases = [
        (
            SensitivitySpec(parameters=(FAST, "/factors/9/params/period")),
            "unknown_parameter",
            "/parameters/1",
        ),
        (SensitivitySpec(pairs=((FAST, "/nope"),)), "unknown_parameter", "/pairs/0/1"),
        (SensitivitySpec(pairs=((FAST, FAST),)), "same_parameter", "/pairs/0/1"),
        (SensitivitySpec(metric="annual_return"), "unknown_metric", "/metric"),
        (SensitivitySpec(parameters=()), "no_parameters", "/parameters"),
    ]
    for spec, code, pointer in cases:
        with pytest.raises(StressInputError) as raised:
            sensitivity.plan_scan(space, spec)
        assert (raised.value.code, raised.value.pointer) == (code, pointer)


def test_chunk_size_and_part_order_do_not_change_the_report(spx: UniverseBars) -> None:
    ctx = context(with_unused_knobs(), spx, first_row=WARM_UP_ROWS, stop_row=WARM_UP_ROWS + 1_500)
    spec = SensitivitySpec(span=0.3, steps=2, pairs=((FAST, SLOW),), metric="total_return")  # every parameter
    whole = scan(ctx, spec)
    parts = methods.sensitivity_plan(ctx, spec, 1)
    assert len(parts) == whole["summary"]["points"]
    assert {p["pointer"] for p in whole["summary"]["parameters"]} == set(
        ParameterSpace.of(with_unused_knobs()).parameters
    )
    # Parts run in any order and may reach the merge in any order too.
    backwards = list(reversed(parts))
    results = [methods.sensitivity_part(ctx, part) for part in backwards]
    assert methods.sensitivity_merge(ctx, spec, backwards, results) == whole
    assert scan(ctx, spec, chunk_size=5) == whole


def test_a_parameter_the_span_cannot_move_is_still_reported(spx: UniverseBars) -> None:
    # max_open_positions 2 moved by ±10% and ±20% rounds back to 2 every time: nothing to run.
    ctx = context(with_unused_knobs(), spx, first_row=WARM_UP_ROWS, stop_row=WARM_UP_ROWS + 500)
    report = scan(ctx, SensitivitySpec(parameters=(MAX_OPEN,), span=0.2, steps=2))
    (parameter,) = report["summary"]["parameters"]
    assert parameter["pointer"] == MAX_OPEN and parameter["stability"] is None
    assert [row["value"] for row in parameter["curve"]] == [2]
    assert report["summary"]["points"] == 1
