"""Monte Carlo: how a strategy's result could have turned out with its returns in another order.

Four methods resample what a backtest produced:

- ``iid_bootstrap``: each step draws one bar return at random (with replacement); keeps the return
  distribution, forgets serial dependence.
- ``block_bootstrap``: circular blocks of consecutive bar returns, of ``block_length`` bars or, when
  none is given, the length Politis and White's method picks for the series (``arch``); keeps
  volatility clusters and trends shorter than a block.
- ``trade_shuffle``: the closed trades' returns on equity in a random order. The final return is
  the same in every trial (the backtest's, for a strategy that holds one position at a time);
  drawdowns and the path are what change.
- ``trade_resample``: as many trades as the backtest closed, drawn with replacement.

A trial compounds its draws from an equity of 1. Per trial: the final return, the max drawdown
(negative) and the annualised Sharpe ratio (ddof 1, less the risk-free rate, as in the backtest;
trade methods annualise by trades per year). Across trials: mean, standard deviation, percentiles
and a central confidence interval of each; the probability of ruin (equity touching
``1 + ruin_threshold`` at any step); value at risk and conditional value at risk of the final
return (losses, positive numbers, at the confidence level); and fan-chart quantile paths
(5/25/50/75/95) sampled at ``path_points`` steps.

Every trial draws from its own random stream, fixed by (seed, trial number): a job split into
chunks, on any number of workers, gives exactly the trials of one unsplit run. All numbers are
fractions (0.05 = 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import codes as c
from packages.domain.backtest.result import BacktestResult
from packages.domain.stress import _monte_carlo_kernel as kernel
from packages.domain.stress.errors import StressInputError

FloatArray = npt.NDArray[np.float64]
Method = Literal["iid_bootstrap", "block_bootstrap", "trade_shuffle", "trade_resample"]

METHODS: dict[str, int] = {
    "iid_bootstrap": kernel.METHOD_IID,
    "block_bootstrap": kernel.METHOD_BLOCK,
    "trade_shuffle": kernel.METHOD_TRADE_SHUFFLE,
    "trade_resample": kernel.METHOD_TRADE_RESAMPLE,
}
TRADE_METHODS = frozenset({"trade_shuffle", "trade_resample"})
FAN_QUANTILES = (5, 25, 50, 75, 95)
SUMMARY_PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
_SECONDS_PER_YEAR = 365.25 * 86_400
# Final returns this close (relative to the final equity) are the same outcome rounded differently.
_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MonteCarloSource:
    """What the trials draw from, taken from one backtest result."""

    bar_returns: FloatArray
    # Each closed trade's pnl over the realised equity before its entry, in entry order.
    trade_returns: FloatArray
    periods_per_year: float
    trades_per_year: float
    risk_free_rate: float
    total_return: float
    max_drawdown: float
    sharpe: float | None

    @classmethod
    def from_result(cls, result: BacktestResult) -> MonteCarloSource:
        equity = result.equity
        initial = result.assumptions.initial_cash
        previous = np.concatenate(([initial], equity[:-1]))
        bar_returns = equity / previous - 1.0
        trade_returns = _trade_returns_on_realised_equity(result)
        span_s = (float(result.index[-1] - result.index[0]) / 1e9) if result.index.shape[0] > 1 else 0.0
        years = max(span_s / _SECONDS_PER_YEAR, 1.0 / result.periods_per_year)
        sharpe = result.metrics.get("sharpe")
        return cls(
            bar_returns=np.ascontiguousarray(bar_returns, dtype=np.float64),
            trade_returns=trade_returns,
            periods_per_year=float(result.periods_per_year),
            trades_per_year=float(trade_returns.shape[0]) / years,
            risk_free_rate=float(result.assumptions.risk_free_rate),
            total_return=float(equity[-1] / initial - 1.0) if equity.shape[0] else 0.0,
            max_drawdown=float(result.drawdown.min()) if result.drawdown.shape[0] else 0.0,
            sharpe=float(sharpe) if isinstance(sharpe, int | float) and math.isfinite(sharpe) else None,
        )


def _trade_returns_on_realised_equity(result: BacktestResult) -> FloatArray:
    """Each closed trade's pnl over the realised equity just before its entry fill, in entry order.

    Realised equity is the initial cash plus the pnl of every trade whose exit order came before
    the entry order (orders are recorded in the order they were filled, and an exit at the same
    open as an entry is filled first). A strategy that holds one position at a time (a flip from
    long to short included) is flat at every entry, so its trade returns compound exactly to the
    backtest's total return; the equity marked at the previous close would count the last bar of
    a flipped position's move twice.
    """
    trades = result.trades
    closed = trades[:, c.T_IS_OPEN] != 1.0
    orders = result.orders
    sequence = np.arange(orders.shape[0])
    is_entry = orders[:, c.O_REASON] == c.REASON_ENTRY
    entry_order = dict(zip(orders[is_entry, c.O_TRADE].astype(np.int64), sequence[is_entry], strict=True))
    exit_order = dict(zip(orders[~is_entry, c.O_TRADE].astype(np.int64), sequence[~is_entry], strict=True))
    ids = trades[closed, c.T_ID].astype(np.int64)
    pnl = trades[closed, c.T_PNL]
    entries = np.array([entry_order[i] for i in ids], dtype=np.int64)
    exits = np.array([exit_order[i] for i in ids], dtype=np.int64)
    by_exit = np.argsort(exits, kind="stable")
    realised = np.concatenate(([0.0], np.cumsum(pnl[by_exit])))
    closed_before = np.searchsorted(exits[by_exit], entries, side="left")
    base = result.assumptions.initial_cash + realised[closed_before]
    in_entry_order = np.argsort(entries, kind="stable")
    return np.ascontiguousarray((pnl / base)[in_entry_order], dtype=np.float64)


@dataclass(frozen=True)
class MonteCarloSpec:
    method: Method
    trials: int
    seed: int
    block_length: int | None = None
    ruin_threshold: float = -0.5
    confidence: float = 0.95
    path_points: int = 100


@dataclass(frozen=True)
class TrialPlan:
    """Everything a chunk needs besides the source: resolved once, shared by every chunk."""

    method: Method
    seed: int
    steps: int
    block_length: int
    sample_steps: npt.NDArray[np.int64]


@dataclass(frozen=True)
class TrialChunk:
    first_trial: int
    final_returns: FloatArray
    max_drawdowns: FloatArray
    sharpes: FloatArray
    lowest_equity: FloatArray
    paths: FloatArray  # (trials, len(sample_steps)): equity as a multiple of the start


def draws_of(source: MonteCarloSource, method: Method) -> FloatArray:
    return source.trade_returns if method in TRADE_METHODS else source.bar_returns


def automatic_block_length(returns: FloatArray) -> int:
    """Politis and White's circular-block length for ``returns`` (at least 1, at most a quarter of them)."""
    from arch.bootstrap import optimal_block_length

    estimate = float(optimal_block_length(returns)["circular"].iloc[0])
    cap = max(1, returns.shape[0] // 4)
    return int(min(max(round(estimate), 1), cap)) if math.isfinite(estimate) else 1


def plan_trials(source: MonteCarloSource, spec: MonteCarloSpec) -> TrialPlan:
    """Check that the backtest can feed the method and fix the block length and the path samples."""
    draws = draws_of(source, spec.method)
    if spec.method in TRADE_METHODS and draws.shape[0] < 2:
        raise StressInputError(
            "too_few_trades",
            "/method",
            f"'{spec.method}' resamples closed trades and the backtest closed {draws.shape[0]}; "
            "use 'iid_bootstrap' or 'block_bootstrap', or a longer range with more trades.",
        )
    if draws.shape[0] < 2:
        raise StressInputError(
            "too_few_bars", "/start", "The backtest has fewer than 2 bars; widen start/end."
        )
    block_length = 1
    if spec.method == "block_bootstrap":
        block_length = spec.block_length or automatic_block_length(draws)
        if block_length >= draws.shape[0]:
            raise StressInputError(
                "block_too_long",
                "/block_length",
                f"block_length {block_length} is not shorter than the {draws.shape[0]} returns; use a "
                "smaller block or omit it to have one chosen.",
            )
    steps = int(draws.shape[0])
    points = min(spec.path_points, steps)
    sample_steps = np.unique(np.linspace(0, steps, points + 1).round().astype(np.int64))
    return TrialPlan(spec.method, spec.seed, steps, block_length, sample_steps)


def chunk_bounds(trials: int, chunk_size: int) -> list[tuple[int, int]]:
    """(first trial, number of trials) of each chunk, in order."""
    return [(first, min(chunk_size, trials - first)) for first in range(0, trials, chunk_size)]


def run_chunk(source: MonteCarloSource, plan: TrialPlan, first_trial: int, n_trials: int) -> TrialChunk:
    draws = draws_of(source, plan.method)
    per_year = source.trades_per_year if plan.method in TRADE_METHODS else source.periods_per_year
    finals, drawdowns, sharpes, lowest, paths = kernel.run_trials(
        METHODS[plan.method],
        draws,
        plan.steps,
        np.uint64(plan.seed % 2**64),
        first_trial,
        n_trials,
        plan.block_length,
        max(per_year, 1e-9),
        source.risk_free_rate / max(per_year, 1e-9),
        plan.sample_steps,
    )
    return TrialChunk(first_trial, finals, drawdowns, sharpes, lowest, paths)


def _distribution(values: FloatArray, confidence: float) -> dict[str, Any]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.shape[0] > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
        "percentiles": {
            f"p{p}": float(v)
            for p, v in zip(SUMMARY_PERCENTILES, np.percentile(values, SUMMARY_PERCENTILES), strict=True)
        },
        "confidence_interval": {"level": confidence, "low": float(low), "high": float(high)},
    }


