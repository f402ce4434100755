"""Readiness: every item a deployment needs, met and missing, in plain words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.trading.broker import LiveAccount, LiveEndpoint, PaperAccount
from packages.domain.trading.readiness import check_readiness, unsupported_features
from packages.domain.trading.risk import RiskLimits

EXAMPLES = Path(__file__).parents[4] / "packages" / "domain" / "strategy" / "examples"
DOCUMENT = json.loads((EXAMPLES / "index_macd_long_short.json").read_text())  # SPX and IXIC, warm-up 38

READY: dict[str, Any] = {
    "document": DOCUMENT,
    "pinned_revision": 3,
    "history_bars": {"SPX": 500, "IXIC": 500},
    "account": PaperAccount("p-1"),
    "capital": 50_000.0,
    "available_cash": 100_000.0,
    "limits": RiskLimits(max_daily_loss=0.05, max_drawdown=0.2),
    "assumptions": ExecutionAssumptions(),
}


def test_a_ready_deployment_meets_every_item() -> None:
    readiness = check_readiness(**READY)
    assert readiness.ready and readiness.missing == ()
    assert [item.code for item in readiness.items] == [
        "strategy_valid",
        "strategy_pinned",
        "symbols_have_data",
        "warmup_history",
        "supported_features",
        "account_active",
        "enough_cash",
        "limits_sane",
    ]


BROKEN = dict(DOCUMENT, trade={"long": {"entry": {"condition": {"op": "gt"}}}})


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"document": BROKEN}, "strategy_valid", "cannot run"),
        ({"pinned_revision": None}, "strategy_pinned", "No strategy revision is pinned"),
        ({"history_bars": {"SPX": 500}}, "symbols_have_data", "No market data for IXIC"),
        ({"history_bars": {"SPX": 500, "IXIC": 20}}, "warmup_history", "IXIC has 20"),
        (
            {"assumptions": ExecutionAssumptions(trade_on_close=True)},
            "supported_features",
            "signal bar's close",
        ),
        ({"assumptions": ExecutionAssumptions(borrow_rate=0.02)}, "supported_features", "borrow"),
        ({"account": PaperAccount("p-1", status="inactive")}, "account_active", "deactivated"),
        (
            {"account": LiveAccount("l-1", LiveEndpoint("alpaca", "https://api.alpaca.markets"))},
            "account_active",
            "live account",
        ),
        ({"capital": 0.0}, "enough_cash", "positive"),
        ({"capital": 150_000.0}, "enough_cash", "100,000.00 available"),
        ({"limits": RiskLimits(max_drawdown=1.5)}, "limits_sane", "drawdown"),
        ({"limits": RiskLimits(allowed_symbols=frozenset({"SPX"}))}, "limits_sane", "leave out IXIC"),
        ({"limits": RiskLimits(max_daily_loss=5.0)}, "limits_sane", "daily loss"),
        ({"limits": RiskLimits(max_position_notional=2.0)}, "limits_sane", "almost no order"),
    ],
)
def test_each_missing_item_is_named_in_words(change: dict[str, Any], code: str, words: str) -> None:
    readiness = check_readiness(**{**READY, **change})
    assert not readiness.ready
    (missing,) = readiness.missing
    assert missing.code == code and words in missing.message and missing.hint


def test_an_invalid_strategy_hides_the_items_that_read_it() -> None:
    codes = [item.code for item in check_readiness(**{**READY, "document": BROKEN}).items]
    assert "symbols_have_data" not in codes and "warmup_history" not in codes


def test_only_trade_on_close_and_borrow_fees_are_unsupported() -> None:
    assert unsupported_features(ExecutionAssumptions(slippage_model="volume_share", allow_margin=True)) == []
    assert len(unsupported_features(ExecutionAssumptions(trade_on_close=True, borrow_rate=0.01))) == 2
