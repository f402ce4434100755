"""Monte Carlo trials, compiled: every trial draws from its own counter-based random stream.

A trial's stream depends only on (seed, trial number), never on which other trials run beside it,
so a job split into chunks over many workers gives the same trials as one run.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

METHOD_IID = 0
METHOD_BLOCK = 1
METHOD_TRADE_SHUFFLE = 2
METHOD_TRADE_RESAMPLE = 3

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def _splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """One step of splitmix64: the next state and its output."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _below(state: np.uint64, bound: np.int64) -> tuple[np.uint64, np.int64]:
    """A uniform integer in [0, bound), by Lemire's multiply-shift on the top 32 bits (bound < 2**31)."""
    state, word = _splitmix64(state)
    top = np.int64(word >> np.uint64(32))
    return state, (top * bound) >> np.int64(32)


@njit(cache=True)
def _trial_state(seed: np.uint64, trial: np.int64) -> np.uint64:
    _, mixed = _splitmix64(seed ^ (np.uint64(trial) * _GOLDEN + np.uint64(1)))
    return mixed


# Serial on purpose: trials spread over worker processes as job parts, and a CPU worker's parent
# (which forks the pool) must never start numba's OpenMP threads: a fork after them aborts the child.
@njit(cache=True)
def run_trials(
    method: int,
    returns: npt.NDArray[np.float64],
    steps: int,
    seed: np.uint64,
    first_trial: int,
    n_trials: int,
    block_length: int,
    periods_per_year: float,
    risk_free_per_period: float,
    sample_steps: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]:
    """Trials ``first_trial .. first_trial + n_trials`` of one method over ``returns``.

    Each trial compounds ``steps`` returns drawn from ``returns``: iid draws, circular blocks of
    ``block_length``, a permutation (trade shuffle) or draws with replacement (trade resampling).
    Returns per trial: final return, max drawdown (<= 0), annualised Sharpe (ddof 1, as the backtest's), lowest equity (as a
    fraction of the start) and the equity at ``sample_steps`` (step k = equity after k draws).
    """
    n = returns.shape[0]
    finals = np.empty(n_trials)
    drawdowns = np.empty(n_trials)
    sharpes = np.empty(n_trials)
    lowest = np.empty(n_trials)
    paths = np.empty((n_trials, sample_steps.shape[0]))
    annualise = np.sqrt(periods_per_year)
    for t in range(n_trials):
        state = _trial_state(seed, np.int64(first_trial + t))
        order = np.empty(n, dtype=np.int64)
        if method == METHOD_TRADE_SHUFFLE:
            for i in range(n):
                order[i] = i
            for i in range(n - 1, 0, -1):
                state, j = _below(state, np.int64(i + 1))
                swap = order[i]
                order[i] = order[j]
                order[j] = swap
        equity = 1.0
        peak = 1.0
        worst = 0.0
        low = 1.0
        total = 0.0
        total_sq = 0.0
        sample = 0
        while sample < sample_steps.shape[0] and sample_steps[sample] == 0:
            paths[t, sample] = 1.0
            sample += 1
        position = np.int64(0)
        for step in range(steps):
            if method == METHOD_TRADE_SHUFFLE:
                index = order[step]
            elif method == METHOD_BLOCK:
                if step % block_length == 0:
                    state, position = _below(state, np.int64(n))
                else:
                    position += 1
                    if position == n:
                        position = np.int64(0)
                index = position
            else:
                state, index = _below(state, np.int64(n))
            r = returns[index]
            equity *= 1.0 + r
            total += r
            total_sq += r * r
            if equity > peak:
                peak = equity
            drop = equity / peak - 1.0
            if drop < worst:
                worst = drop
            if equity < low:
                low = equity
            while sample < sample_steps.shape[0] and sample_steps[sample] == step + 1:
                paths[t, sample] = equity
                sample += 1
        mean = total / steps
        variance = (total_sq - steps * mean * mean) / (steps - 1) if steps > 1 else 0.0
        finals[t] = equity - 1.0
        drawdowns[t] = worst
        sharpes[t] = (
            (mean - risk_free_per_period) / np.sqrt(variance) * annualise if variance > 1e-24 else 0.0
        )
        lowest[t] = low
    return finals, drawdowns, sharpes, lowest, paths
