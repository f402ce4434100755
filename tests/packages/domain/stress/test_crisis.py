"""Crisis windows on the real SPX and IXIC daily bars: a buy-and-hold strategy's figures in each window
are the data's own, worked out from the index files with pandas alone; windows without data are
reported, never dropped; thresholds and the aggregate score follow their definitions."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.bars import UniverseBars
from packages.domain.stress import crisis, methods
from tests.packages.domain.stress.stress_kit import NO_COSTS, context, document, index_frame

# The index files run from 1999-01-04 to 2018-12-31.
DATA_FIRST, DATA_LAST = pd.Timestamp("1999-01-04"), pd.Timestamp("2018-12-31")


def buy_and_hold(symbol: str) -> dict[str, Any]:
    """Buy on the first bar (close > 0 always holds) with all the equity; the time exit's 100,000
    bars outlast the data, so the position is only closed at the end of the window."""
    return document(
        symbol,
        [],
        {"op": "gt", "left": {"field": "close"}, "right": 0},
        [{"name": "hold", "type": "time_exit", "bars": 100_000}],
        sizing={"mode": "percent_equity", "percent": 100},
        name=f"Buy and hold {symbol}",
    )


def peak_to_trough(prices: npt.NDArray[np.float64]) -> float:
    """The deepest fall from a running peak, as a fraction (<= 0)."""
    return float(np.min(prices / np.maximum.accumulate(prices)) - 1.0)


def window_rows(frame: pd.DataFrame, window: crisis.CrisisWindow) -> pd.DataFrame:
    """The file's rows dated in [start, end)."""
    dates = frame["Date"]
    return frame[(dates >= pd.Timestamp(window.start)) & (dates < pd.Timestamp(window.end))]


def has_data(frame: pd.DataFrame, window: crisis.CrisisWindow) -> bool:
    return len(window_rows(frame, window)) >= 2


US_WINDOWS = crisis.windows_for("us_stocks")


@pytest.mark.parametrize("symbol", ["SPX", "IXIC"])
def test_buy_and_hold_drawdown_in_each_window_is_the_datas_own_peak_to_trough(
    symbol: str, spx: UniverseBars, ixic: UniverseBars
) -> None:
    """By hand: the signal holds at the window's first close, the market order fills at the second
    bar's open ``o1`` with all the cash (no costs, fractional quantity), so from then on the equity
    is ``cash / o1 * close``; on the first bar it is the cash itself, which is ``cash / o1 * o1``.
    The equity is therefore proportional to the prices ``o1, c1, c2, ..., c_last`` and its max
    drawdown is their peak-to-trough; its return is ``c_last / o1 - 1``. The position is closed at
    the last close, which changes nothing without costs."""
    bars = spx if symbol == "SPX" else ixic
    frame = index_frame(symbol)
    ctx = context(buy_and_hold(symbol), bars, assumptions=NO_COSTS)
    with_data = [w for w in US_WINDOWS if has_data(frame, w)]
    assert len(with_data) == 8  # dot-com to Q4 2018; COVID and 2022 lie after the data
    for window in with_data:
        rows = window_rows(frame, window)
        opens, closes = rows["Open"].to_numpy(), rows["Close"].to_numpy()
        held = np.concatenate(([opens[1]], closes[1:]))
        outcome = methods.crisis_part(ctx, window.to_dict(), crisis.Thresholds())
        assert outcome["coverage"] == "full", window.id
        assert outcome["bars"] == len(rows)
        assert outcome["data_start"] == rows["Date"].iloc[0].strftime("%Y-%m-%d")
        assert outcome["data_end"] == rows["Date"].iloc[-1].strftime("%Y-%m-%d")
        assert outcome["warm_up_rows"] == int((frame["Date"] < pd.Timestamp(window.start)).sum())
        assert outcome["max_drawdown"] == pytest.approx(peak_to_trough(held), rel=1e-9, abs=1e-12)
        assert outcome["total_return"] == pytest.approx(closes[-1] / opens[1] - 1.0, rel=1e-9)
        assert outcome["trades"] == 1
        # The benchmark is the symbol itself, bought at the first close of the window.
        assert outcome["benchmark_return"] == pytest.approx(closes[-1] / closes[0] - 1.0, rel=1e-12)


