"""Monte Carlo through ``methods`` on a real example strategy over the real SPX bars: byte-identical on a
rerun from scratch, centred on the backtest it resamples, and the same whatever the chunking."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.pipeline import Backtester
from packages.domain.backtest.serialization import canonical_json, to_jsonable
from packages.domain.strategy.examples import get_example
from packages.domain.stress import methods, monte_carlo
from packages.domain.stress.methods import StressContext
from packages.domain.stress.monte_carlo import MonteCarloSpec
from tests.packages.domain.backtest.kit import stock_bars, stocks_frame

# Hurst over 100 bars: one year of history warms it up; the range is 2000-01 to 2018-12.
WARM_UP_ROWS = 250


def persistence_context(spx: UniverseBars) -> StressContext:
    """The packaged ``persistence_trend_index`` example (SPX, default costs), built from scratch."""
    return StressContext(
        Backtester(get_example("persistence_trend_index"), spx), WARM_UP_ROWS, spx.n_bars, threads=2
    )


def run(
    context: StressContext, spec: MonteCarloSpec, chunk_size: int, *, reverse: bool = False
) -> dict[str, Any]:
    parts = methods.monte_carlo_plan(context, spec, chunk_size)
    order = list(reversed(parts)) if reverse else parts
    chunks = [methods.monte_carlo_part(context, spec, part) for part in order]
    return methods.monte_carlo_merge(context, spec, int(parts[0]["block_length"]), chunks)


def as_bytes(report: dict[str, Any]) -> bytes:
    return canonical_json(to_jsonable(report))


@pytest.mark.parametrize("method", ["iid_bootstrap", "block_bootstrap", "trade_shuffle", "trade_resample"])
def test_a_fixed_seed_gives_the_same_bytes_on_a_rerun_from_scratch(method: str, spx: UniverseBars) -> None:
    spec = MonteCarloSpec(method=method, trials=300, seed=20_24)  # type: ignore[arg-type]
    first = as_bytes(run(persistence_context(spx), spec, 100))
    assert as_bytes(run(persistence_context(spx), spec, 100)) == first
    other_seed = MonteCarloSpec(method=method, trials=300, seed=20_25)  # type: ignore[arg-type]
    if method != "trade_shuffle":  # a shuffle's final return is the same in every trial
        assert as_bytes(run(persistence_context(spx), other_seed, 100)) != first


@pytest.mark.parametrize("method", ["iid_bootstrap", "block_bootstrap"])
def test_bootstrap_trials_are_centred_on_the_backtest(method: str, spx: UniverseBars) -> None:
    """Both bootstraps draw each of the backtest's bar returns with the same probability (circular
    blocks start anywhere and wrap), so a trial's log growth ``sum(log(1 + r))`` has expectation
    exactly ``n * mean(log(1 + r))``, the backtest's own ``log(1 + total_return)``. Its spread over
    thousands of bars is close to normal, hence symmetric: the backtest sits mid-distribution, inside
    the 25th to 75th percentile of final returns, and the trials' mean log growth lies within four
    standard errors of it."""
    context = persistence_context(spx)
    base = context.base_run().result
    total = base.metrics["total_return"]
    assert isinstance(total, float)
    spec = MonteCarloSpec(method=method, trials=2_000, seed=7)  # type: ignore[arg-type]
    report = run(context, spec, 500)
    summary = report["summary"]
    assert summary["backtest"]["total_return"] == pytest.approx(total, rel=1e-12)
    final = summary["final_return"]["percentiles"]
    assert final["p25"] <= total <= final["p75"]
    assert 25.0 <= summary["backtest"]["total_return_percentile"] <= 75.0
    growth = np.log1p([item["final_return"] for item in report["items"]])
    standard_error = growth.std(ddof=1) / math.sqrt(growth.shape[0])
    assert abs(growth.mean() - math.log1p(total)) < 4 * standard_error
    if method == "block_bootstrap":  # chosen from the series by Politis and White's rule
        assert summary["block_length"] >= 1


def test_a_trade_shuffle_ends_every_trial_at_the_backtests_return(spx: UniverseBars) -> None:
    """The example holds one position at a time, so its trades' returns on equity compound to the
    backtest's total return; a shuffle reorders the same factors."""
    context = persistence_context(spx)
    total = context.base_run().result.metrics["total_return"]
    report = run(context, MonteCarloSpec(method="trade_shuffle", trials=500, seed=3), 500)
    summary = report["summary"]
    assert summary["final_return"]["min"] == pytest.approx(total, rel=1e-12, abs=1e-15)
    assert summary["final_return"]["max"] == pytest.approx(total, rel=1e-12, abs=1e-15)
    # Ties are the median, not wherever rounding puts them.
    assert summary["backtest"]["total_return_percentile"] == 50.0
    assert summary["max_drawdown"]["min"] < summary["max_drawdown"]["max"]


def test_a_long_short_flip_strategys_trades_compound_to_its_return() -> None:
    """MSFT EMA crossover (real daily bars): a bearish cross closes the long and opens the short at
    the same open. Each trade's return is on the equity realised before its entry, so the product
    over trades is the backtest's return to rounding (the equity marked at the previous close
    counted the flipped position's last overnight move twice)."""
    bars = stock_bars(stocks_frame(), ["MSFT"])
    result = Backtester(get_example("ema_crossover_long_short"), bars).run(first_row=250).result
    source = monte_carlo.MonteCarloSource.from_result(result)
    trades = result.trade_columns()
    assert np.any(trades["entry_bar"][1:] == trades["exit_bar"][:-1])  # there are flips
    assert source.trade_returns.shape[0] == result.n_trades
    assert float(np.prod(1.0 + source.trade_returns) - 1.0) == pytest.approx(
        source.total_return, rel=1e-12, abs=1e-15
    )


@pytest.mark.parametrize("method", ["iid_bootstrap", "block_bootstrap", "trade_shuffle", "trade_resample"])
def test_chunk_size_and_part_order_do_not_change_the_report(method: str, spx: UniverseBars) -> None:
    context = persistence_context(spx)
    spec = MonteCarloSpec(method=method, trials=120, seed=5)  # type: ignore[arg-type]
    whole = as_bytes(run(context, spec, 10_000))
    assert len(methods.monte_carlo_plan(context, spec, 1)) == 120
    assert as_bytes(run(context, spec, 1, reverse=True)) == whole
    assert as_bytes(run(context, spec, 7)) == whole
