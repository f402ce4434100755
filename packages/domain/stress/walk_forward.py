"""Walk-forward validation: optimise on the past, judge on the future the optimiser never saw.

The bars of the range are cut into folds. In each fold the strategy's parameters are optimised on
an in-sample window (the optimisation method and objectives of the request), and the best feasible
combination runs on the out-of-sample window that follows, after ``purge_bars`` bars left out so
that no trade or indicator straddles the two. ``rolling`` in-sample windows keep their length and
move forward by one out-of-sample window per fold; ``anchored`` ones all start at the first bar and
grow. Out-of-sample windows follow each other without overlap.

Reported per fold: the windows, the winning values, in- and out-of-sample metrics and the fold's
walk-forward efficiency (out-of-sample annual return over in-sample annual return). Overall: the
stitched out-of-sample equity (each window's per-bar returns compounded one after the other), the
efficiency of the means, the stability of each parameter across folds (1 minus the spread of its
winning values relative to its search range, 0..1), and a collapse flag raised when out-of-sample
performance does not survive: efficiency below ``COLLAPSE_EFFICIENCY``, or a losing stitched
out-of-sample return where the in-sample returns were gains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from packages.domain.stress.errors import StressInputError
from packages.domain.stress.optimisation import OptimisationSpec

COLLAPSE_EFFICIENCY = 0.3
MIN_WINDOW_BARS = 20


@dataclass(frozen=True)
class WalkForwardSpec:
    optimisation: OptimisationSpec
    folds: int = 5
    mode: Literal["rolling", "anchored"] = "rolling"
    in_sample_bars: int | None = None
    out_of_sample_bars: int | None = None
    purge_bars: int = 0


@dataclass(frozen=True)
class Fold:
    index: int
    in_sample: tuple[int, int]  # rows [start, end) of the bars
    out_of_sample: tuple[int, int]

    def to_dict(self, times: npt.NDArray[np.int64]) -> dict[str, Any]:
        def iso(row: int) -> str:
            return str(
                np.datetime_as_string(np.int64(times[row]).astype("datetime64[ns]"), unit="s", timezone="UTC")
            )

        return {
            "fold": self.index,
            "in_sample": {
                "start": iso(self.in_sample[0]),
                "end": iso(self.in_sample[1] - 1),
                "bars": self.in_sample[1] - self.in_sample[0],
            },
            "out_of_sample": {
                "start": iso(self.out_of_sample[0]),
                "end": iso(self.out_of_sample[1] - 1),
                "bars": self.out_of_sample[1] - self.out_of_sample[0],
            },
        }


def plan_folds(first_row: int, end_row: int, spec: WalkForwardSpec) -> list[Fold]:
    """The folds over rows [first_row, end_row) (rows before ``first_row`` are warm-up history).

    Without explicit lengths, out-of-sample windows get ``(n - purge_bars) / (folds + 4)`` bars
    (rounded down) and rolling in-sample windows four times that; anchored ones start at
    ``first_row`` and the first one takes every bar the out-of-sample windows and the purge leave.
    """
    n = end_row - first_row
    purge = spec.purge_bars
    if spec.folds < 1:
        raise StressInputError("no_folds", "/folds", "Ask for at least one fold.")
    oos = spec.out_of_sample_bars or (n - purge) // (spec.folds + 4)
    in_sample = spec.in_sample_bars or (n - purge - spec.folds * oos if spec.mode == "anchored" else 4 * oos)
    needed = in_sample + purge + spec.folds * oos
    if oos < MIN_WINDOW_BARS or in_sample < MIN_WINDOW_BARS or needed > n:
        raise StressInputError(
            "range_too_short",
            "/folds",
            f"{spec.folds} folds of {oos} out-of-sample bars after {in_sample} in-sample bars"
            f"{f' and a {purge}-bar purge' if purge else ''} need {needed} bars (each window at least "
            f"{MIN_WINDOW_BARS}); the range has {n}. Use fewer folds, shorter windows or a longer range.",
        )
    folds = []
    for k in range(spec.folds):
        oos_start = first_row + in_sample + purge + k * oos
        is_end = oos_start - purge
        is_start = first_row if spec.mode == "anchored" else is_end - in_sample
        folds.append(Fold(k, (is_start, is_end), (oos_start, oos_start + oos)))
    return folds


def _annual(metrics: Mapping[str, Any] | None) -> float | None:
    value = None if metrics is None else metrics.get("annual_return")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def efficiency(in_sample: float | None, out_of_sample: float | None) -> float | None:
    """Out-of-sample over in-sample annual return; None when the in-sample return is not a gain."""
    if in_sample is None or out_of_sample is None or in_sample <= 0:
        return None
    return out_of_sample / in_sample


def stitch(returns_by_fold: Sequence[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """One equity curve (start 1.0) from each out-of-sample window's per-bar returns, in order."""
    joined = (
        np.concatenate([np.asarray(r, dtype=np.float64) for r in returns_by_fold])
        if returns_by_fold
        else np.empty(0)
    )
    return np.concatenate(([1.0], np.cumprod(1.0 + joined)))