def test_filled_on_the_signal_close_the_drawdown_is_exactly_the_closes_peak_to_trough(
    spx: UniverseBars,
) -> None:
    """With ``trade_on_close`` the fill is at the window's first close, so the equity is
    ``cash / c0 * close`` on every bar: its drawdown is the closes' own peak-to-trough."""
    frame = index_frame("SPX")
    on_close = ExecutionAssumptions(fee_bps=0.0, slippage_bps=0.0, trade_on_close=True)
    ctx = context(buy_and_hold("SPX"), spx, assumptions=on_close)
    depths = {}
    for window in (w for w in US_WINDOWS if has_data(frame, w)):
        closes = window_rows(frame, window)["Close"].to_numpy()
        outcome = methods.crisis_part(ctx, window.to_dict(), crisis.Thresholds())
        assert outcome["max_drawdown"] == pytest.approx(peak_to_trough(closes), rel=1e-9, abs=1e-12)
        assert outcome["total_return"] == pytest.approx(closes[-1] / closes[0] - 1.0, rel=1e-9)
        depths[window.id] = outcome["max_drawdown"]
    # The known history: 2008-09 was by far the deepest fall of these windows.
    assert min(depths, key=depths.__getitem__) == "financial_crisis_2008"
    assert depths["financial_crisis_2008"] < -0.45


def test_windows_without_data_are_reported_with_the_coverage_they_need(spx: UniverseBars) -> None:
    ctx = context(buy_and_hold("SPX"), spx, assumptions=NO_COSTS)
    outcomes = [
        methods.crisis_part(ctx, spec, crisis.Thresholds()) for spec in methods.crisis_plan(US_WINDOWS)
    ]
    missing = [o for o in outcomes if o["coverage"] == "no_data"]
    assert [o["window_id"] for o in missing] == ["covid_crash_2020", "rate_shock_2022"]
    for outcome in missing:
        window = crisis.WINDOWS_BY_ID[outcome["window_id"]]
        assert outcome["needed_coverage"] == {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
        }
        assert "SPX" in outcome["message"] and window.start.isoformat() in outcome["message"]
        for figure in ("total_return", "max_drawdown", "trades", "sharpe", "benchmark_return", "passed"):
            assert outcome[figure] is None
    report = methods.crisis_merge(outcomes)
    # Every window is an item, with or without data, in plan order.
    assert [item["window_id"] for item in report["items"]] == [w.id for w in US_WINDOWS]
    assert report["summary"]["windows"] == len(US_WINDOWS) == 10
    assert report["summary"]["evaluated"] == 8 and report["summary"]["no_data"] == 2
    assert "2 window(s) had no data" in report["description"]


def test_custom_windows_full_partial_and_outside_the_data(spx: UniverseBars) -> None:
    frame = index_frame("SPX")
    ctx = context(buy_and_hold("SPX"), spx, assumptions=NO_COSTS)

    def run(start: date, end: date) -> dict[str, Any]:
        window = crisis.CrisisWindow("custom_1", "Mine", start, end, ("us_stocks",), "A custom window.")
        return methods.crisis_part(ctx, window.to_dict(), crisis.Thresholds())

    # Inside the data: the same arithmetic as the named windows.
    inside = run(date(2016, 6, 1), date(2016, 8, 1))
    rows = window_rows(frame, crisis.CrisisWindow("x", "x", date(2016, 6, 1), date(2016, 8, 1), (), ""))
    held = np.concatenate(([rows["Open"].iloc[1]], rows["Close"].to_numpy()[1:]))
    assert inside["coverage"] == "full" and inside["window_id"] == "custom_1"
    assert inside["max_drawdown"] == pytest.approx(peak_to_trough(held), rel=1e-9)
    # Past the data's last bar: runs on what there is and says so.
    late = run(date(2018, 12, 1), date(2019, 3, 1))
    assert late["coverage"] == "partial"
    assert late["data_end"] == DATA_LAST.strftime("%Y-%m-%d")
    assert late["bars"] == int((frame["Date"] >= pd.Timestamp("2018-12-01")).sum())
    # Before the data's first bar: no history to warm up on, still run on the bars there are.
    early = run(date(1998, 12, 1), date(1999, 2, 1))
    assert early["coverage"] == "partial" and early["warm_up_rows"] == 0
    assert early["data_start"] == DATA_FIRST.strftime("%Y-%m-%d")
    # Wholly outside: no data, with what to import.
    assert run(date(1997, 1, 1), date(1998, 1, 1))["coverage"] == "no_data"
    assert run(date(2019, 1, 2), date(2019, 6, 1))["coverage"] == "no_data"
    # One bar is not a window to measure: reported as no data, not as a flat result.
    one_bar = run(date(2016, 6, 1), date(2016, 6, 2))
    assert one_bar["coverage"] == "no_data" and one_bar["max_drawdown"] is None