def _percentile_rank(values: FloatArray, value: float) -> float:
    """Where ``value`` sits among ``values``, 0..100, ties counted half (the mid rank).

    Trials that compound the same returns in another order end at ``value`` up to rounding (a
    trade shuffle always does): counted as ties they put the backtest at the 50th percentile,
    not wherever the last bits of rounding fall.
    """
    tolerance = _TIE_TOLERANCE * max(1.0, abs(1.0 + value))
    below = np.count_nonzero(values < value - tolerance)
    tied = np.count_nonzero(np.abs(values - value) <= tolerance)
    return float((below + 0.5 * tied) / values.shape[0] * 100.0)


def merge_chunks(
    source: MonteCarloSource, spec: MonteCarloSpec, plan: TrialPlan, chunks: list[TrialChunk]
) -> dict[str, Any]:
    """The report of all trials; chunks may arrive in any order and are put back in trial order."""
    ordered = sorted(chunks, key=lambda chunk: chunk.first_trial)
    finals = np.concatenate([c.final_returns for c in ordered])
    drawdowns = np.concatenate([c.max_drawdowns for c in ordered])
    sharpes = np.concatenate([c.sharpes for c in ordered])
    lowest = np.concatenate([c.lowest_equity for c in ordered])
    paths = np.concatenate([c.paths for c in ordered])
    if finals.shape[0] != spec.trials:
        raise ValueError(f"merged {finals.shape[0]} trials, expected {spec.trials}")
    cutoff = np.percentile(finals, (1.0 - spec.confidence) * 100.0)
    tail = finals[finals <= cutoff]
    fan = np.percentile(paths, FAN_QUANTILES, axis=0)
    return {
        "method": spec.method,
        "trials": spec.trials,
        "seed": spec.seed,
        "steps": plan.steps,
        "block_length": plan.block_length if spec.method == "block_bootstrap" else None,
        "final_return": _distribution(finals, spec.confidence),
        "max_drawdown": _distribution(drawdowns, spec.confidence),
        "sharpe": _distribution(sharpes, spec.confidence),
        "probability_of_ruin": float(np.mean(lowest <= 1.0 + spec.ruin_threshold)),
        "ruin_threshold": spec.ruin_threshold,
        "value_at_risk": {"level": spec.confidence, "loss": float(-cutoff)},
        "conditional_value_at_risk": {"level": spec.confidence, "loss": float(-tail.mean())},
        "fan_chart": {
            "step": [int(s) for s in plan.sample_steps],
            **{f"p{q}": [float(v) for v in row] for q, row in zip(FAN_QUANTILES, fan, strict=True)},
        },
        "backtest": {
            "total_return": source.total_return,
            "max_drawdown": source.max_drawdown,
            "sharpe": source.sharpe,
            "total_return_percentile": _percentile_rank(finals, source.total_return),
        },
    }


def describe(report: dict[str, Any]) -> str:
    """One or two plain sentences a person (or a model reading to one) can take in at once."""
    final = report["final_return"]["percentiles"]
    drawdown = report["max_drawdown"]["percentiles"]
    return (
        f"Across {report['trials']} {report['method'].replace('_', ' ')} trials the median final return "
        f"was {final['p50']:.1%} (5th to 95th percentile {final['p5']:.1%} to {final['p95']:.1%}); the "
        f"median max drawdown was {drawdown['p50']:.1%} and 1 in 20 trials fell further than "
        f"{drawdown['p5']:.1%}. Probability of ruin (equity {report['ruin_threshold']:.0%} below the "
        f"start): {report['probability_of_ruin']:.1%}. The backtest's own return sits at the "
        f"{report['backtest']['total_return_percentile']:.0f}th percentile."
    )