def parameter_stability(
    spec: WalkForwardSpec, winners: Sequence[Mapping[str, float] | None]
) -> dict[str, float | None]:
    """Per searched parameter: 1 - (standard deviation of the winning values / the search range)."""
    stability: dict[str, float | None] = {}
    for dimension in spec.optimisation.dimensions:
        chosen = [w[dimension.pointer] for w in winners if w is not None]
        width = dimension.high - dimension.low
        if len(chosen) < 2 or width <= 0:
            stability[dimension.pointer] = None
            continue
        stability[dimension.pointer] = round(max(0.0, 1.0 - float(np.std(chosen)) / width * 2.0), 4)
    return stability


def summarise(
    spec: WalkForwardSpec,
    fold_reports: Sequence[dict[str, Any]],
    stitched_equity: npt.NDArray[np.float64],
    periods_per_year: float,
) -> dict[str, Any]:
    in_sample = [_annual(f["in_sample_metrics"]) for f in fold_reports]
    out_of_sample = [_annual(f["out_of_sample_metrics"]) for f in fold_reports]
    mean_is = (
        float(np.mean([v for v in in_sample if v is not None]))
        if any(v is not None for v in in_sample)
        else None
    )
    mean_oos = (
        float(np.mean([v for v in out_of_sample if v is not None]))
        if any(v is not None for v in out_of_sample)
        else None
    )
    overall = efficiency(mean_is, mean_oos)
    stitched_return = float(stitched_equity[-1] - 1.0) if stitched_equity.shape[0] else 0.0
    bars = max(stitched_equity.shape[0] - 1, 1)
    stitched_annual = (
        float((1.0 + stitched_return) ** (periods_per_year / bars) - 1.0) if stitched_return > -1 else -1.0
    )
    peaks = np.maximum.accumulate(stitched_equity) if stitched_equity.shape[0] else stitched_equity
    stitched_drawdown = float((stitched_equity / peaks - 1.0).min()) if stitched_equity.shape[0] else 0.0
    collapsed = (overall is not None and overall < COLLAPSE_EFFICIENCY) or (
        mean_is is not None and mean_is > 0 and stitched_return < 0
    )
    if mean_is is not None and mean_is <= 0:
        reason = "in-sample optimisation found no gain to validate"
        collapsed = True
    elif collapsed:
        reason = (
            f"out-of-sample efficiency {overall:.2f} is below {COLLAPSE_EFFICIENCY}"
            if overall is not None and overall < COLLAPSE_EFFICIENCY
            else "the stitched out-of-sample return is a loss while in-sample returns were gains"
        )
    else:
        reason = None
    winners = [f.get("winner") for f in fold_reports]
    return {
        "mode": spec.mode,
        "folds": len(fold_reports),
        "purge_bars": spec.purge_bars,
        "efficiency": overall,
        "mean_in_sample_annual_return": mean_is,
        "mean_out_of_sample_annual_return": mean_oos,
        "stitched_out_of_sample": {
            "total_return": stitched_return,
            "annual_return": stitched_annual,
            "max_drawdown": stitched_drawdown,
            "bars": bars,
        },
        "parameter_stability": parameter_stability(spec, winners),
        "collapsed": collapsed,
        "collapse_reason": reason,
    }


def describe(summary: dict[str, Any]) -> str:
    efficiency_value = summary["efficiency"]
    stitched = summary["stitched_out_of_sample"]
    head = (
        f"Walk-forward over {summary['folds']} {summary['mode']} folds: out-of-sample efficiency "
        + (f"{efficiency_value:.2f}" if efficiency_value is not None else "n/a")
        + f", stitched out-of-sample return {stitched['total_return']:.1%} (max drawdown {stitched['max_drawdown']:.1%})."
    )
    if summary["collapsed"]:
        return (
            head
            + f" Out-of-sample performance collapsed: {summary['collapse_reason']}; most of the in-sample edge did not survive."
        )
    return head + " Most of the in-sample edge survived out of sample."
