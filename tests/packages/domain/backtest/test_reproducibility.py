"""Reproducibility: provenance recorded, byte-identical canonical JSON, lossless compact storage."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.codes import ENGINE_VERSION
from packages.domain.backtest.engine import simulate
from packages.domain.backtest.hashing import data_snapshot_hash, order_list_hash
from packages.domain.backtest.result import BacktestResult
from packages.domain.backtest.serialization import (
    canonical_json,
    decode_array,
    decode_array_text,
    encode_array,
    encode_array_text,
)
from packages.domain.strategy.plan import ExitPlan, SizingPlan
from tests.packages.domain.backtest.kit import plan, side, stock_bars


def run_twice_inputs(stocks) -> tuple[UniverseBars, object]:
    bars = stock_bars(stocks, ["AAPL", "IBM"])
    close = bars.close
    with np.errstate(invalid="ignore"):
        momentum = np.vstack([np.full((20, 2), np.nan), close[20:] / close[:-20] - 1])
        entry = momentum > 0.05
        leave = momentum < 0
    sides = [
        side(
            entry,
            [
                ExitPlan("momentum_gone", "signal", signal=leave),
                ExitPlan("trail", "trailing_stop", fraction=0.1),
            ],
            sizing=SizingPlan("percent_equity", 0.5),
        )
    ]
    return bars, plan(bars, sides, max_open=2, warmup=20)


def test_same_inputs_give_byte_identical_json(stocks) -> None:
    bars, strategy_plan = run_twice_inputs(stocks)
    assumptions = ExecutionAssumptions(spread_bps=2, borrow_rate=0.01)
    first = simulate(strategy_plan, bars, assumptions, dsl_version="1.0.0", dsl_hash="abc")  # type: ignore[arg-type]
    # A second, independently built copy of the same inputs.
    bars_again, plan_again = run_twice_inputs(stocks)
    second = simulate(plan_again, bars_again, assumptions, dsl_version="1.0.0", dsl_hash="abc")  # type: ignore[arg-type]
    assert first.n_trades > 20
    assert first.to_json_bytes() == second.to_json_bytes()
    assert hashlib.sha256(first.to_json_bytes()).digest() == hashlib.sha256(second.to_json_bytes()).digest()


def test_result_records_provenance(stocks) -> None:
    bars, strategy_plan = run_twice_inputs(stocks)
    result = simulate(strategy_plan, bars, dsl_version="1.0.0", dsl_hash="doc-hash")  # type: ignore[arg-type]
    provenance = result.summary_dict()["provenance"]
    assert provenance == {
        "engine_version": ENGINE_VERSION,
        "dsl_version": "1.0.0",
        "dsl_hash": "doc-hash",
        "data_hash": data_snapshot_hash(bars),
        "order_hash": order_list_hash(result.orders),
    }
    assert result.order_hash.startswith("xxh3_128:") and len(result.order_hash) == 9 + 32
    assert result.summary_dict()["assumptions"] == ExecutionAssumptions().model_dump(mode="json")


def test_hashes_change_with_the_inputs(stocks) -> None:
    bars, strategy_plan = run_twice_inputs(stocks)
    base = simulate(strategy_plan, bars)  # type: ignore[arg-type]
    moved = bars.close.copy()
    moved[100, 0] *= 1.0001
    changed = UniverseBars(bars.index, bars.symbols, bars.open, bars.high, bars.low, moved, bars.volume)
    assert data_snapshot_hash(changed) != base.data_hash
    costlier = simulate(strategy_plan, bars, ExecutionAssumptions(fee_bps=11))  # type: ignore[arg-type]
    assert costlier.order_hash != base.order_hash


def test_storage_round_trip_is_lossless(stocks) -> None:
    bars, strategy_plan = run_twice_inputs(stocks)
    result = simulate(strategy_plan, bars, ExecutionAssumptions(close_at_end=False))  # type: ignore[arg-type]
    summary, blobs = result.to_storage()
    stored_summary = json.loads(canonical_json(summary))
    restored = BacktestResult.from_storage(stored_summary, blobs)
    assert restored.to_json_bytes() == result.to_json_bytes()
    np.testing.assert_array_equal(restored.trades, result.trades)
    # Compressed blobs are smaller than the raw arrays they hold.
    raw = sum(getattr(result, name).nbytes for name in ("equity", "cash", "gross_exposure", "drawdown"))
    assert sum(len(blobs[name]) for name in ("equity", "cash", "gross_exposure", "drawdown")) < raw


@pytest.mark.parametrize(
    "array",
    [np.arange(12, dtype=np.int64).reshape(3, 4), np.array([1.5, np.nan, -np.inf]), np.zeros((0, 13))],
)
def test_array_codec_round_trips(array: np.ndarray) -> None:
    np.testing.assert_array_equal(decode_array(encode_array(array)), array)
    np.testing.assert_array_equal(decode_array_text(encode_array_text(array)), array)
    assert decode_array(encode_array(array)).dtype == array.dtype


def test_canonical_json_is_stable_and_strict() -> None:
    value = {"b": [1.0, float("nan"), np.float64(0.1)], "a": np.int64(3), "c": (True, None)}
    assert canonical_json(value) == b'{"a":3,"b":[1.0,null,0.1],"c":[true,null]}'
    with pytest.raises(TypeError):
        canonical_json({"x": object()})