def test_coverage_reads_the_window_against_the_first_and_last_bar() -> None:
    day = 86_400 * 10**9
    start, end = 100 * day, 200 * day  # [start, end): the last day needed is end - 1 day
    assert crisis.coverage_of(start, end, None, None) == "no_data"
    assert crisis.coverage_of(start, end, 50 * day, 300 * day) == "full"
    assert crisis.coverage_of(start, end, start, end - day) == "full"
    assert crisis.coverage_of(start, end, start + day, 300 * day) == "partial"
    assert crisis.coverage_of(start, end, 50 * day, end - 2 * day) == "partial"
    assert crisis.coverage_of(start, end, 50 * day, start - day) == "no_data"
    assert crisis.coverage_of(start, end, end, 300 * day) == "no_data"


def test_thresholds_pass_and_fail_and_the_aggregate_score(spx: UniverseBars) -> None:
    frame = index_frame("SPX")
    ctx = context(buy_and_hold("SPX"), spx, assumptions=NO_COSTS)
    thresholds = crisis.Thresholds(max_drawdown=-0.15, min_return=-0.10)
    outcomes = [methods.crisis_part(ctx, spec, thresholds) for spec in methods.crisis_plan(US_WINDOWS)]
    expected_pass = {}
    excess = []
    for window in US_WINDOWS:
        if not has_data(frame, window):
            continue
        rows = window_rows(frame, window)
        opens, closes = rows["Open"].to_numpy(), rows["Close"].to_numpy()
        depth = peak_to_trough(np.concatenate(([opens[1]], closes[1:])))
        total = closes[-1] / opens[1] - 1.0
        expected_pass[window.id] = depth >= -0.15 and total >= -0.10
        excess.append(total - (closes[-1] / closes[0] - 1.0))
    passed = {o["window_id"]: o["passed"] for o in outcomes if o["coverage"] != "no_data"}
    assert passed == expected_pass
    assert 0 < sum(passed.values()) < len(passed)  # these thresholds split the windows
    summary = crisis.aggregate(outcomes)
    assert summary["score"] == round(100.0 * sum(expected_pass.values()) / len(expected_pass), 1)
    assert summary["passed"] == sum(expected_pass.values())
    assert summary["worst_window"] == "financial_crisis_2008"
    assert summary["worst_drawdown"] == min(
        o["max_drawdown"] for o in outcomes if o["max_drawdown"] is not None
    )
    assert summary["mean_excess_return"] == pytest.approx(float(np.mean(excess)), rel=1e-9)


def test_a_threshold_is_met_at_its_boundary() -> None:
    thresholds = crisis.Thresholds(max_drawdown=-0.2, min_return=-0.1)
    assert thresholds.passes(-0.1, -0.2)
    assert not thresholds.passes(-0.1000001, -0.2)
    assert not thresholds.passes(-0.1, -0.2000001)


def test_an_aggregate_of_windows_without_data_has_no_score() -> None:
    outcome = {"window_id": "w", "coverage": "no_data", "passed": None, "max_drawdown": None}
    summary = crisis.aggregate([outcome, {**outcome, "window_id": "v"}])
    assert summary["score"] is None and summary["evaluated"] == 0 and summary["no_data"] == 2
    assert summary["worst_window"] is None
    assert "None of the 2 crisis windows" in crisis.describe(summary)


def test_windows_for_a_market_and_by_id() -> None:
    assert {w.id for w in crisis.windows_for("crypto")} >= {"crypto_winter_2018", "ftx_collapse_2022"}
    assert all("us_stocks" in w.markets for w in crisis.windows_for("us_stocks"))
    assert "crypto_winter_2018" not in {w.id for w in crisis.windows_for("us_stocks")}
    # Windows asked for by id run whatever their usual markets.
    chosen = crisis.windows_for("us_stocks", ["ftx_collapse_2022", "dotcom_top_2000"])
    assert [w.id for w in chosen] == ["ftx_collapse_2022", "dotcom_top_2000"]
